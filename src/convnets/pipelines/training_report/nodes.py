"""Nodes that report a finished training: metric histories, curves, MLflow models."""

from __future__ import annotations

import keras
from matplotlib.figure import Figure

from convnets.reporting import plot_training_curves


def report_training(history: dict[str, list[float]], title: str) -> Figure:
    """The training curves (figure 8.11). The metrics reached MLflow as each epoch ended."""
    return plot_training_curves(history, title)


def log_models(model: keras.Model, best_checkpoint: keras.Model) -> tuple[keras.Model, keras.Model]:
    """Both trained models, handed to the catalog's MLflow model datasets to log."""
    return model, best_checkpoint
