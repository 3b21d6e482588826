"""Keras training shared by every pipeline: seeding, checks, fit with checkpoints, history."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import keras

logger = logging.getLogger(__name__)


def check_positive(params: dict[str, Any], *keys: str, where: str = "parameters") -> None:
    """Raise ``ValueError`` naming the parameter when one of ``keys`` is not a positive int."""
    for key in keys:
        value = params.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(
                f"{where}.{key} must be a positive integer, got {value!r}. "
                f"Fix it in conf/base/parameters_*.yml or pass --params={key}=<n>."
            )


class EpochLogger(keras.callbacks.Callback):
    """Logs one line per epoch through ``logging`` (Keras' own bar prints to stdout)."""

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self._epochs = epochs
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        metrics = " ".join(f"{key}={value:.4f}" for key, value in (logs or {}).items())
        elapsed = time.perf_counter() - self._started
        logger.info("Epoch %d/%d %s (%.1f s)", epoch + 1, self._epochs, metrics, elapsed)


def compile_model(model: keras.Model, training: dict[str, Any]) -> keras.Model:
    """Compile with the optimizer and loss named in the training parameters."""
    model.compile(
        optimizer=training.get("optimizer", "rmsprop"),
        loss=training["loss"],
        metrics=["accuracy"],
    )
    return model


def fit_with_best_checkpoint(
    model: keras.Model,
    training: dict[str, Any],
    x: Any,
    y: Any = None,
    validation_data: Any = None,
) -> tuple[keras.Model, keras.Model, dict[str, list[float]]]:
    """Fit ``model`` and keep the best epoch as ``ModelCheckpoint`` saw it (listing 8.17).

    Returns the model after the last epoch, the best checkpoint reloaded from disk,
    and the per-epoch history.
    """
    check_positive(training, "epochs", where="training")
    if y is not None:
        check_positive(training, "batch_size", where="training")
    epochs = training["epochs"]
    monitor = training.get("checkpoint_monitor", "val_loss")
    with tempfile.TemporaryDirectory(prefix="convnets-checkpoint-") as tmp:
        checkpoint_path = Path(tmp) / "best.keras"
        callbacks = [
            keras.callbacks.ModelCheckpoint(
                filepath=str(checkpoint_path), save_best_only=True, monitor=monitor
            ),
            EpochLogger(epochs),
        ]
        # Arrays are batched by fit(); a tf.data.Dataset arrives batched already.
        batch_size = training["batch_size"] if y is not None else None
        history = model.fit(
            x,
            y,
            epochs=epochs,
            batch_size=batch_size,
            validation_data=validation_data,
            validation_split=training.get("validation_split", 0.0) if y is not None else 0.0,
            callbacks=callbacks,
            # A tf.data.Dataset is shuffled by its own pipeline; Keras warns otherwise.
            shuffle=y is not None,
            verbose=0,
        )
        best_model = keras.models.load_model(checkpoint_path)
    return (
        model,
        best_model,
        {key: list(map(float, values)) for key, values in history.history.items()},
    )


def log_models(model: keras.Model, best_checkpoint: keras.Model) -> tuple[keras.Model, keras.Model]:
    """Node: hand both saved models on to the catalog's MLflow model datasets."""
    return model, best_checkpoint
