"""The Keras callbacks that make a training resumable and its checkpoint trustworthy.

``fit.CALLBACK_ORDER`` says in which order ``fit_with_best_checkpoint`` lists them,
and why.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from pathlib import Path
from typing import Any

import keras

from convnets.ml.training.records import ResumePoint
from convnets.ml.training.saving import (
    SPACE_MARGIN_BYTES,
    NoSpaceLeft,
    averaged_weights,
    save_model_atomically,
    save_weights_atomically,
    seed_states,
    variables_bytes,
)
from convnets.ml.training.state import TrainingState

logger = logging.getLogger(__name__)

EPOCH_TIME = "epoch_time_s"  # wall time of each epoch, validation included, in the history


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
            with averaged_weights(self.model):  # use_ema: the weights validation scored
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
