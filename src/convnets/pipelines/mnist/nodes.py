"""Nodes of the MNIST pipeline: listing 8.1 to 8.3 of the book."""

from __future__ import annotations

import logging
from typing import Any

import keras
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from convnets.models import build_mnist_convnet
from convnets.reporting import classification_tables, plot_confusion_matrix, test_metrics
from convnets.training import compile_model, fit_with_best_checkpoint, precision_policy

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
    x_train: np.ndarray, y_train: np.ndarray, training: dict[str, Any]
) -> tuple[keras.Model, keras.Model, dict[str, list[float]]]:
    """Training: listing 8.1's convnet fitted as in listing 8.2."""
    keras.utils.set_random_seed(training.get("seed", 0))
    with precision_policy(training.get("precision", "float32")):
        model = build_mnist_convnet(
            input_shape=x_train.shape[1:], num_classes=training["num_classes"]
        )
    compile_model(model, training)
    model, best_model, history = fit_with_best_checkpoint(
        model, training, x_train, y_train, state_dir=training.get("state_dir")
    )
    return model, best_model, history


def evaluate_model(
    model: keras.Model, x_test: np.ndarray, y_test: np.ndarray, class_names: list[str]
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame, Figure]:
    """Evaluation: test loss and accuracy (listing 8.3), per-class metrics, confusion matrix."""
    test_loss, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
    predicted = np.argmax(model.predict(x_test, verbose=0), axis=1)
    confusion, per_class = classification_tables(y_test, predicted, class_names)
    logger.info("Test accuracy %.4f, test loss %.4f", test_accuracy, test_loss)
    metrics = test_metrics(test_loss, test_accuracy)
    return metrics, confusion, per_class, plot_confusion_matrix(confusion, "MNIST test set")
