"""Nodes of the MNIST pipeline: listing 8.1 to 8.3 of the book."""

from __future__ import annotations

import hashlib
import io
import logging
import math
from typing import Any

import keras
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image

from convnets.ml.models import build_mnist_convnet
from convnets.ml.reporting import classification_tables, evaluation_metrics, plot_confusion_matrix
from convnets.ml.training import (
    TrainingState,
    compile_model,
    distribution_scope,
    fit_with_best_checkpoint,
    precision_policy,
)
from convnets.parameters import MnistTraining, Serving
from convnets.serving.model import ServingConfig, ServingSpec

logger = logging.getLogger(__name__)


def split_arrays(
    raw: dict[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ingestion: the four arrays of a keras-format npz, checked for shape and labels."""
    x_train, y_train, x_test, y_test = (raw[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    for name, images, labels in (("train", x_train, y_train), ("test", x_test, y_test)):
        if images.ndim != 3 or len(images) != len(labels):
            raise ValueError(
                f"MNIST {name} images must be (N, height, width) with one label each, "
                f"got images {images.shape} and labels {labels.shape}"
            )
    logger.info(
        "MNIST: %d training and %d test images of %s", len(x_train), len(x_test), x_train.shape[1:]
    )
    return x_train, y_train, x_test, y_test


def scale_images(images: np.ndarray) -> np.ndarray:
    """Preprocessing: reshape to (N, 28, 28, 1) and scale to float32 in [0, 1]."""
    return images.reshape((*images.shape, 1)).astype("float32") / 255


def train_model(
    x_train: np.ndarray, y_train: np.ndarray, training: MnistTraining, state: TrainingState
) -> tuple[keras.Model, keras.Model, dict[str, list[float]], dict[str, str]]:
    """Training: listing 8.1's convnet fitted as in listing 8.2, resumable from ``state``."""
    keras.utils.set_random_seed(training.seed)
    trained_on = len(x_train) - int(len(x_train) * training.validation_split)
    with distribution_scope(training):
        with precision_policy(training.precision):
            model = build_mnist_convnet(
                input_shape=x_train.shape[1:], num_classes=training.num_classes
            )
        compile_model(model, training, steps_per_epoch=math.ceil(trained_on / training.batch_size))
        fitted = fit_with_best_checkpoint(
            model,
            training,
            x_train,
            y_train,
            batch_size=training.batch_size,
            validation_split=training.validation_split,
            state=state,
        )
    return fitted.final_model, fitted.best_model, fitted.history, fitted.tags


def _score(model: keras.Model, x_test: np.ndarray, y_test: np.ndarray) -> tuple[float, float]:
    test_loss, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
    return float(test_loss), float(test_accuracy)


def evaluate_final_model(
    model: keras.Model, x_test: np.ndarray, y_test: np.ndarray, class_names: list[str]
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame, Figure]:
    """Evaluation: the model after the last epoch, as the book scores it (listing 8.3).

    Also its per-class precision and recall and its confusion matrix.
    """
    test_loss, test_accuracy = _score(model, x_test, y_test)
    predicted = np.argmax(model.predict(x_test, verbose=0), axis=1)
    confusion, per_class = classification_tables(y_test, predicted, class_names)
    logger.info("Model after the last epoch: test accuracy %.4f", test_accuracy)
    metrics = evaluation_metrics("final_model", test_loss, test_accuracy)
    return metrics, confusion, per_class, plot_confusion_matrix(confusion, "MNIST test set")


def evaluate_best_checkpoint(
    model: keras.Model, x_test: np.ndarray, y_test: np.ndarray
) -> tuple[dict[str, Any], float]:
    """Evaluation: the best checkpoint (``checkpoint_monitor``), beside the book's score.

    The test accuracy also comes out on its own, as the registry's promotion score.
    """
    test_loss, test_accuracy = _score(model, x_test, y_test)
    logger.info("Best checkpoint: test accuracy %.4f", test_accuracy)
    return evaluation_metrics("best_checkpoint", test_loss, test_accuracy), test_accuracy


def describe_serving(
    x_test_raw: np.ndarray,
    y_test: np.ndarray,
    class_names: list[str],
    max_image_pixels: int,
    serving: Serving,
) -> ServingSpec:
    """Serving: a grayscale picture scaled as in ``scale_images``; a test digit as PNG."""
    config = ServingConfig(
        class_names=list(class_names),
        image_size=list(x_test_raw.shape[1:3]),
        channels=1,
        input_scale=1 / 255,
        max_pixels=max_image_pixels,
        decision_threshold=None,
        max_pictures_per_request=serving.max_pictures_per_request,
        max_request_bytes=serving.max_request_bytes,
    )
    example = io.BytesIO()
    Image.fromarray(x_test_raw[0]).save(example, format="PNG")
    split = hashlib.sha256(np.ascontiguousarray(x_test_raw).tobytes())
    split.update(np.ascontiguousarray(y_test).tobytes())
    return ServingSpec(config, example.getvalue(), test_split_sha256=split.hexdigest())
