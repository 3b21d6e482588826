"""The cats-vs-dogs model nodes on tiny synthetic JPEGs in Kaggle's layout."""

import dataclasses
import logging
import os
import shutil

import keras
import numpy as np
import pytest

from convnets.datasets import ImageArchiveDataset, ImageArrayDataset, ImageFolderDataset
from convnets.errors import UserError
from convnets.ml.training import TrainingState
from convnets.parameters import Architecture, CatsVsDogsData, ImageInput, Training
from convnets.pipelines.cats_vs_dogs_data.nodes import make_subset
from convnets.pipelines.image_classifier import nodes
from tests.conftest import typed_parameters

DATA = typed_parameters(
    CatsVsDogsData,
    "cats_vs_dogs",
    subsets={
        "train": {"start": 0, "size": 10},
        "validation": {"start": 10, "size": 4},
        "test": {"start": 14, "size": 4},
    },
)
INPUT = typed_parameters(ImageInput, "catdog.input", image_size=[80, 80], batch_size=4)
AUGMENTED = typed_parameters(Architecture, "catdog.architecture")


def _training(**changes) -> Training:
    return typed_parameters(Training, "catdog.training", **{"epochs": 2, **changes})


@pytest.fixture
def archive(kaggle_zip):
    return ImageArchiveDataset(filepath=str(kaggle_zip)).load()


def _decoded(archive, folder, image_input=INPUT):
    """Ingestion and decoding as the pipeline runs them, through the catalog's datasets."""
    _, files, _, _, _ = make_subset(archive, DATA, {})
    images = ImageFolderDataset(path=str(folder / "split"))
    images.save(files)
    decoded = ImageArrayDataset(path=str(folder / "decoded"))
    decoded.save(nodes.decode_images(images.load(), DATA, image_input))
    return decoded.load()


def test_make_datasets_batches_resized_images_with_integer_labels(archive, tmp_path):
    train, validation, test = nodes.make_datasets(_decoded(archive, tmp_path), INPUT)
    images, labels = next(iter(test))
    assert images.shape == (4, 80, 80, 3)
    assert images.dtype == "uint8" and labels.dtype == "int32"
    assert sum(int(b[0].shape[0]) for b in train) == 20
    test_labels = np.concatenate([b[1].numpy() for b in test])
    assert list(test_labels) == [0] * 4 + [1] * 4  # unshuffled: cats then dogs


def test_batches_match_the_books_image_dataset_from_directory(archive, tmp_path):
    """Same images, labels and pixels (within rounding) as listing 8.9's input pipeline."""
    decoded = _decoded(archive, tmp_path)
    _, _, test = nodes.make_datasets(decoded, INPUT)
    book = keras.utils.image_dataset_from_directory(
        tmp_path / "split" / "test", image_size=(80, 80), batch_size=4, shuffle=False
    )
    for (ours, our_labels), (theirs, their_labels) in zip(test, book, strict=True):
        np.testing.assert_array_equal(our_labels.numpy(), their_labels.numpy())
        assert np.abs(ours.numpy().astype("float32") - theirs.numpy()).max() <= 0.5 + 1e-4


def test_the_training_set_is_reshuffled_each_epoch_with_matching_labels(archive, tmp_path):
    decoded = _decoded(archive, tmp_path)
    train, _, _ = nodes.make_datasets(decoded, INPUT)
    subset = decoded.subsets(INPUT.image_size)["train"]
    by_pixels = {
        subset.read([index]).tobytes(): int(label) for index, label in enumerate(subset.labels)
    }
    orders = []
    for _ in range(2):
        order = []
        for images, labels in train:
            for image, label in zip(images.numpy(), labels.numpy(), strict=True):
                assert by_pixels[image.tobytes()] == label
                order.append(int(image.sum()))
        orders.append(order)
    assert sorted(orders[0]) == sorted(orders[1]) and orders[0] != orders[1]


def test_decoding_is_skipped_when_the_split_and_size_are_unchanged(archive, tmp_path):
    _decoded(archive, tmp_path)
    written = tmp_path / "decoded" / "80x80" / "train.npy"
    before = written.stat().st_mtime_ns
    split = ImageFolderDataset(path=str(tmp_path / "split")).load()
    decoded = nodes.decode_images(split, DATA, INPUT)
    decoded = {name: dataclasses.replace(images, chunks=_fail) for name, images in decoded.items()}
    ImageArrayDataset(path=str(tmp_path / "decoded")).save(decoded)
    assert written.stat().st_mtime_ns == before
    # Another image size is another copy, and the first one stays.
    smaller = INPUT.model_copy(update={"image_size": (40, 40)})
    ImageArrayDataset(path=str(tmp_path / "decoded")).save(
        nodes.decode_images(split, DATA, smaller)
    )
    cache = ImageArrayDataset(path=str(tmp_path / "decoded")).load()
    assert cache.subsets((40, 40))["train"].shape == (40, 40, 3)
    assert cache.subsets((80, 80))["train"].shape == (80, 80, 3)
    assert written.stat().st_mtime_ns == before


def _fail():
    raise AssertionError("decoded although the cache was up to date")


def test_a_size_never_decoded_says_how_to_make_it(archive, tmp_path):
    cache = _decoded(archive, tmp_path)
    with pytest.raises(Exception, match="64x64 has not been written yet.*--tags=ingestion"):
        cache.subsets((64, 64))


def _test_batches(cache):
    _, _, test = nodes.make_datasets(cache, INPUT)
    return [(images.numpy(), labels.numpy()) for images, labels in test]


def test_a_damaged_split_or_cache_is_repaired_by_the_next_run_never_trained_on(
    archive, tmp_path, caplog
):
    """Each damage, then the nodes and datasets as a run of the pipeline calls them."""
    caplog.set_level(logging.INFO, logger="convnets")
    good = _test_batches(_decoded(archive, tmp_path))
    split, cache = tmp_path / "split", tmp_path / "decoded" / "80x80"
    test_file = cache / "test.npy"
    picture = split / "test" / "cat" / "cat.14.jpg"

    # Random bytes over the decoded test array: refused before training, decoded again.
    test_file.write_bytes(test_file.read_bytes()[:128] + os.urandom(test_file.stat().st_size - 128))
    with pytest.raises(UserError, match="test.npy"):
        nodes.make_datasets(ImageArrayDataset(path=str(tmp_path / "decoded")).load(), INPUT)
    caplog.clear()
    repaired = _decoded(archive, tmp_path)
    assert "Decoded and wrote" in caplog.text and str(test_file) in caplog.text
    assert all(
        np.array_equal(a[0], b[0]) for a, b in zip(_test_batches(repaired), good, strict=True)
    )

    # A garbled picture with the cache kept: the split is written again from the archive,
    # the cache (made from the intact pictures, same fingerprint) stays.
    picture.write_bytes(os.urandom(picture.stat().st_size))
    caplog.clear()
    _decoded(archive, tmp_path)
    assert str(picture) in caplog.text and "up to date: nothing decoded" in caplog.text
    assert picture.read_bytes() == archive.read("train/cat.14.jpg")

    # A garbled picture with the cache removed, the split not written again first
    # (--tags=preprocessing): refused, naming the picture, rather than TensorFlow's
    # "Unknown image file format".
    picture.write_bytes(b"garbage")
    shutil.rmtree(tmp_path / "decoded")
    with pytest.raises(UserError, match=r"cat\.14\.jpg.*--tags=ingestion"):
        nodes.decode_images(ImageFolderDataset(path=str(split)).load(), DATA, INPUT)


def test_train_and_evaluate_one_epoch(archive, tmp_path):
    train, validation, test = nodes.make_datasets(_decoded(archive, tmp_path), INPUT)
    state = TrainingState(tmp_path / "state", run_id="this-run")
    model, best, history, tags = nodes.train_model(train, validation, AUGMENTED, _training(), state)
    assert set(history) == {
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "epoch_time_s",
        "learning_rate",
    }
    assert len(history["val_loss"]) == 2
    assert "resumed_from_run_id" not in tags  # a fresh start continues no other run
    assert tags["precision"] in ("float32", "mixed_bfloat16")
    # The best checkpoint is the epoch with the lowest val_loss.
    best_loss = best.evaluate(validation, verbose=0)[0]
    assert best_loss == pytest.approx(min(history["val_loss"]), rel=1e-4)
    metrics, accuracy, confusion, per_class, figure = nodes.evaluate_best_checkpoint(
        best, test, DATA
    )
    assert 0 <= metrics["best_checkpoint_test_accuracy"]["value"] == accuracy <= 1
    assert confusion.to_numpy().sum() == 8
    assert list(per_class["class"]) == ["cat", "dog"]
    assert figure.axes
    # The one-pass scores agree with Keras' own evaluate().
    keras_loss, keras_accuracy = best.evaluate(test, verbose=0)
    assert metrics["best_checkpoint_test_loss"]["value"] == pytest.approx(keras_loss, rel=1e-4)
    assert metrics["best_checkpoint_test_accuracy"]["value"] == pytest.approx(keras_accuracy)
    final = nodes.evaluate_final_model(model, test, DATA)
    assert final["final_model_test_loss"]["value"] == pytest.approx(
        model.evaluate(test, verbose=0)[0], rel=1e-4
    )


def test_the_decision_threshold_moves_the_predicted_class(archive, tmp_path):
    train, validation, test = nodes.make_datasets(_decoded(archive, tmp_path), INPUT)
    model = keras.Sequential(
        [keras.Input((80, 80, 3)), keras.layers.Lambda(lambda x: x[:, 0, 0, :1] * 0 + 0.6)]
    )
    all_dogs = nodes.evaluate_final_model(model, test, DATA)  # 0.6 > 0.5: every image a dog
    all_cats = nodes.evaluate_final_model(
        model, test, DATA.model_copy(update={"decision_threshold": 0.7})
    )
    assert all_dogs["final_model_test_accuracy"]["value"] == 0.5
    assert all_cats["final_model_test_accuracy"]["value"] == 0.5


def test_plot_augmented_images_draws_a_3x3_grid(archive, tmp_path):
    train, _, _ = nodes.make_datasets(_decoded(archive, tmp_path), INPUT)
    figure = nodes.plot_augmented_images(train, AUGMENTED)
    assert len(figure.axes) == 9


def test_the_same_seed_gives_the_same_split_and_first_epoch_loss(kaggle_zip, tmp_path):
    losses, manifests = [], []
    for attempt in range(2):
        archive = ImageArchiveDataset(filepath=str(kaggle_zip)).load()
        manifest, _, _, _, _ = make_subset(archive, DATA, {})
        decoded = _decoded(archive, tmp_path / f"attempt{attempt}")
        train, validation, _ = nodes.make_datasets(decoded, INPUT)
        state = TrainingState(tmp_path / f"state{attempt}")
        _, _, history, _ = nodes.train_model(
            train, validation, AUGMENTED, _training(epochs=1, seed=7), state
        )
        losses.append(history["loss"][0])
        manifests.append(manifest)
    assert manifests[0].equals(manifests[1])
    assert losses[0] == losses[1]


def test_the_training_cost_is_the_runs_own_with_the_processor_flags(monkeypatch):
    monkeypatch.setattr(nodes, "compute_flags", lambda: "avx avx2 fma")
    history = {"loss": [0.7, 0.6, 0.5], "epoch_time_s": [float("nan"), 10.0, 14.0]}
    metrics, tags = nodes.report_training_cost(history)
    values = {name: metric["value"] for name, metric in metrics.items()}
    # The first epoch was trained by a run this one resumed: counted, not timed.
    assert values["epochs_run"] == 3 and values["train_wall_time_s"] == 24.0
    assert values["median_epoch_s"] == 12.0 and values["peak_rss_mb"] > 10
    assert "book_epoch_equivalents" not in values
    assert tags == {"processor_flags": "avx avx2 fma"}
