"""The book's epoch timed from a few steps of listing 8.16, with the processor's flags."""

from convnets.ml.hardware import compute_flags
from convnets.parameters import BookEpoch
from convnets.pipelines.book_epoch import nodes
from tests.conftest import typed_parameters


def test_the_book_epoch_is_its_steps_times_the_batches_of_one_epoch(monkeypatch):
    book = typed_parameters(BookEpoch, "book_epoch", image_size=[80, 80], steps=1)
    assert (book.train_images, book.validation_images, book.batch_size) == (2000, 1000, 32)
    metrics, tags = nodes.measure_book_epoch(book)
    epoch, step = metrics["book_epoch_s"]["value"], metrics["book_train_step_s"]["value"]
    # 63 training batches of 32, plus 32 validation batches predicted (cheaper).
    assert 63 * step < epoch < 63 * step + 32 * 10 * step
    assert tags == {"processor_flags": compute_flags()}


def test_the_book_recipe_is_the_books_as_written():
    book = typed_parameters(BookEpoch, "book_epoch")
    assert book.image_size == (180, 180) and book.precision == "float32"
    assert book.architecture.name == "convnet_augmented" and book.optimizer == "rmsprop"
