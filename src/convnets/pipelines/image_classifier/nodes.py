"""Nodes of the cats-vs-dogs model pipeline (listings 8.7 to 8.18), reused per model:
each namespace decodes the shared split at its own input size, batches it, trains, and
scores the best checkpoint and the model after the last epoch on the test subset.
"""

from __future__ import annotations

import functools
import logging
import math
import statistics
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from convnets import stopping
from convnets.datasets import DecodedImageCache, DecodedImages, ImageArrayFile, ImageFolder
from convnets.ml.hardware import PROCESSOR_FLAGS_TAG, compute_flags
from convnets.ml.models import build_catdog_model, build_data_augmentation, with_flip_averaging
from convnets.ml.preprocessing import DECODER, decode_and_resize
from convnets.ml.reporting import (
    as_mlflow_metrics,
    classification_tables,
    evaluation_metrics,
    plot_confusion_matrix,
)
from convnets.ml.training import (
    EPOCH_TIME,
    TrainingState,
    compile_model,
    distribution_scope,
    fit_with_best_checkpoint,
    ordered_batches,
    peak_rss_mb,
    precision_policy,
)
from convnets.parameters import (
    SUBSET_NAMES,
    Architecture,
    CatsVsDogsData,
    ConvnetAugmented,
    ConvnetFast,
    ConvnetXception,
    ImageInput,
    Serving,
    Training,
)
from convnets.serving.model import ServingConfig, ServingSpec

logger = logging.getLogger(__name__)

DECODE_CHUNK = 128  # images decoded per step: bounds memory whatever the split size


def _labelled_files(
    folder: ImageFolder, subset: str, classes: tuple[str, ...]
) -> tuple[list[str], np.ndarray]:
    """Every file of ``subset`` in class then name order, with its class index as label."""
    files, labels = [], []
    for class_index, class_name in enumerate(classes):
        names = folder.files(subset, class_name)
        files.extend(str(path) for path in names)
        labels.extend([class_index] * len(names))
    return files, np.asarray(labels, dtype=np.int32)


def _decoded_chunks(
    files: list[str], image_size: tuple[int, int], name: str
) -> Iterator[np.ndarray]:
    """Decode and resize ``files`` as ``image_dataset_from_directory`` does, 128 at a time."""

    def decode(path: tf.Tensor) -> tf.Tensor:
        return decode_and_resize(tf.io.read_file(path), image_size)

    chunks = (
        tf.data.Dataset.from_tensor_slices(files)
        .map(decode, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(DECODE_CHUNK)
        .prefetch(1)
    )
    done, reported = 0, 0
    for chunk in chunks:
        stopping.check()  # a safe point: the cache is written to a staging folder
        done += len(chunk)
        if done == len(files) or done - reported >= len(files) / 10:  # about ten lines
            logger.info("Decoded %d/%d %s images", done, len(files), name)
            reported = done
        yield chunk.numpy()


def decode_images(
    split: ImageFolder, data: CatsVsDogsData, image_input: ImageInput
) -> dict[str, DecodedImages]:
    """Preprocessing: each split image decoded and resized once, for every epoch to reuse.

    The book's ``image_dataset_from_directory`` decodes and resizes every JPEG again
    in every epoch. Here the pixels at ``image_size`` are stored as uint8 (rounded: at
    most half a grey level from the book's float resize). The decoding itself is
    deferred to the cache's save, which skips it when the split, the size and the
    decoder are unchanged (the cache key) and logs the time when it does decode.
    """
    image_size = image_input.image_size
    decoded = {}
    for subset_name in SUBSET_NAMES:
        files, labels = _labelled_files(split, subset_name, data.classes)
        if not files:
            raise ValueError(
                f"{split.path / subset_name} holds no images: run the ingestion first "
                "(kedro run --pipelines=catdog --tags=ingestion)"
            )
        key = f"{split.fingerprint}|{subset_name}|{image_size[0]}x{image_size[1]}|{DECODER}"
        decoded[subset_name] = DecodedImages(
            key=key,
            labels=labels,
            shape=(*image_size, 3),
            chunks=functools.partial(_decoded_chunks, files, image_size, subset_name),
        )
    logger.info(
        "Split %s at %dx%d: %s images",
        split.path,
        *image_size,
        {name: len(images.labels) for name, images in decoded.items()},
    )
    return decoded


def _batches(images: ImageArrayFile, batch_size: int, seed: int | None) -> tf.data.Dataset:
    """Batches of (uint8 images, int32 labels) read from ``images``; shuffled with a seed.

    Pixels stay uint8: the model's ``Input`` casts them in the training step; a cast here
    would make every prefetched batch four times larger (docs/benchmarks.md).
    """

    def read(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return images.read(indices), images.labels[indices]

    # Reading runs ahead of training (prefetch); the page cache keeps the file in RAM
    # when it fits, so no in-memory cache() is needed and memory stays bounded.
    signature = (
        tf.TensorSpec((None, *images.shape), tf.uint8),
        tf.TensorSpec((None,), tf.int32),
    )
    return ordered_batches(len(images), batch_size, seed, read, signature)


def make_datasets(
    cache: DecodedImageCache, image_input: ImageInput
) -> tuple[tf.data.Dataset, tf.data.Dataset, tf.data.Dataset]:
    """Preprocessing: batched ``tf.data`` datasets of the three subsets (listing 8.9).

    The book's ``image_dataset_from_directory`` batches (int labels, the training set
    reshuffled each epoch), read from the decoded images; pixels are uint8 0-255
    rather than float32 0.0-255.0, which the models' float32 input makes the same.
    """
    subsets = cache.subsets(image_input.image_size)
    return tuple(
        _batches(
            subsets[subset_name],
            image_input.batch_size,
            image_input.shuffle_seed if subset_name == "train" else None,
        )
        for subset_name in SUBSET_NAMES
    )


def train_model(
    train_ds: tf.data.Dataset,
    validation_ds: tf.data.Dataset,
    architecture: Architecture,
    training: Training,
    state: TrainingState,
) -> tuple[keras.Model, keras.Model, dict[str, list[float]], dict[str, str]]:
    """Training: fit with the best-checkpoint rule of listing 8.17, resumable from ``state``.

    With ``flip_averaging``, both returned models predict the mean over each picture
    and its mirror image, so evaluation, ``predict`` and a served model all do it.
    """
    keras.utils.set_random_seed(training.seed)
    image_size = tuple(train_ds.element_spec[0].shape[1:3])
    spec = architecture.root
    with distribution_scope(training):
        with precision_policy(training.precision):
            model = build_catdog_model(image_size, spec)
        compile_model(model, training, steps_per_epoch=int(train_ds.cardinality()))
        fitted = fit_with_best_checkpoint(
            model, training, train_ds, validation_data=validation_ds, state=state
        )
    model, best = fitted.final_model, fitted.best_model
    if isinstance(spec, ConvnetFast) and spec.flip_averaging:
        model, best = with_flip_averaging(model), with_flip_averaging(best)
    return model, best, fitted.history, fitted.tags


def report_training_cost(
    history: dict[str, list[float]],
) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """Evaluation: the training's cost for MLflow, tagged with the processor's flags.

    Wall time and median of the timed epochs (validation included; epochs resumed from
    another run have no time), epochs run, this process's peak memory. The report divides
    by the book's epoch on the same flags (``kedro run --pipelines=book_epoch``).
    """
    epoch_times = [value for value in history.get(EPOCH_TIME, []) if not math.isnan(value)]
    metrics = {"epochs_run": len(history["loss"])}
    if epoch_times:
        metrics |= {
            "train_wall_time_s": sum(epoch_times),
            "median_epoch_s": statistics.median(epoch_times),
        }
    if (peak_mb := peak_rss_mb()) is not None:
        metrics["peak_rss_mb"] = peak_mb
    median = metrics.get("median_epoch_s", math.nan)
    logger.info("Training cost: %d epochs, %.1f s each (median)", metrics["epochs_run"], median)
    return as_mlflow_metrics(metrics), {PROCESSOR_FLAGS_TAG: compute_flags()}


def _score(
    model: keras.Model, test_ds: tf.data.Dataset, threshold: float
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Labels, predicted classes, binary cross-entropy and accuracy over ``test_ds``.

    One predict() gives both, rather than evaluate() and then predictions, which
    would run the model over the test pictures twice.
    """
    labels = np.concatenate([batch_labels.numpy() for _, batch_labels in test_ds])
    probabilities = model.predict(test_ds.map(lambda images, _: images), verbose=0)[:, 0]
    loss = float(np.mean(keras.losses.binary_crossentropy(labels[:, None], probabilities[:, None])))
    predicted = (probabilities > threshold).astype(int)
    return labels, predicted, loss, float(np.mean(predicted == labels))


def evaluate_best_checkpoint(
    model: keras.Model, test_ds: tf.data.Dataset, data: CatsVsDogsData
) -> tuple[dict[str, Any], float, pd.DataFrame, pd.DataFrame, Figure]:
    """Evaluation: the best checkpoint on the test subset (listing 8.18), confusion matrix.

    The test accuracy also comes out on its own, as the registry's promotion score.
    """
    labels, predicted, test_loss, test_accuracy = _score(model, test_ds, data.decision_threshold)
    confusion, per_class = classification_tables(labels, predicted, list(data.classes))
    logger.info("Best checkpoint: test accuracy %.4f, test loss %.4f", test_accuracy, test_loss)
    metrics = evaluation_metrics("best_checkpoint", test_loss, test_accuracy)
    figure = plot_confusion_matrix(confusion, "Cats vs dogs test set")
    return metrics, test_accuracy, confusion, per_class, figure


def describe_serving(
    split: ImageFolder, data: CatsVsDogsData, image_input: ImageInput, serving: Serving
) -> ServingSpec:
    """Serving: how a client's picture becomes this model's input, and a test picture."""
    config = ServingConfig(
        class_names=list(data.classes),
        image_size=list(image_input.image_size),
        channels=3,
        input_scale=1.0,  # the models rescale their uint8 input themselves
        max_pixels=data.max_image_pixels,
        decision_threshold=data.decision_threshold,
        max_pictures_per_request=serving.max_pictures_per_request,
        max_request_bytes=serving.max_request_bytes,
    )
    example = split.files("test", data.classes[0])[0].read_bytes()
    return ServingSpec(config, example, test_split_sha256=split.fingerprint)


def evaluate_final_model(
    model: keras.Model, test_ds: tf.data.Dataset, data: CatsVsDogsData
) -> dict[str, Any]:
    """Evaluation: the model after the last epoch, to set beside the best checkpoint's score."""
    _, _, test_loss, test_accuracy = _score(model, test_ds, data.decision_threshold)
    logger.info("Model after the last epoch: test accuracy %.4f", test_accuracy)
    return evaluation_metrics("final_model", test_loss, test_accuracy)


def plot_augmented_images(train_ds: tf.data.Dataset, architecture: Architecture) -> Figure:
    """Evaluation: one training image augmented nine times (listing 8.15, figure 8.10)."""
    spec = architecture.root
    if not isinstance(spec, ConvnetAugmented | ConvnetFast | ConvnetXception):
        raise ValueError(f"The {spec.name!r} architecture has no augmentation to draw")
    data_augmentation = build_data_augmentation(
        rotation=spec.augmentation.rotation,
        zoom=spec.augmentation.zoom,
        translation=getattr(spec.augmentation, "translation", 0.0),
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
