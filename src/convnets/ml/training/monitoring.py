"""Watching a training while it runs: progress and time left, MLflow's epoch metrics, memory."""

from __future__ import annotations

import logging
import math
import sys
import time

import keras
import mlflow
from mlflow.entities import Metric
from rich import get_console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from convnets import stopping
from convnets.ml.training.callbacks import EPOCH_TIME

logger = logging.getLogger(__name__)

# Per-epoch values logged to MLflow as metric histories (step = epoch, from 1).
HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", EPOCH_TIME)


class TrainingProgress(keras.callbacks.Callback):
    """Progress within each epoch and the time left for the whole training.

    On a terminal, a progress bar (rich, as Kedro's own output); elsewhere (a log file,
    CI), a log line about every tenth of an epoch. The end of each training and
    validation batch is also where a stop asked for by a signal is honoured
    (``convnets.stopping``): the epoch under way is not committed, the ones before are.
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

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        stopping.check()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        stopping.check()
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


def peak_rss_mb() -> float | None:
    """The process's peak resident memory so far, in MiB; None where it cannot be read."""
    try:
        import resource  # noqa: PLC0415 - Unix only
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS
