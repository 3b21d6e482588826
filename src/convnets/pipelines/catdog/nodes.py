"""Nodes of the cats-vs-dogs pipelines (listings 8.6 to 8.18 of the book)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from convnets.datasets import ImageArchive, LazyFile
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
from convnets.training import check_positive, compile_model, fit_with_best_checkpoint

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")


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


def make_datasets(
    subset_dir: str, split: dict[str, Any]
) -> tuple[tf.data.Dataset, tf.data.Dataset, tf.data.Dataset]:
    """Preprocessing: batched ``tf.data`` datasets of the three subsets (listing 8.9)."""
    check_positive(split, "batch_size", where="dogs_vs_cats")
    # The shuffling order depends on TensorFlow's global seed as well as the op seed.
    keras.utils.set_random_seed(split.get("seed", 0))
    image_size = tuple(split["image_size"])
    datasets = []
    for subset_name in SPLITS:
        datasets.append(
            keras.utils.image_dataset_from_directory(
                Path(subset_dir) / subset_name,
                image_size=image_size,
                batch_size=split["batch_size"],
                class_names=list(split["classes"]),
                shuffle=subset_name == "train",
                seed=split.get("seed", 0),
                verbose=False,
            )
        )
    return tuple(datasets)


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
    model = build_model(image_size, architecture)
    compile_model(model, training)
    return fit_with_best_checkpoint(
        model,
        training,
        train_ds,
        validation_data=validation_ds,
        state_dir=training.get("state_dir"),
    )


def evaluate_model(
    model: keras.Model, test_ds: tf.data.Dataset, class_names: list[str]
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame, Figure]:
    """Evaluation: the best checkpoint on the test subset (listing 8.18), confusion matrix."""
    test_loss, test_accuracy = model.evaluate(test_ds, verbose=0)
    labels, predicted = [], []
    for images, batch_labels in test_ds:
        labels.append(batch_labels.numpy())
        predicted.append((model.predict_on_batch(images)[:, 0] > 0.5).astype(int))
    confusion, per_class = classification_tables(
        np.concatenate(labels), np.concatenate(predicted), list(class_names)
    )
    logger.info("Test accuracy %.4f, test loss %.4f", test_accuracy, test_loss)
    metrics = test_metrics(test_loss, test_accuracy)
    return metrics, confusion, per_class, plot_confusion_matrix(confusion, "Cats vs dogs test set")


def plot_augmented_images(train_ds: tf.data.Dataset, architecture: dict[str, Any]) -> Figure:
    """Evaluation: one training image augmented nine times (listing 8.15, figure 8.10)."""
    augmentation = architecture.get("augmentation", {})
    data_augmentation = build_data_augmentation(
        rotation=augmentation.get("rotation", 0.1), zoom=augmentation.get("zoom", 0.2)
    )
    images, _ = next(iter(train_ds.take(1)))
    figure = plt.figure(figsize=(8, 8))
    for position in range(9):
        augmented = data_augmentation(images[:1], training=True)
        axis = figure.add_subplot(3, 3, position + 1)
        axis.imshow(np.clip(augmented[0].numpy(), 0, 255).astype("uint8"))
        axis.axis("off")
    figure.suptitle("One training image, augmented nine times")
    return figure
