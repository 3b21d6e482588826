"""Nodes of the cats-vs-dogs pipelines (listings 8.6 to 8.18 of the book)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from convnets.datasets import DecodedImages, ImageArchive, ImageArrayFile, LazyFile
from convnets.datasets.image_folder import folder_fingerprint
from convnets.image_checks import check_image
from convnets.models import (
    build_catdog_convnet,
    build_catdog_convnet_augmented,
    build_data_augmentation,
)
from convnets.reporting import (
    as_mlflow_metrics,
    classification_tables,
    plot_confusion_matrix,
    test_metrics,
)
from convnets.training import (
    check_positive,
    compile_model,
    fit_with_best_checkpoint,
    precision_policy,
)

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
DECODE_CHUNK = 128  # images decoded per step: bounds memory whatever the split size
# Part of the cache key: change it when the decoding below changes.
DECODER = "tf.image.decode_image+resize_bilinear+round_uint8"


def _check_split_request(archive: ImageArchive, split: dict[str, Any]) -> None:
    """Fail before any image is read when the requested subsets cannot fit the archive."""
    subsets = split["subsets"]
    missing = [name for name in SPLITS if name not in subsets]
    if missing:
        raise ValueError(f"dogs_vs_cats.subsets must define {list(SPLITS)}; missing {missing}")
    for name, subset in subsets.items():
        check_positive(subset, "size", where=f"dogs_vs_cats.subsets.{name}")
        if not isinstance(subset.get("start"), int) or subset["start"] < 0:
            raise ValueError(f"dogs_vs_cats.subsets.{name}.start must be an integer >= 0")
    wanted = sum(subset["size"] for subset in subsets.values())
    for label in split["classes"]:
        available = archive.count(label)
        lowest_start = min(subset["start"] for subset in subsets.values())
        usable = sum(1 for index in archive.images.get(label, {}) if index >= lowest_start)
        if usable < wanted:
            raise ValueError(
                f"The subsets ask for {wanted} '{label}' images from index {lowest_start} on, "
                f"but {archive.source} has only {usable} of its {available} '{label}' images "
                "there. Lower dogs_vs_cats.subsets.*.size or use a larger archive."
            )


def _checked_image(
    archive: ImageArchive, member: str, non_rgb: str, known_checks: dict[str, dict[str, str]]
) -> tuple[dict[str, str], LazyFile | None]:
    """The check result for ``member`` and its lazily loaded content (None when skipped).

    A result remembered from an earlier run (same content identity, same policy) is
    reused without reading the image; otherwise the image is read and checked now.
    """
    key = f"{archive.identity(member)}|non_rgb={non_rgb}"
    if key in known_checks:
        result = known_checks[key]
        if result["action"] == "skipped":
            return result, None
        return result, LazyFile(key, lambda: check_image(archive.read(member), non_rgb).content)
    check = check_image(archive.read(member), non_rgb)
    known_checks[key] = {"action": check.action, "reason": check.reason}
    if check.content is None:
        return known_checks[key], None
    content = check.content
    return known_checks[key], LazyFile(key, lambda: content)


def make_subset(
    archive: ImageArchive, split: dict[str, Any], known_checks: dict[str, dict[str, str]]
) -> tuple[pd.DataFrame, dict[str, LazyFile], pd.DataFrame, dict[str, dict[str, float]], dict]:
    """Ingestion: the book's ``make_subset`` (listing 8.6), made safe to re-run.

    For each class and each subset in order, takes the first ``size`` images whose
    index is at least ``start``, not already taken, and that pass ``check_image``
    (converted to RGB JPEG or skipped, as ``non_rgb`` says). A skipped image is
    replaced by the next valid index, so a split is deterministic. Check results are
    remembered by content identity (``known_checks``), so a re-run with unchanged
    inputs reads no image.

    Returns the manifest (file, label, split, source), the images to write as
    ``{split}/{label}/{file}``, the report of skipped, converted and refused files,
    their counts as MLflow metrics, and the updated check results.
    """
    _check_split_request(archive, split)
    non_rgb = split.get("non_rgb", "convert")
    checks = dict(known_checks)
    rows, report, files = [], [], {}
    for member, reason in archive.refused:
        report.append({"source": member, "label": "", "action": "refused", "reason": reason})
    for label in split["classes"]:
        by_index = archive.images[label]
        ordered = sorted(by_index)
        taken: set[int] = set()
        for subset_name in SPLITS:
            subset = split["subsets"][subset_name]
            chosen = 0
            for index in ordered:
                if chosen == subset["size"]:
                    break
                if index < subset["start"] or index in taken:
                    continue
                taken.add(index)
                member = by_index[index]
                result, content = _checked_image(archive, member, non_rgb, checks)
                if result["action"] != "kept":
                    log = logger.warning if result["action"] == "skipped" else logger.info
                    log("%s %s: %s", result["action"].capitalize(), member, result["reason"])
                    report.append({"source": member, "label": label, **result})
                if content is None:
                    continue
                file_name = f"{label}.{index}.jpg"
                files[f"{subset_name}/{label}/{file_name}"] = content
                rows.append(
                    {"file": file_name, "label": label, "split": subset_name, "source": member}
                )
                chosen += 1
            if chosen < subset["size"]:
                skipped = sum(1 for row in report if row["action"] == "skipped")
                raise ValueError(
                    f"Only {chosen} valid '{label}' images were left for the {subset_name} "
                    f"subset (wanted {subset['size']}); {skipped} were skipped as "
                    "unreadable. Lower the subset sizes or repair the archive."
                )
    manifest = pd.DataFrame(rows, columns=["file", "label", "split", "source"])
    report_table = pd.DataFrame(report, columns=["source", "label", "action", "reason"])
    counts = report_table["action"].value_counts()
    metrics = as_mlflow_metrics(
        {
            f"{action}_images": counts.get(action, 0)
            for action in ("skipped", "converted", "refused")
        }
    )
    logger.info(
        "Split of %s: %s; %s",
        archive.source,
        manifest.groupby(["split", "label"]).size().to_dict(),
        {key: int(value["value"]) for key, value in metrics.items()},
    )
    return manifest, files, report_table, metrics, checks


def _image_files(folder: Path, classes: list[str]) -> tuple[list[str], np.ndarray]:
    """Every file under ``folder/<class>/`` in name order, with its class index as label."""
    files, labels = [], []
    for class_index, class_name in enumerate(classes):
        names = sorted(path for path in (folder / class_name).iterdir() if path.is_file())
        files.extend(str(path) for path in names)
        labels.extend([class_index] * len(names))
    return files, np.asarray(labels, dtype=np.int32)


def _decoded_chunks(
    files: list[str], image_size: tuple[int, int], name: str
) -> Iterator[np.ndarray]:
    """Decode and resize ``files`` as ``image_dataset_from_directory`` does, 128 at a time."""

    def decode(path: tf.Tensor) -> tf.Tensor:
        image = tf.image.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        image = tf.image.resize(image, image_size, method="bilinear")
        return tf.cast(tf.round(tf.clip_by_value(image, 0.0, 255.0)), tf.uint8)

    chunks = (
        tf.data.Dataset.from_tensor_slices(files)
        .map(decode, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(DECODE_CHUNK)
        .prefetch(1)
    )
    done, reported = 0, 0
    for chunk in chunks:
        done += len(chunk)
        if done == len(files) or done - reported >= len(files) / 10:  # about ten lines
            logger.info("Decoded %d/%d %s images", done, len(files), name)
            reported = done
        yield chunk.numpy()


def decode_images(subset_dir: str, split: dict[str, Any]) -> dict[str, DecodedImages]:
    """Preprocessing: each image decoded and resized once, for every epoch to reuse.

    The book's ``image_dataset_from_directory`` decodes and resizes every JPEG again
    in every epoch. Here the ``image_size`` pixels are stored as uint8 (rounded: at
    most half a grey level from the book's float resize). The cache key is the split
    folder's content fingerprint, the image size and the decoder, so a changed split
    or size decodes again and an unchanged one decodes nothing.
    """
    image_size = _image_size(split)
    folder = Path(subset_dir)
    fingerprint = folder_fingerprint(folder)
    decoded = {}
    for subset_name in SPLITS:
        files, labels = _image_files(folder / subset_name, list(split["classes"]))
        if not files:
            raise ValueError(f"{folder / subset_name} holds no images: run the ingestion first")
        key = f"{fingerprint}|{subset_name}|{image_size[0]}x{image_size[1]}|{DECODER}"
        decoded[subset_name] = DecodedImages(
            key=key,
            labels=labels,
            shape=(*image_size, 3),
            chunks=functools.partial(_decoded_chunks, files, image_size, subset_name),
        )
    return decoded


def _image_size(split: dict[str, Any]) -> tuple[int, int]:
    size = split.get("image_size")
    if (
        not isinstance(size, list | tuple)
        or len(size) != 2
        or not all(isinstance(side, int) and side > 0 for side in size)
    ):
        raise ValueError(f"dogs_vs_cats.image_size must be [height, width] in pixels, got {size!r}")
    return int(size[0]), int(size[1])


def _batches(images: ImageArrayFile, batch_size: int, seed: int | None) -> tf.data.Dataset:
    """Batches of (uint8 images, int32 labels) read from ``images``; shuffled with a seed.

    Pixels stay uint8: the model's float32 ``Input`` casts them inside the training
    step (3 M values a batch, beside a step of about 1.6 s here). Casting here halved
    the pipeline's throughput (about 3,700 against 7,000 images/s, measured beside a
    training run) and made every prefetched batch four times larger.
    """
    order = tf.data.Dataset.range(len(images))
    if seed is not None:
        order = order.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)

    def read(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return images.read(indices), images.labels[indices]

    def read_batch(indices: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        pixels, labels = tf.numpy_function(read, [indices], [tf.uint8, tf.int32])
        pixels.set_shape((None, *images.shape))
        labels.set_shape((None,))
        return pixels, labels

    # Reading runs ahead of training (prefetch); the page cache keeps the file in RAM
    # when it fits, so no in-memory cache() is needed and memory stays bounded.
    return (
        order.batch(batch_size)
        .map(read_batch, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def make_datasets(
    decoded: dict[str, ImageArrayFile], split: dict[str, Any]
) -> tuple[tf.data.Dataset, tf.data.Dataset, tf.data.Dataset]:
    """Preprocessing: batched ``tf.data`` datasets of the three subsets (listing 8.9).

    The book's ``image_dataset_from_directory`` batches (int labels, the training set
    reshuffled each epoch), read from the decoded images; pixels are uint8 0-255
    rather than float32 0.0-255.0, which the models' float32 input makes the same.
    """
    check_positive(split, "batch_size", where="dogs_vs_cats")
    # The shuffling order depends on TensorFlow's global seed as well as the op seed.
    keras.utils.set_random_seed(split.get("seed", 0))
    return tuple(
        _batches(
            decoded[subset_name],
            split["batch_size"],
            split.get("seed", 0) if subset_name == "train" else None,
        )
        for subset_name in SPLITS
    )


def build_model(image_size: tuple[int, int], architecture: dict[str, Any]) -> keras.Model:
    """The model ``architecture.name`` names: ``convnet`` (8.7), ``convnet_augmented`` (8.16)."""
    name = architecture["name"]
    if name == "convnet":
        return build_catdog_convnet(image_size)
    if name == "convnet_augmented":
        augmentation = architecture.get("augmentation", {})
        return build_catdog_convnet_augmented(
            image_size,
            dropout=architecture.get("dropout", 0.5),
            rotation=augmentation.get("rotation", 0.1),
            zoom=augmentation.get("zoom", 0.2),
        )
    raise ValueError(
        f"Unknown model architecture {name!r}: use 'convnet' (listing 8.7) or "
        "'convnet_augmented' (listing 8.16)"
    )


def train_model(
    train_ds: tf.data.Dataset,
    validation_ds: tf.data.Dataset,
    architecture: dict[str, Any],
    training: dict[str, Any],
) -> tuple[keras.Model, keras.Model, dict[str, list[float]]]:
    """Training: fit with the best-``val_loss`` checkpoint of listing 8.17."""
    check_positive(training, "epochs", where="training")
    keras.utils.set_random_seed(training.get("seed", 0))
    image_size = tuple(train_ds.element_spec[0].shape[1:3])
    with precision_policy(training.get("precision", "float32")):
        model = build_model(image_size, architecture)
    compile_model(model, training)
    return fit_with_best_checkpoint(
        model,
        training,
        train_ds,
        validation_data=validation_ds,
        state_dir=training.get("state_dir"),
    )


def _score(
    model: keras.Model, test_ds: tf.data.Dataset
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Labels, predicted classes, binary cross-entropy and accuracy over ``test_ds``.

    One predict() rather than evaluate() plus predict_on_batch per batch (which
    re-runs the model on every image and took 10 s on 200 images here).
    """
    labels = np.concatenate([batch_labels.numpy() for _, batch_labels in test_ds])
    probabilities = model.predict(test_ds.map(lambda images, _: images), verbose=0)[:, 0]
    loss = float(np.mean(keras.losses.binary_crossentropy(labels[:, None], probabilities[:, None])))
    predicted = (probabilities > 0.5).astype(int)
    return labels, predicted, loss, float(np.mean(predicted == labels))


def evaluate_model(
    model: keras.Model, test_ds: tf.data.Dataset, class_names: list[str]
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame, Figure]:
    """Evaluation: the best checkpoint on the test subset (listing 8.18), confusion matrix."""
    labels, predicted, test_loss, test_accuracy = _score(model, test_ds)
    confusion, per_class = classification_tables(labels, predicted, list(class_names))
    logger.info("Test accuracy %.4f, test loss %.4f", test_accuracy, test_loss)
    metrics = test_metrics(test_loss, test_accuracy)
    return metrics, confusion, per_class, plot_confusion_matrix(confusion, "Cats vs dogs test set")


def evaluate_final_model(model: keras.Model, test_ds: tf.data.Dataset) -> dict[str, Any]:
    """Evaluation: the model after the last epoch, to set beside the best checkpoint's score."""
    _, _, test_loss, test_accuracy = _score(model, test_ds)
    logger.info("Model after the last epoch: test accuracy %.4f", test_accuracy)
    return test_metrics(test_loss, test_accuracy)


def plot_augmented_images(train_ds: tf.data.Dataset, architecture: dict[str, Any]) -> Figure:
    """Evaluation: one training image augmented nine times (listing 8.15, figure 8.10)."""
    augmentation = architecture.get("augmentation", {})
    data_augmentation = build_data_augmentation(
        rotation=augmentation.get("rotation", 0.1), zoom=augmentation.get("zoom", 0.2)
    )
    images, _ = next(iter(train_ds.take(1)))
    images = tf.cast(images, tf.float32)
    figure = plt.figure(figsize=(8, 8))
    for position in range(9):
        augmented = data_augmentation(images[:1], training=True)
        axis = figure.add_subplot(3, 3, position + 1)
        axis.imshow(np.clip(augmented[0].numpy(), 0, 255).astype("uint8"))
        axis.axis("off")
    figure.suptitle("One training image, augmented nine times")
    return figure
