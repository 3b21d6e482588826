"""Nodes that report a finished training: metric histories, curves, MLflow models."""

from __future__ import annotations

import keras
from matplotlib.figure import Figure

from convnets.ml.reporting import plot_training_curves
from convnets.serving.model import ServableModel, ServingSpec


def report_training(history: dict[str, list[float]], title: str) -> Figure:
    """The training curves (figure 8.11). The metrics reached MLflow as each epoch ended."""
    return plot_training_curves(history, title)


def log_final_model(model: keras.Model) -> keras.Model:
    """The model after the last epoch, handed to the catalog's MLflow model dataset.

    Kept as a node: Kedro saves an output to one dataset and this model goes to two (the
    versioned ``model_keras`` file and the MLflow model); it also re-logs the saved file
    alone (``kedro run --nodes=<namespace>.log_final_model``, docs/scaling.md).
    """
    return model


def package_servable_model(
    best_checkpoint: keras.Model, test_accuracy: float, spec: ServingSpec
) -> ServableModel:
    """The best checkpoint as a model that takes image bytes, to log, register and serve."""
    return ServableModel(best_checkpoint, spec, test_accuracy)
