"""Nodes that report a finished training: metric histories, curves, MLflow models."""

from __future__ import annotations

import math

import keras
from matplotlib.figure import Figure

from convnets.reporting import HISTORY_KEYS, plot_training_curves


def report_training(
    history: dict[str, list[float]], title: str
) -> tuple[dict[str, list[dict[str, float]]], Figure]:
    """Per-epoch metric histories for MLflow (step = epoch, from 1) and the training curves.

    Epochs without a value (not validated, with ``validation_freq`` above 1) are left out.
    """
    metrics = {
        key: [
            {"step": epoch, "value": value}
            for epoch, value in enumerate(values, start=1)
            if not math.isnan(value)
        ]
        for key, values in history.items()
        if key in HISTORY_KEYS
    }
    return metrics, plot_training_curves(history, title)


def log_models(model: keras.Model, best_checkpoint: keras.Model) -> tuple[keras.Model, keras.Model]:
    """Both trained models, handed to the catalog's MLflow model datasets to log."""
    return model, best_checkpoint
