"""Keras training shared by every pipeline: seeding, checks, fit with checkpoints, history."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import mlflow

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


PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
# Training options added after the first release, with their defaults.
OPTION_DEFAULTS = {"precision": "float32", "jit_compile": False}


@contextlib.contextmanager
def precision_policy(name: str) -> Iterator[None]:
    """Layers built inside compute in ``name`` (a Keras dtype policy); restored after.

    The models' sigmoid/softmax output layers are float32 whatever the policy.
    """
    if name not in PRECISIONS:
        raise ValueError(f"training.precision must be one of {list(PRECISIONS)}, got {name!r}")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def compile_model(model: keras.Model, training: dict[str, Any]) -> keras.Model:
    """Compile with the optimizer, loss and XLA choice (``jit_compile``) of the parameters."""
    model.compile(
        optimizer=training.get("optimizer", "rmsprop"),
        loss=training["loss"],
        metrics=["accuracy"],
        jit_compile=bool(training.get("jit_compile", False)),
    )
    logger.info(
        "Compiled %s (%d parameters) for %s epochs",
        model.name,
        model.count_params(),
        training.get("epochs"),
    )
    return model


class TrainingState:
    """Files that let a killed training run continue where it stopped.

    ``backup/``: Keras' ``BackupAndRestore`` (weights, optimizer state, epoch);
    ``best.keras``: the best checkpoint so far; ``history.csv``: one row per finished
    epoch (``CSVLogger``); ``run.json``: the MLflow run that started the training;
    ``config.sha256``: the model and training parameters it belongs to (a state left
    by another configuration is discarded, not resumed). The folder is deleted once
    training finishes.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.backup = folder / "backup"
        self.best = folder / "best.keras"
        self.history = folder / "history.csv"
        self.run = folder / "run.json"
        self.config = folder / "config.sha256"

    def is_resumable(self, config: str) -> bool:
        """True when an earlier run of the same configuration left a backup."""
        if not (self.backup.is_dir() and any(self.backup.iterdir())):
            return False
        if not self.config.is_file() or self.config.read_text() != config:
            logger.warning("Discarding %s: it was left by another configuration", self.folder)
            return False
        return True

    def start_afresh(self, config: str) -> None:
        """Remove what an earlier run left and record this run's configuration."""
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self.config.write_text(config)

    def read_history(self) -> dict[str, list[float]]:
        """Per-epoch values of every finished epoch, the last row of each epoch kept."""
        if not self.history.is_file() or self.history.stat().st_size == 0:
            return {}
        with self.history.open() as handle:
            rows = {int(row["epoch"]): row for row in csv.DictReader(handle)}
        ordered = [rows[epoch] for epoch in sorted(rows)]
        # CSVLogger adds val_* columns of "NA" to a run without validation data.
        keys = [
            key for key in ordered[0] if key != "epoch" and any(row[key] != "NA" for row in ordered)
        ]
        return {key: [float(row[key]) for row in ordered] for key in keys}

    def remember_mlflow_run(self) -> str | None:
        """Record the active MLflow run on a fresh start; return the recorded one on resume."""
        active = mlflow.active_run()
        if self.run.is_file():
            return json.loads(self.run.read_text()).get("run_id")
        if active is not None:
            self.run.write_text(json.dumps({"run_id": active.info.run_id}))
        return None


def _architecture(layer: keras.layers.Layer) -> list[Any]:
    """Layer classes and configurations in order, without the names Keras generates.

    Auto names (``conv2d_3``) depend on how many layers the process built before, so
    ``model.to_json()`` would change with what else ran first.
    """
    children = getattr(layer, "layers", None)
    if children is not None:
        return [type(layer).__name__, [_architecture(child) for child in children]]
    config = {key: value for key, value in layer.get_config().items() if key != "name"}
    return [type(layer).__name__, config]


def training_fingerprint(model: keras.Model, training: dict[str, Any]) -> str:
    """sha256 of the model's architecture and the training parameters but ``state_dir``.

    Options left at their defaults stay out, so adding an option does not orphan the
    resume state of a run started before it existed.
    """
    fingerprinted = {
        key: value
        for key, value in training.items()
        if key not in OPTION_DEFAULTS or value != OPTION_DEFAULTS[key]
    }
    config = json.dumps(
        {"model": _architecture(model), "training": {**fingerprinted, "state_dir": None}},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(config.encode()).hexdigest()


def fit_with_best_checkpoint(
    model: keras.Model,
    training: dict[str, Any],
    x: Any,
    y: Any = None,
    *,
    validation_data: Any = None,
    state_dir: str | None = None,
) -> tuple[keras.Model, keras.Model, dict[str, list[float]]]:
    """Fit ``model`` and keep the best epoch as ``ModelCheckpoint`` saw it (listing 8.17).

    With ``state_dir``, the run can be killed and continued by running it again:
    ``BackupAndRestore`` restores weights, optimizer and epoch, the best checkpoint so
    far is kept (its threshold restored from the saved history) and the history is
    read back from ``history.csv``. The state is deleted once training finishes.
    ``training.early_stopping_patience`` (off when null) adds ``EarlyStopping``.

    Returns the model after the last epoch, the best checkpoint reloaded from disk,
    and the per-epoch history of the whole training.
    """
    check_positive(training, "epochs", where="training")
    if y is not None:
        check_positive(training, "batch_size", where="training")
    epochs = training["epochs"]
    monitor = training.get("checkpoint_monitor", "val_loss")
    validated = validation_data is not None or (
        y is not None and training.get("validation_split", 0.0) > 0
    )
    if monitor.startswith("val_") and not validated:
        raise ValueError(
            f"training.checkpoint_monitor is {monitor!r} but this run has no validation "
            "data: set training.validation_split above 0, or checkpoint_monitor to a "
            "training metric (loss, accuracy)."
        )
    temporary = None
    if state_dir is None:
        temporary = tempfile.TemporaryDirectory(prefix="convnets-training-")
        state_dir = temporary.name
    state = TrainingState(Path(state_dir))
    config = training_fingerprint(model, training)
    previous = state.read_history() if state.is_resumable(config) else {}
    if previous:
        logger.info(
            "Resuming training from %s after epoch %d of %d",
            state.folder,
            len(previous["loss"]),
            epochs,
        )
    else:
        state.start_afresh(config)
    resumed_from = state.remember_mlflow_run()
    if resumed_from and mlflow.active_run() and mlflow.active_run().info.run_id != resumed_from:
        # One continuous history: this run logs every epoch and names the run it continues.
        mlflow.set_tag("resumed_from_run_id", resumed_from)
    best_so_far = None
    if previous.get(monitor):
        best_so_far = (max if "acc" in monitor else min)(previous[monitor])
    callbacks = [
        keras.callbacks.BackupAndRestore(
            backup_dir=str(state.backup), delete_checkpoint=True, double_checkpoint=True
        ),
        keras.callbacks.ModelCheckpoint(
            filepath=str(state.best),
            save_best_only=True,
            monitor=monitor,
            initial_value_threshold=best_so_far,
        ),
        keras.callbacks.CSVLogger(str(state.history), append=True),
        EpochLogger(epochs),
    ]
    patience = training.get("early_stopping_patience")
    if patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=monitor, patience=patience))
    # Arrays are batched by fit(); a tf.data.Dataset arrives batched already.
    batch_size = training["batch_size"] if y is not None else None
    try:
        model.fit(
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
        history = state.read_history()
        best_model = keras.models.load_model(state.best)
        if temporary is None:
            shutil.rmtree(state.folder)  # finished: leave no resume state behind
    finally:
        if temporary is not None:
            temporary.cleanup()
    return model, best_model, history


def log_models(model: keras.Model, best_checkpoint: keras.Model) -> tuple[keras.Model, keras.Model]:
    """Node: hand both saved models on to the catalog's MLflow model datasets."""
    return model, best_checkpoint
