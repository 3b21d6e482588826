"""Keras training shared by every pipeline: seeding, checks, fit with checkpoints, history."""

from __future__ import annotations

import contextlib
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
import numpy as np
import tensorflow as tf
from mlflow.entities import Metric
from rich import get_console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from convnets.hardware import resolve_precision
from convnets.parameters import Loss, Optimizer, Training
from convnets.resume_state import (
    SPACE_MARGIN_BYTES,
    NoSpaceLeft,
    ResumePoint,
    TrainingState,
    restore_seed_states,
    restore_weights,
    save_model_atomically,
    save_weights_atomically,
    seed_states,
    variables_bytes,
)
from convnets.scratch import ScratchDirectory

logger = logging.getLogger(__name__)


EPOCH_TIME = "epoch_time_s"  # wall time of each epoch, validation included, in the history
# Per-epoch values logged to MLflow as metric histories (step = epoch, from 1).
HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", EPOCH_TIME)


class EpochLogger(keras.callbacks.Callback):
    """Adds the epoch's wall time and learning rate to its logs, and NaN where an epoch
    has no validation (``validation_freq`` above 1), for the history to keep.

    Listed before ``EpochCommit``, which logs the epoch's line once it is saved.
    """

    def __init__(self, every_epoch: tuple[str, ...] = ()) -> None:
        super().__init__()
        self._every_epoch = every_epoch
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._started = time.perf_counter()
        # The rate of the epoch's first step (a schedule moves on with every step).
        rate = self.model.optimizer.learning_rate
        self._rate = float(keras.ops.convert_to_numpy(rate))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs[EPOCH_TIME] = time.perf_counter() - self._started
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
    epochs of ``previous`` (a resumed training's history) that the run does not hold
    yet, so each epoch appears once. Listed after ``EpochCommit``: an epoch is logged
    once it is saved, so a resumed run never logs a step twice. Epochs that could not
    be sent (the tracking server or database unreachable) are kept and sent with a
    later epoch, the tries spaced out (1, 3, 7… epochs); training goes on meanwhile.
    """

    def __init__(self, run_id: str, previous: dict[str, list[float]]) -> None:
        super().__init__()
        self._run_id = run_id
        self._previous = previous
        self._client = mlflow.MlflowClient()
        self._pending: list[tuple[int, dict[str, float]]] = []
        self._backfill_checked = False  # the run's logged steps read, the backfill filtered
        self._failing = False
        # Epochs to wait before the next try while MLflow does not answer (doubling), so
        # that a hung server does not cost its whole retry budget at every epoch.
        self._wait, self._skip = 0, 0

    def _flush(self, *, force: bool = False) -> None:
        if not self._pending:
            return
        if self._skip and not force:
            self._skip -= 1
            return
        try:
            if not self._backfill_checked:
                logged = self._logged_steps()
                self._pending = [row for row in self._pending if row[0] not in logged]
                self._backfill_checked = True
            while self._pending:
                # MLflow's batch limit is 1000 metrics: a few epochs at a time, each
                # dropped from the queue once sent, so none is sent twice.
                rows, metrics = self._next_batch()
                self._client.log_batch(self._run_id, metrics=metrics)
                del self._pending[:rows]
        except Exception as error:  # noqa: BLE001 - watching the run must not stop training
            if not self._failing:
                logger.warning(
                    "Could not log epoch metrics to MLflow (training goes on; they are sent "
                    "when MLflow answers again): %s",
                    error,
                )
            self._failing = True
            self._wait = min(2 * self._wait + 1, 16)
            self._skip = self._wait
            return
        if self._failing:
            logger.info("MLflow answers again: sent the metrics of the epochs it missed")
        self._failing, self._wait, self._skip = False, 0, 0

    def _next_batch(self) -> tuple[int, list[Metric]]:
        now = int(time.time() * 1000)
        metrics: list[Metric] = []
        rows = 0
        for step, values in self._pending:
            row = [
                Metric(key, float(value), now, step)
                for key, value in values.items()
                # NaN: no validation that epoch; a NaN loss (divergence) is logged as such.
                if key in HISTORY_KEYS and not (key.startswith("val_") and math.isnan(float(value)))
            ]
            if rows and len(metrics) + len(row) > 1000:
                break
            metrics += row
            rows += 1
        return rows, metrics

    def _logged_steps(self) -> set[int]:
        return {metric.step for metric in self._client.get_metric_history(self._run_id, "loss")}

    def on_train_begin(self, logs: dict | None = None) -> None:
        epochs = len(self._previous.get("loss", []))
        self._pending += [
            (epoch + 1, {key: values[epoch] for key, values in self._previous.items()})
            for epoch in range(epochs)
        ]
        self._backfill_checked = not epochs
        self._flush(force=True)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._pending.append((epoch + 1, dict(logs or {})))
        self._flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        self._flush(force=True)
        if self._pending:
            logger.warning(
                "The metrics of %d epoch(s) could not be sent to MLflow; they are kept in "
                "the resume state and sent when the same command runs again",
                len(self._pending),
            )


class EpochOrder:
    """The indices ``0..size-1`` in a new order each epoch, drawn from (seed, epoch) alone.

    ``tf.data``'s reshuffling draws each epoch's order from how many epochs the process
    has iterated, so a resumed run would see epoch 1's order again and train on other
    batches than an uninterrupted run. Keras starts one iterator per epoch, in order;
    ``start_at`` says which epoch the next one is (``fit_with_best_checkpoint`` calls
    it). A dataset made with ``dataset`` carries its order as ``epoch_order``.
    """

    def __init__(self, size: int, seed: int) -> None:
        self._size, self._seed, self._next = size, seed, 0

    def start_at(self, epoch: int) -> None:
        self._next = epoch

    def _orders(self) -> Iterator[np.ndarray]:
        epoch, self._next = self._next, self._next + 1
        yield np.random.default_rng([self._seed, epoch]).permutation(self._size)

    def dataset(self) -> tf.data.Dataset:
        """Single indices (int64), one epoch per iteration."""
        orders = tf.data.Dataset.from_generator(
            self._orders, output_signature=tf.TensorSpec((self._size,), tf.int64)
        )
        return orders.unbatch().apply(tf.data.experimental.assert_cardinality(self._size))


def ordered_batches(
    size: int,
    batch_size: int,
    seed: int | None,
    read: Any,
    output_signature: tuple[tf.TensorSpec, ...],
) -> tf.data.Dataset:
    """Batches of ``read(indices)`` (a NumPy function), in ``EpochOrder`` when ``seed``
    is given, else in index order; read ahead of training (prefetch)."""
    order = EpochOrder(size, seed) if seed is not None else None
    indices = order.dataset() if order is not None else tf.data.Dataset.range(size)

    def read_batch(batch: tf.Tensor) -> tuple[tf.Tensor, ...]:
        values = tf.numpy_function(read, [batch], [spec.dtype for spec in output_signature])
        for value, spec in zip(values, output_signature, strict=True):
            value.set_shape(spec.shape)
        return tuple(values)

    batches = (
        indices.batch(batch_size)
        .map(read_batch, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    batches.epoch_order = order
    return batches


def _array_batches(
    x: np.ndarray, y: np.ndarray, batch_size: int, validation_split: float, seed: int
) -> tuple[tf.data.Dataset, tf.data.Dataset | None]:
    """Arrays as Keras' ``fit`` takes them (the last ``validation_split`` held out, the
    rest reshuffled each epoch), as ``EpochOrder`` batches so a resume sees the same."""
    split_at = int(len(x) * (1.0 - validation_split)) if validation_split else len(x)

    def spec(array: np.ndarray) -> tf.TensorSpec:
        return tf.TensorSpec((None, *array.shape[1:]), tf.as_dtype(array.dtype))

    signature = (spec(x), spec(y))
    train = ordered_batches(split_at, batch_size, seed, lambda i: (x[i], y[i]), signature)
    if split_at == len(x):
        return train, None
    held_out = ordered_batches(
        len(x) - split_at,
        batch_size,
        None,
        lambda i: (x[split_at + i], y[split_at + i]),
        signature,
    )
    return train, held_out


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
    """``ModelCheckpoint`` that ignores epochs without the monitored value, and saves
    through a temporary file (Keras writes in place: a crash mid-save would leave a
    damaged checkpoint).

    Keras' own saves the model of such an epoch (``validation_freq`` above 1) as the
    "best" one, although it was never validated. ``saved`` is the file written at the
    last epoch's end, or None.
    """

    saved: Path | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.saved = None
        if _monitored(logs, self.monitor):
            super().on_epoch_end(epoch, logs)

    def _save_model(self, epoch: int, batch: int | None, logs: dict | None) -> None:
        filepath = Path(self._get_file_path(epoch, batch, logs or {}))
        if self._should_save_model(epoch, batch, logs, str(filepath)):
            save_model_atomically(self.model, filepath)
            self.saved = filepath


class DiskSpaceGuard(keras.callbacks.Callback):
    """Stops the run before an epoch's files are saved on a disk that cannot hold them.

    Listed first. A full disk in the middle of an HDF5 write has crashed the process
    (a segmentation fault in h5py); the saves go through temporary files, so the
    last good state survives even that, but a clear message is better.
    """

    def __init__(self, state: TrainingState) -> None:
        super().__init__()
        self._state = state

    def _needed(self) -> int:
        files = sorted(self._state.folder.glob("epoch-*.weights.h5"))[-1:]
        files += sorted(self._state.folder.glob("best-epoch-*.keras"))[-1:]
        if len(files) == 2:
            return sum(path.stat().st_size for path in files) + SPACE_MARGIN_BYTES
        return 2 * variables_bytes(self.model) + SPACE_MARGIN_BYTES  # the weights, the best

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        needed = self._needed()
        free = shutil.disk_usage(self._state.folder).free
        if free < needed:
            raise NoSpaceLeft(
                f"No space left on device for the resume state in {self._state.folder}: "
                f"saving epoch {epoch + 1} needs about {needed / 2**20:.0f} MB and "
                f"{free / 2**20:.0f} MB are free. Free {(needed - free) / 2**20:.0f} MB or "
                "more and run the same command again; training "
                + (f"resumes after epoch {epoch}." if epoch else "starts at epoch 1.")
            )


class EpochCommit(keras.callbacks.Callback):
    """Saves each finished epoch to the resume state and records it (``TrainingState.commit``).

    Listed after the checkpoint, early stopping and ``EpochLogger``; logs the epoch's
    line once it is saved, so an epoch logged as done is never trained again.
    """

    def __init__(
        self,
        state: TrainingState,
        epochs: int,
        checkpoint: ValidatedCheckpoint,
        resume: ResumePoint | None,
    ) -> None:
        super().__init__()
        self._state = state
        self._epochs = epochs
        self._checkpoint = checkpoint
        self.history = {
            key: list(values) for key, values in (resume.history if resume else {}).items()
        }
        self.best = resume.best if resume else None
        self._best_epoch = resume.best_epoch if resume else None
        self._best_value = resume.best_value if resume else None
        self.weights = resume.weights if resume else None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = dict(logs or {})
        done = len(self.history.get("loss", []))
        for key in set(self.history) | set(logs):
            values = self.history.setdefault(key, [float("nan")] * done)
            values.append(float(logs.get(key, float("nan"))))
        if self._checkpoint.saved is not None:
            self.best, self._best_epoch = self._checkpoint.saved, epoch + 1
            self._best_value = float(logs[self._checkpoint.monitor])
        self.weights = self._state.folder / f"epoch-{epoch + 1:04d}.weights.h5"
        save_weights_atomically(self.model, self.weights)
        self.commit()
        shown = {  # the epoch's own metrics, as Keras reported them
            key: value
            for key, value in logs.items()
            if key not in (EPOCH_TIME, "learning_rate") and not math.isnan(float(value))
        }
        logger.info(
            "Epoch %d/%d %s (%.1f s)",
            epoch + 1,
            self._epochs,
            " ".join(f"{key}={value:.4f}" for key, value in shown.items()),
            logs.get(EPOCH_TIME, float("nan")),
        )

    def commit(self, final: Path | None = None) -> None:
        self._state.commit(
            self.history,
            self.weights,
            self.best,
            self._best_epoch,
            self._best_value,
            final,
            seed_states(self.model),
            # Set by early stopping before this callback: the training ends here, and a
            # resume must not train on past it.
            stopped_early=bool(self.model.stop_training),
        )


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """``EarlyStopping`` that continues counting from the history of a resumed run.

    The resume state restores weights, optimizer and epoch but not this callback's
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
    state: TrainingState, resume: ResumePoint, resumed_from: str | None
) -> tuple[keras.Model, keras.Model, dict[str, list[float]]]:
    """The models and history of a training that finished in an earlier, interrupted run."""
    logger.info(
        "Training finished earlier (%d epochs, %s): reusing its models to complete the run",
        resume.epochs_done,
        state.folder,
    )
    if state.run_id is not None:
        MlflowEpochMetrics(state.run_id, resume.history).on_train_begin()  # the epochs, once
    return (
        keras.models.load_model(resume.final),
        keras.models.load_model(resume.best),
        resume.history,
    )


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
    each epoch is committed to the resume state (``convnets.resume_state``): weights,
    optimizer state, the best checkpoint so far and the history, each verified before
    a later run continues from it. A state whose training finished gives back its
    models without training; ``TrainingState.release`` deletes it.
    ``training.early_stopping_patience`` (off when null) adds ``EarlyStopping``.

    Returns the model after the last epoch, the best checkpoint reloaded from disk,
    the per-epoch history of the whole training, and MLflow tags for the run
    (``resumed_from_run_id`` when it continues another run's training).
    """
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
    try:
        data = {"x": x, "y": y, "batch_size": batch_size, "validation_split": validation_split}
        return _fit_resumably(
            model, training, data, validation_data, state, keep_final=temporary is None
        )
    finally:
        if temporary is not None:
            temporary.cleanup()


def _fit_resumably(
    model: keras.Model,
    training: Training,
    data: dict[str, Any],
    validation_data: Any,
    state: TrainingState,
    *,
    keep_final: bool,
) -> tuple[keras.Model, keras.Model, dict[str, list[float]], dict[str, str]]:
    epochs, monitor = training.epochs, training.checkpoint_monitor
    x, y = data["x"], data["y"]
    batch_size, validation_split = data["batch_size"], data["validation_split"]
    validated = validation_data is not None or (y is not None and validation_split > 0)
    config = training_fingerprint(model, training, _describe_data(x, batch_size, validation_split))
    resume = state.resume_point(model) if state.is_resumable(config) else None
    if resume is not None:
        logger.info(
            "Resuming training from %s after epoch %d of %d",
            state.folder,
            resume.epochs_done,
            epochs,
        )
    else:
        state.start_afresh(config)
    resumed_from = state.remember_mlflow_run()
    tags = _resume_tags(state, resumed_from, epochs_done=resume.epochs_done if resume else 0)
    tags.update(precision_tags(training.precision))
    if resume is not None and resume.final is not None:
        return (*_finished_training(state, resume, resumed_from), tags)
    if resume is not None and resume.weights is not None:
        restore_weights(model, resume.weights)
        restore_seed_states(model, resume.seed_states)
    if resume is not None and resume.finished and resume.best is not None:
        # Finished, but its final model was damaged: the last weights are that model.
        save_model_atomically(model, state.final)
        state.commit(
            resume.history,
            resume.weights,
            resume.best,
            resume.best_epoch,
            resume.best_value,
            state.final,
            resume.seed_states,
        )
        return model, keras.models.load_model(resume.best), resume.history, tags
    mode = monitor_mode(monitor)
    checkpoint = ValidatedCheckpoint(
        filepath=str(state.folder / "best-epoch-{epoch:04d}.keras"),
        save_best_only=True,
        monitor=monitor,
        mode=mode,
        initial_value_threshold=resume.best_value if resume else None,
    )
    commit = EpochCommit(state, epochs, checkpoint, resume)
    previous = resume.history if resume else {}
    progress = TrainingProgress(epochs)
    # Order matters. The disk check comes first; the checkpoint and early stopping see
    # the epoch's own logs (they skip epochs without validation); EpochLogger adds the
    # epoch time, the rate and NaN for a skipped validation, for the commit to keep;
    # MLflow hears of an epoch only once it is saved.
    callbacks: list[keras.callbacks.Callback] = [DiskSpaceGuard(state), checkpoint]
    patience = training.early_stopping_patience
    if patience:
        callbacks.append(
            ResumableEarlyStopping(
                previous.get(monitor, []), monitor=monitor, mode=mode, patience=patience
            )
        )
    validated_keys = ("val_loss", "val_accuracy") if validated else ()
    callbacks += [progress, EpochLogger(every_epoch=validated_keys), commit]
    if state.run_id is not None:  # watch the run in the MLflow UI while it trains
        callbacks.append(MlflowEpochMetrics(state.run_id, previous))
    if y is not None:
        x, validation_data = _array_batches(x, y, batch_size, validation_split, training.seed)
    initial_epoch = resume.epochs_done if resume else 0
    if getattr(x, "epoch_order", None) is not None:
        x.epoch_order.start_at(initial_epoch)
    try:
        model.fit(
            x,
            epochs=epochs,
            initial_epoch=initial_epoch,
            validation_data=validation_data,
            validation_freq=training.validation_freq,
            callbacks=callbacks,
            shuffle=False,  # the order is EpochOrder's
            verbose=0,
        )
    finally:
        progress.close()
    if commit.best is None:
        raise RuntimeError(f"No epoch of the training had a value for {monitor}")
    best_model = keras.models.load_model(commit.best)
    if keep_final:
        # Recorded last: a state whose record names final.keras holds a finished training.
        save_model_atomically(model, state.final)
        commit.commit(final=state.final)
    return model, best_model, commit.history, tags
