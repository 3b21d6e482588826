"""Cats-vs-dogs nodes on tiny synthetic JPEGs in Kaggle's layout."""

import copy
import dataclasses

import keras
import numpy as np
import pytest

from convnets.datasets import ImageArchiveDataset, ImageArrayDataset, ImageFolderDataset
from convnets.pipelines.catdog import nodes
from tests.conftest import jpeg_bytes, write_kaggle_zip

SPLIT = {
    "classes": ["cat", "dog"],
    "subsets": {
        "train": {"start": 0, "size": 10},
        "validation": {"start": 10, "size": 4},
        "test": {"start": 14, "size": 4},
    },
    "image_size": [80, 80],
    "batch_size": 4,
    "seed": 0,
}


def _split(**sizes):
    split = copy.deepcopy(SPLIT)
    for name, size in sizes.items():
        split["subsets"][name]["size"] = size
    return split


@pytest.fixture
def archive(kaggle_zip):
    return ImageArchiveDataset(filepath=str(kaggle_zip)).load()


def _decoded(archive, folder, split=SPLIT):
    """Ingestion and decoding as the pipeline runs them, through the catalog's datasets."""
    _, files, _, _, _ = nodes.make_subset(archive, split, {})
    images = ImageFolderDataset(path=str(folder / "split"))
    images.save(files)
    decoded = ImageArrayDataset(path=str(folder / "decoded"))
    decoded.save(nodes.decode_images(images.load(), split))
    return decoded.load()


def test_make_subset_follows_the_books_index_ranges(archive):
    manifest, files, skipped, _, _ = nodes.make_subset(archive, SPLIT, {})
    assert len(manifest) == 2 * 18 and skipped.empty
    test_cats = manifest[(manifest.split == "test") & (manifest.label == "cat")]
    assert list(test_cats.file) == [f"cat.{i}.jpg" for i in range(14, 18)]
    assert files["validation/dog/dog.10.jpg"].load() == jpeg_bytes(1010)
    assert set(manifest.columns) == {"file", "label", "split", "source"}


def test_make_subset_is_deterministic(archive):
    first = nodes.make_subset(archive, SPLIT, {})
    second = nodes.make_subset(archive, SPLIT, {})
    assert first[0].equals(second[0])
    assert {k: v.load() for k, v in first[1].items()} == {k: v.load() for k, v in second[1].items()}


def test_a_rerun_with_remembered_checks_reads_no_image(archive, tmp_path, monkeypatch):
    folder = ImageFolderDataset(path=str(tmp_path / "split"))
    manifest, files, report, _, checks = nodes.make_subset(archive, SPLIT, {})
    folder.save(files)
    assert len(checks) == 36
    written = (tmp_path / "split" / ".content.sha256").stat().st_mtime_ns

    monkeypatch.setattr(type(archive), "read", lambda *_: pytest.fail("read an image"))
    again = nodes.make_subset(archive, SPLIT, checks)
    folder.save(again[1])  # same fingerprint: nothing loaded, nothing written
    assert again[0].equals(manifest) and again[4] == checks
    assert (tmp_path / "split" / ".content.sha256").stat().st_mtime_ns == written


def test_a_changed_policy_checks_the_images_again(archive):
    _, _, _, _, checks = nodes.make_subset(archive, SPLIT, {})
    _, _, _, _, rechecked = nodes.make_subset(archive, {**SPLIT, "non_rgb": "skip"}, checks)
    assert len(rechecked) == 2 * len(checks)


def test_unreadable_images_are_skipped_and_replaced_by_the_next_index(tmp_path):
    path = write_kaggle_zip(tmp_path / "train.zip", per_class=20)
    # Rewrite three cats: empty, truncated, not an image at all.
    broken = {
        "train/cat.2.jpg": b"",
        "train/cat.5.jpg": jpeg_bytes(5)[:60],
        "train/cat.12.jpg": b"<html>not found</html>",
    }
    rebuilt = tmp_path / "broken.zip"
    import zipfile  # noqa: PLC0415

    with zipfile.ZipFile(path) as source, zipfile.ZipFile(rebuilt, "w") as target:
        for name in source.namelist():
            target.writestr(name, broken.get(name, source.read(name)))
    archive = ImageArchiveDataset(filepath=str(rebuilt)).load()
    manifest, files, skipped, _, checks = nodes.make_subset(
        archive, _split(train=8, validation=4, test=4), {}
    )
    assert sorted(skipped.source) == sorted(broken)
    cats = manifest[manifest.label == "cat"]
    assert len(cats) == 16
    train = list(cats[cats.split == "train"].file)
    assert train == [f"cat.{i}.jpg" for i in (0, 1, 3, 4, 6, 7, 8, 9)]
    validation = list(cats[cats.split == "validation"].file)
    assert validation == [f"cat.{i}.jpg" for i in (10, 11, 13, 14)]
    assert not any("cat.12" in name for name in files)
    # Remembered: the skipped images are reported again without being read.
    again = nodes.make_subset(archive, _split(train=8, validation=4, test=4), checks)
    assert sorted(again[2].source) == sorted(broken)


def test_too_large_subsets_fail_before_any_image_is_read(archive, monkeypatch):
    monkeypatch.setattr(type(archive), "read", lambda *_: pytest.fail("read an image"))
    with pytest.raises(ValueError, match=r"ask for 30 'cat' images.*only 20"):
        nodes.make_subset(archive, _split(train=22), {})


@pytest.mark.parametrize("size", [0, -3, "ten"])
def test_non_positive_subset_sizes_are_rejected(archive, size):
    with pytest.raises(ValueError, match="subsets.train.size must be a positive integer"):
        nodes.make_subset(archive, _split(train=size), {})


def test_a_missing_subset_is_named(archive):
    split = copy.deepcopy(SPLIT)
    del split["subsets"]["validation"]
    with pytest.raises(ValueError, match="missing \\['validation'\\]"):
        nodes.make_subset(archive, split, {})


def test_make_datasets_batches_resized_images_with_integer_labels(archive, tmp_path):
    train, validation, test = nodes.make_datasets(_decoded(archive, tmp_path), SPLIT)
    images, labels = next(iter(test))
    assert images.shape == (4, 80, 80, 3)
    assert images.dtype == "uint8" and labels.dtype == "int32"
    assert sum(int(b[0].shape[0]) for b in train) == 20
    test_labels = np.concatenate([b[1].numpy() for b in test])
    assert list(test_labels) == [0] * 4 + [1] * 4  # unshuffled: cats then dogs


def test_batches_match_the_books_image_dataset_from_directory(archive, tmp_path):
    """Same images, labels and pixels (within rounding) as listing 8.9's input pipeline."""
    decoded = _decoded(archive, tmp_path)
    _, _, test = nodes.make_datasets(decoded, SPLIT)
    book = keras.utils.image_dataset_from_directory(
        tmp_path / "split" / "test", image_size=(80, 80), batch_size=4, shuffle=False
    )
    for (ours, our_labels), (theirs, their_labels) in zip(test, book, strict=True):
        np.testing.assert_array_equal(our_labels.numpy(), their_labels.numpy())
        assert np.abs(ours.numpy().astype("float32") - theirs.numpy()).max() <= 0.5 + 1e-4


def test_the_training_set_is_reshuffled_each_epoch_with_matching_labels(archive, tmp_path):
    decoded = _decoded(archive, tmp_path)
    train, _, _ = nodes.make_datasets(decoded, SPLIT)
    by_pixels = {
        decoded["train"].read([index]).tobytes(): int(label)
        for index, label in enumerate(decoded["train"].labels)
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
    written = tmp_path / "decoded" / "train.npy"
    before = written.stat().st_mtime_ns
    split_folder = str(tmp_path / "split")
    decoded = nodes.decode_images(split_folder, SPLIT)
    decoded = {name: dataclasses.replace(images, chunks=_fail) for name, images in decoded.items()}
    ImageArrayDataset(path=str(tmp_path / "decoded")).save(decoded)
    assert written.stat().st_mtime_ns == before
    # Another image size is another cache.
    ImageArrayDataset(path=str(tmp_path / "decoded")).save(
        nodes.decode_images(split_folder, {**SPLIT, "image_size": [40, 40]})
    )
    assert ImageArrayDataset(path=str(tmp_path / "decoded")).load()["train"].shape == (40, 40, 3)


def _fail():
    raise AssertionError("decoded although the cache was up to date")


@pytest.mark.parametrize("size", [[80], [0, 80], "180", [80.5, 80]])
def test_decode_images_rejects_a_bad_image_size(size):
    with pytest.raises(ValueError, match=r"image_size must be \[height, width\]"):
        nodes.decode_images("unused", {**SPLIT, "image_size": size})


def test_make_datasets_rejects_a_zero_batch_size():
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        nodes.make_datasets({}, {**SPLIT, "batch_size": 0})


def test_build_model_names_the_known_architectures():
    with pytest.raises(ValueError, match="'convnet' \\(listing 8.7\\)"):
        nodes.build_model((180, 180), {"name": "resnet"})


def test_train_model_rejects_zero_epochs_before_building_a_model(archive, tmp_path):
    with pytest.raises(ValueError, match="training.epochs must be a positive integer"):
        nodes.train_model(None, None, {"name": "convnet"}, {"epochs": 0, "loss": "x"})


def test_train_and_evaluate_one_epoch(archive, tmp_path):
    train, validation, test = nodes.make_datasets(_decoded(archive, tmp_path), SPLIT)
    training = {"epochs": 2, "loss": "binary_crossentropy", "optimizer": "rmsprop", "seed": 0}
    model, best, history = nodes.train_model(
        train, validation, {"name": "convnet_augmented"}, training
    )
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(history["val_loss"]) == 2
    # The best checkpoint is the epoch with the lowest val_loss.
    best_loss = best.evaluate(validation, verbose=0)[0]
    assert best_loss == pytest.approx(min(history["val_loss"]), rel=1e-4)
    metrics, confusion, per_class, figure = nodes.evaluate_model(best, test, ["cat", "dog"])
    assert 0 <= metrics["test_accuracy"]["value"] <= 1
    assert confusion.to_numpy().sum() == 8
    assert list(per_class["class"]) == ["cat", "dog"]
    assert figure.axes
    # The one-pass scores agree with Keras' own evaluate().
    keras_loss, keras_accuracy = best.evaluate(test, verbose=0)
    assert metrics["test_loss"]["value"] == pytest.approx(keras_loss, rel=1e-4)
    assert metrics["test_accuracy"]["value"] == pytest.approx(keras_accuracy)
    final = nodes.evaluate_final_model(model, test)
    assert final["test_loss"]["value"] == pytest.approx(
        model.evaluate(test, verbose=0)[0], rel=1e-4
    )


def test_plot_augmented_images_draws_a_3x3_grid(archive, tmp_path):
    train, _, _ = nodes.make_datasets(_decoded(archive, tmp_path), SPLIT)
    figure = nodes.plot_augmented_images(train, {"augmentation": {"rotation": 0.1, "zoom": 0.2}})
    assert len(figure.axes) == 9


def test_the_same_seed_gives_the_same_split_and_first_epoch_loss(kaggle_zip, tmp_path):
    losses, manifests = [], []
    for attempt in range(2):
        archive = ImageArchiveDataset(filepath=str(kaggle_zip)).load()
        manifest, _, _, _, _ = nodes.make_subset(archive, SPLIT, {})
        decoded = _decoded(archive, tmp_path / f"attempt{attempt}")
        train, validation, _ = nodes.make_datasets(decoded, SPLIT)
        training = {"epochs": 1, "loss": "binary_crossentropy", "seed": 7}
        _, _, history = nodes.train_model(
            train, validation, {"name": "convnet_augmented"}, training
        )
        losses.append(history["loss"][0])
        manifests.append(manifest)
    assert manifests[0].equals(manifests[1])
    assert losses[0] == losses[1]
