"""Keras training shared by every pipeline: seeding, checks, fit with checkpoints, history."""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import json
import logging
import math
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import mlflow
import tensorflow as tf
from mlflow.entities import Metric
from rich import get_console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from convnets.hardware import resolve_precision
from convnets.parameters import Loss, Optimizer, Training
from convnets.scratch import ScratchDirectory

logger = logging.getLogger(__name__)


EPOCH_TIME = "epoch_time_s"  # wall time of each epoch, validation included, in the history
# Per-epoch values logged to MLflow as metric histories (step = epoch, from 1).
HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", EPOCH_TIME)


class EpochLogger(keras.callbacks.Callback):
    """Logs one line per epoch through ``logging`` and adds the epoch's wall time to its logs.

    Listed before ``CSVLogger``, so the time is kept in the history, resumed runs too.
    """

    def __init__(self, epochs: int, every_epoch: tuple[str, ...] = ()) -> None:
        super().__init__()
        self._epochs = epochs
        self._every_epoch = every_epoch  # NaN where an epoch has none (validation_freq > 1)
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._started = time.perf_counter()
        # The rate of the epoch's first step (a schedule moves on with every step).
        rate = self.model.optimizer.learning_rate
        self._rate = float(keras.ops.convert_to_numpy(rate))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        elapsed = time.perf_counter() - self._started
        metrics = " ".join(f"{key}={value:.4f}" for key, value in (logs or {}).items())
        logger.info("Epoch %d/%d %s (%.1f s)", epoch + 1, self._epochs, metrics, elapsed)
        if logs is not None:
            logs[EPOCH_TIME] = elapsed
            logs["learning_rate"] = self._rate
            for key in self._every_epoch:
                logs.setdefault(key, float("nan"))


class TrainingProgress(keras.callbacks.Callback):
    """Progress within each epoch and the time left for the whole training.

    On a terminal, a progress bar (rich, as Kedro's own output); elsewhere (a log file,
    CI), a log line about every tenth of an epoch.
    """

    def __init__(self, epochs: int, terminal: bool | None = None) -> None:
        super().__init__()
        self._epochs = epochs
        # Where rich draws: Kedro's console, stdout.
        self._terminal = get_console().is_terminal if terminal is None else terminal
        self._bar: Progress | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._started = time.perf_counter()
        self._first_epoch: int | None = None
        if self._terminal:
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[left]}"),
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task("training", total=None, left="")

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self._first_epoch is None:
            self._first_epoch = epoch  # a resumed run starts later
        self._epoch = epoch
        self._steps = self.params.get("steps") or 0
        self._next_tenth = 1
        if self._bar is not None:
            self._bar.update(
                self._task,
                description=f"epoch {epoch + 1}/{self._epochs}",
                total=self._steps or None,
                completed=0,
            )

    def _time_left(self, step: int) -> str:
        done = (self._epoch - self._first_epoch) + step / max(self._steps, 1)
        remaining = self._epochs - self._epoch - step / max(self._steps, 1)
        if done <= 0:
            return "time left: unknown"
        seconds = (time.perf_counter() - self._started) / done * remaining
        return f"about {seconds / 60:.0f} min left for the training"

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        step = batch + 1
        if self._bar is not None:
            self._bar.update(self._task, completed=step, left=self._time_left(step))
        elif self._steps and step * 10 >= self._next_tenth * self._steps:
            self._next_tenth = step * 10 // self._steps + 1
            logger.info(
                "Epoch %d/%d: %d%% (%d/%d steps), %s",
                self._epoch + 1,
                self._epochs,
                100 * step // self._steps,
                step,
                self._steps,
                self._time_left(step),
            )

    def on_train_end(self, logs: dict | None = None) -> None:
        self.close()

    def close(self) -> None:
        """Stop the bar; also after a failed or interrupted ``fit`` (no ``on_train_end``)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


class MlflowEpochMetrics(keras.callbacks.Callback):
    """Each epoch's metrics on the MLflow run ``run_id`` as the epoch ends (step = epoch).

    ``mlflow.keras.MlflowCallback`` numbers epochs from 0 and knows nothing of a resumed
    training; this one numbers them from 1, as the book's plots do, and first logs the
    epochs a resumed run trained before (``previous``), so each epoch appears once.
    """

    def __init__(self, run_id: str, previous: dict[str, list[float]]) -> None:
        super().__init__()
        self._run_id = run_id
        self._previous = previous
        self._client = mlflow.MlflowClient()

    def _log(self, rows: list[tuple[int, dict[str, float]]]) -> None:
        now = int(time.time() * 1000)
        metrics = [
            Metric(key, float(value), now, step)
            for step, values in rows
            for key, value in values.items()
            # NaN: no validation that epoch; a NaN loss (divergence) is logged as such.
            if key in HISTORY_KEYS and not (key.startswith("val_") and math.isnan(float(value)))
        ]
        try:
            for start in range(0, len(metrics), 1000):  # MLflow's batch limit
                self._client.log_batch(self._run_id, metrics=metrics[start : start + 1000])
        except Exception as error:  # noqa: BLE001 - watching the run must not stop training
            logger.warning("Could not log epoch metrics to MLflow (training goes on): %s", error)

    def on_train_begin(self, logs: dict | None = None) -> None:
        epochs = len(self._previous.get("loss", []))
        self._log(
            [
                (epoch + 1, {key: values[epoch] for key, values in self._previous.items()})
                for epoch in range(epochs)
            ]
        )

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._log([(epoch + 1, dict(logs or {}))])


def peak_rss_mb() -> float | None:
    """The process's peak resident memory so far, in MiB; None where it cannot be read."""
    try:
        import resource  # noqa: PLC0415 - Unix only
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS


def _monitored(logs: dict | None, monitor: str) -> bool:
    """True when this epoch has a value for ``monitor`` (not so between validations)."""
    value = (logs or {}).get(monitor)
    return value is not None and not math.isnan(float(value))


def monitor_mode(monitor: str) -> str:
    """``max`` for accuracies, ``min`` for losses: said once, for every callback."""
    return "max" if "acc" in monitor else "min"


class ValidatedCheckpoint(keras.callbacks.ModelCheckpoint):
    """``ModelCheckpoint`` that ignores epochs without the monitored value.

    Keras' own saves the model of such an epoch (``validation_freq`` above 1) as the
    "best" one, although it was never validated.
    """

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if _monitored(logs, self.monitor):
            super().on_epoch_end(epoch, logs)


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """``EarlyStopping`` that continues counting from the history of a resumed run.

    ``BackupAndRestore`` restores weights, optimizer and epoch but not this callback's
    count of evaluations without improvement, so a resumed run would stop later than
    an uninterrupted one. The count and the best value are rebuilt from the history.
    Epochs without the monitored value (between validations) are not counted.
    """

    def __init__(self, previous: list[float], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._previous = previous

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if _monitored(logs, self.monitor):
            super().on_epoch_end(epoch, logs)

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)
        if self._previous and self.monitor_op is None:
            self._set_monitor_op()  # Keras sets it at the first epoch's end
        for epoch, value in enumerate(self._previous):
            if math.isnan(value):
                continue  # not validated that epoch: Keras' callback skips it too
            if self._is_improvement(value, self.best):
                self.best, self.best_epoch, self.wait = value, epoch, 0
            else:
                self.wait += 1


# Training options added since state format 2, with their usual values: left out of
# the fingerprint at that value, so the states of earlier runs stay resumable.
OPTION_DEFAULTS = {"precision": "float32", "jit_compile": False, "validation_freq": 1}
# How the training is spread over devices does not change what it computes: a state
# saved on one device setup resumes on another.
NOT_FINGERPRINTED = ("distribution", "devices")


def _learning_rate(optimizer: Optimizer, steps_per_epoch: int, epochs: int) -> Any:
    """The peak rate, or a cosine decay to 0 over the training after a linear warm-up."""
    if optimizer.schedule == "constant":
        return optimizer.learning_rate
    total = steps_per_epoch * epochs
    warmup = round(optimizer.warmup_epochs * steps_per_epoch)
    if warmup == 0:
        return keras.optimizers.schedules.CosineDecay(optimizer.learning_rate, total)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        decay_steps=max(1, total - warmup),
        warmup_target=optimizer.learning_rate,
        warmup_steps=warmup,
    )


def build_optimizer(
    optimizer: str | Optimizer, steps_per_epoch: int, epochs: int
) -> str | keras.optimizers.Optimizer:
    """A Keras optimizer from the parameters; a bare name is passed on as Keras takes it."""
    if isinstance(optimizer, str):
        return optimizer
    rate = _learning_rate(optimizer, steps_per_epoch, epochs)
    # AdamW needs a float; the others take None for "no decay".
    decay = optimizer.weight_decay if optimizer.name == "adamw" else optimizer.weight_decay or None
    optimizer_class = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "rmsprop": keras.optimizers.RMSprop,
        "sgd": keras.optimizers.SGD,
    }[optimizer.name]
    return optimizer_class(learning_rate=rate, weight_decay=decay)


def build_loss(loss: str | Loss) -> str | keras.losses.Loss:
    """A Keras loss from the parameters; a bare name is passed on as Keras takes it."""
    if isinstance(loss, str):
        return loss
    return keras.losses.BinaryCrossentropy(label_smoothing=loss.label_smoothing)


def precision_tags(precision: str) -> dict[str, str]:
    """The policy a run computes in and why, logged and kept as MLflow tags."""
    policy, reason = resolve_precision(precision)
    logger.info("Precision %s (%s: %s)", policy, precision, reason)
    return {"precision": policy, "precision_reason": f"{precision}: {reason}"}


@contextlib.contextmanager
def precision_policy(name: str) -> Iterator[None]:
    """Layers built inside compute in ``name`` (a Keras dtype policy); restored after.

    ``auto`` is resolved from the hardware (``hardware.resolve_precision``). The models'
    sigmoid/softmax output layers are float32 whatever the policy.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(resolve_precision(name)[0])
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@functools.cache
def _mirrored_strategy(devices: tuple[str, ...] | None) -> tf.distribute.MirroredStrategy:
    # One strategy per device set and process: a second MirroredStrategy would reuse
    # the first one's collective instance keys, and its all-reduces would fail.
    return tf.distribute.MirroredStrategy(devices=list(devices) if devices else None)


@contextlib.contextmanager
def distribution_scope(training: Training) -> Iterator[None]:
    """Build, compile and fit inside this: ``training.distribution`` says on which devices.

    ``mirrored`` copies the model to each device of ``training.devices`` (all GPUs,
    or the CPU, when null) with ``tf.distribute.MirroredStrategy``; each global batch
    is split across the replicas and their gradients summed, so the batch size in the
    parameters is the global batch. One device is a strategy of one replica.
    """
    if training.distribution == "none":
        yield
        return
    strategy = _mirrored_strategy(training.devices)
    logger.info(
        "MirroredStrategy: %d replica(s) on %s; each global batch is split across them",
        strategy.num_replicas_in_sync,
        ", ".join(strategy.extended.worker_devices),
    )
    with strategy.scope():
        yield


def compile_model(
    model: keras.Model, training: Training, steps_per_epoch: int | None = None
) -> keras.Model:
    """Compile with the optimizer, loss and XLA choice (``jit_compile``) of the parameters.

    A learning-rate schedule needs ``steps_per_epoch`` (batches in one epoch).
    """
    scheduled = getattr(training.optimizer, "schedule", "constant") != "constant"
    if scheduled and steps_per_epoch is None:
        raise ValueError("A learning-rate schedule needs the number of steps per epoch")
    model.compile(
        optimizer=build_optimizer(training.optimizer, steps_per_epoch or 0, training.epochs),
        loss=build_loss(training.loss),
        metrics=["accuracy"],
        jit_compile=training.jit_compile,
    )
    logger.info(
        "Compiled %s (%d parameters) for %d epochs",
        model.name,
        model.count_params(),
        training.epochs,
    )
    return model


class TrainingState:
    """Files that let a killed training run continue where it stopped.

    ``backup/``: Keras' ``BackupAndRestore`` (weights, optimizer state, epoch);
    ``best.keras``: the best checkpoint so far; ``history.csv``: one row per finished
    epoch (``CSVLogger``); ``run.json``: the MLflow run that started the training;
    ``config.sha256``: the model and training parameters it belongs to (a state left
    by another configuration is set aside, not resumed); ``final.keras``: the model
    after the last epoch, written when training finishes. The folder stays until the
    run has persisted everything made from it (``release``, called by
    ``hooks.TrainingStateHook``), so a run killed after training reuses the trained
    models. ``run_id`` is the MLflow run of the current process, if any.
    """

    def __init__(self, folder: Path, run_id: str | None = None) -> None:
        self.folder = folder
        self.run_id = run_id
        self.backup = folder / "backup"
        self.best = folder / "best.keras"
        self.history = folder / "history.csv"
        self.run = folder / "run.json"
        self.config = folder / "config.sha256"
        self.final = folder / "final.keras"

    def is_finished(self) -> bool:
        """True when training ran to its end and both models are saved here."""
        return self.final.is_file() and self.best.is_file()

    def release(self) -> None:
        """Delete the state: everything made from it is persisted elsewhere."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def _has_progress(self) -> bool:
        has_backup = self.backup.is_dir() and any(self.backup.iterdir())
        return has_backup or self.is_finished()

    def _recorded_config(self) -> str:
        try:
            return self.config.read_text().strip()
        except (OSError, UnicodeDecodeError):
            return ""

    def set_aside_folder(self, config: str) -> Path:
        """Where a state of configuration ``config`` waits while another one trains."""
        return self.folder.with_name(f"{self.folder.name}.set-aside-{(config or 'unknown')[:12]}")

    def is_resumable(self, config: str) -> bool:
        """True when an earlier run of the same configuration left a backup or finished.

        A state of another configuration is never deleted: it is set aside (renamed to
        ``training_state.set-aside-<its configuration>``) and comes back when a run of
        that configuration starts again.
        """
        if self._has_progress():
            recorded = self._recorded_config()
            if recorded == config:
                return True
            target = self.set_aside_folder(recorded)
            if target.exists():
                target = target.with_name(f"{target.name}-{time.strftime('%Y%m%d-%H%M%S')}")
            self.folder.rename(target)
            logger.warning(
                "Set aside %s: it was left by another configuration (its epochs are kept in "
                "%s and resume when that configuration runs again; delete the folder to free "
                "its space)",
                self.folder,
                target,
            )
        aside = self.set_aside_folder(config)
        if aside.is_dir():
            if self.folder.exists():
                shutil.rmtree(self.folder)  # a state of this project with no epoch in it
            aside.rename(self.folder)
            logger.info("Took back %s, set aside earlier by a run of another configuration", aside)
            return self._has_progress() and self._recorded_config() == config
        return False

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
        """Record this run's MLflow run on a fresh start; return the recorded one on resume."""
        if self.run.is_file():
            return json.loads(self.run.read_text()).get("run_id")
        if self.run_id is not None:
            self.run.write_text(json.dumps({"run_id": self.run_id}))
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


STATE_FORMAT = 2  # the layout of the resume state; states of another format are not resumed


def training_fingerprint(
    model: keras.Model, training: Training, data: dict[str, Any] | None = None
) -> str:
    """sha256 of the model's architecture, the training parameters and ``data``.

    ``data`` describes what is trained on (input shape, batches an epoch), so a state
    left by a run on other data or batches is not resumed. Options at their usual
    values stay out, so adding an option keeps the states written since this format.
    """
    # What was computed: "auto" as the policy it resolved to on this machine.
    dumped = training.model_dump()
    if "precision" in dumped:
        dumped["precision"] = resolve_precision(dumped["precision"])[0]
    fingerprinted = {
        key: value
        for key, value in dumped.items()
        if key not in NOT_FINGERPRINTED
        and (key not in OPTION_DEFAULTS or value != OPTION_DEFAULTS[key])
    }
    config = json.dumps(
        {
            "format": STATE_FORMAT,
            "model": _architecture(model),
            "training": fingerprinted,
            "data": data or {},
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(config.encode()).hexdigest()


def _describe_data(x: Any, batch_size: int | None, validation_split: float) -> dict[str, Any]:
    """What the fingerprint records of the training data: shapes and batches an epoch."""
    if batch_size is None:  # a batched tf.data.Dataset
        return {"spec": str(x.element_spec), "batches": int(x.cardinality())}
    return {"shape": list(x.shape), "batch_size": batch_size, "validation_split": validation_split}


def _finished_training(
    state: TrainingState, history: dict[str, list[float]], resumed_from: str | None
) -> tuple[keras.Model, keras.Model, dict[str, list[float]]]:
    """The models and history of a training that finished in an earlier, interrupted run."""
    logger.info(
        "Training finished earlier (%d epochs, %s): reusing its models to complete the run",
        len(history["loss"]),
        state.folder,
    )
    if state.run_id is not None and resumed_from != state.run_id:
        MlflowEpochMetrics(state.run_id, history).on_train_begin()  # the epochs, once
    return keras.models.load_model(state.final), keras.models.load_model(state.best), history


def _resume_tags(state: TrainingState, resumed_from: str | None, epochs_done: int) -> dict:
    """MLflow tags of a run that continues another run's training."""
    if not resumed_from or resumed_from == state.run_id:
        return {}
    # One continuous history: this run logs every epoch and names the run it continues.
    tags = {"resumed_from_run_id": resumed_from}
    active = mlflow.active_run()
    if epochs_done and active is not None and active.info.run_id == state.run_id:
        # Told apart from the run it continues in the UI's list (same pipeline name).
        tags["mlflow.runName"] = f"{active.info.run_name} (resumed after epoch {epochs_done})"
    return tags


def fit_with_best_checkpoint(
    model: keras.Model,
    training: Training,
    x: Any,
    y: Any = None,
    *,
    batch_size: int | None = None,
    validation_split: float = 0.0,
    validation_data: Any = None,
    state: TrainingState | None = None,
) -> tuple[keras.Model, keras.Model, dict[str, list[float]], dict[str, str]]:
    """Fit ``model`` and keep the best epoch as ``ModelCheckpoint`` saw it (listing 8.17).

    With ``state``, the run can be killed and continued by running it again:
    ``BackupAndRestore`` restores weights, optimizer and epoch, the best checkpoint so
    far is kept (its threshold restored from the saved history) and the history is
    read back from ``history.csv``. A state whose training finished gives back its
    models without training; ``TrainingState.release`` deletes it.
    ``training.early_stopping_patience`` (off when null) adds ``EarlyStopping``.

    Returns the model after the last epoch, the best checkpoint reloaded from disk,
    the per-epoch history of the whole training, and MLflow tags for the run
    (``resumed_from_run_id`` when it continues another run's training).
    """
    epochs = training.epochs
    monitor = training.checkpoint_monitor
    validated = validation_data is not None or (y is not None and validation_split > 0)
    if monitor.startswith("val_") and not validated:
        raise ValueError(
            f"training.checkpoint_monitor is {monitor!r} but this run has no validation "
            "data: set training.validation_split above 0, or checkpoint_monitor to a "
            "training metric (loss, accuracy)."
        )
    temporary = None
    if state is None:
        temporary = ScratchDirectory(prefix="convnets-training-")
        state = TrainingState(Path(temporary.name))
    config = training_fingerprint(model, training, _describe_data(x, batch_size, validation_split))
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
    tags = _resume_tags(state, resumed_from, epochs_done=len(previous.get("loss", [])))
    tags.update(precision_tags(training.precision))
    if previous and state.is_finished():
        return (*_finished_training(state, previous, resumed_from), tags)
    mode = monitor_mode(monitor)
    best_so_far = None
    seen = [value for value in previous.get(monitor, []) if not math.isnan(value)]
    if seen:
        best_so_far = (max if mode == "max" else min)(seen)
    validated_keys = ("val_loss", "val_accuracy") if validated else ()
    progress = TrainingProgress(epochs)
    # Order matters. The checkpoint and early stopping see the epoch's own logs (they
    # skip epochs without validation); EpochLogger adds the epoch time, the rate and
    # NaN for a skipped validation, for CSVLogger to keep; BackupAndRestore records the
    # epoch as done only after its checkpoint and history row are written.
    callbacks = [
        ValidatedCheckpoint(
            filepath=str(state.best),
            save_best_only=True,
            monitor=monitor,
            mode=mode,
            initial_value_threshold=best_so_far,
        ),
    ]
    patience = training.early_stopping_patience
    if patience:
        callbacks.append(
            ResumableEarlyStopping(
                previous.get(monitor, []), monitor=monitor, mode=mode, patience=patience
            )
        )
    callbacks += [
        progress,
        EpochLogger(epochs, every_epoch=validated_keys),
        keras.callbacks.CSVLogger(str(state.history), append=True),
        keras.callbacks.BackupAndRestore(
            backup_dir=str(state.backup), delete_checkpoint=True, double_checkpoint=True
        ),
    ]
    if state.run_id is not None:  # watch the run in the MLflow UI while it trains
        # Earlier epochs were logged to this very run already unless it is a new one.
        backfill = previous if resumed_from != state.run_id else {}
        callbacks.append(MlflowEpochMetrics(state.run_id, backfill))
    try:
        model.fit(
            x,
            y,
            epochs=epochs,
            batch_size=batch_size,
            validation_data=validation_data,
            validation_split=validation_split,
            validation_freq=training.validation_freq,
            callbacks=callbacks,
            # A tf.data.Dataset is shuffled by its own pipeline; Keras warns otherwise.
            shuffle=y is not None,
            verbose=0,
        )
        history = state.read_history()
        best_model = keras.models.load_model(state.best)
        if temporary is None:
            # Written atomically: a state with final.keras holds a finished training.
            partial = state.final.with_name(".final.partial.keras")
            model.save(partial)
            partial.replace(state.final)
    finally:
        progress.close()
        if temporary is not None:
            temporary.cleanup()
    return model, best_model, history, tags
