"""The resume state of a training run: what a killed run needs to continue, verified before use.

Every epoch ends with a *commit*: the weights and optimizer state are saved to a new
file (``epoch-0003.weights.h5``), the best checkpoint, when it improved, to another
(``best-epoch-0003.keras``), and then a record (``state.json``) names them with their
sizes and sha256 and holds the history of every finished epoch. The record is written
to a temporary file, fsynced and renamed, and the one it replaces is kept as
``state.previous.json``, so a crash or a full disk at any moment leaves at least one
complete, verifiable epoch. Files the records no longer name are removed after the
commit. On resume each file is checked against its record; a damaged one is set aside
(renamed ``*.damaged``, never deleted) and the state falls back to the previous
record, then to the best checkpoint; where nothing can be rebuilt the run stops with
a message that names the file.

Keras' ``BackupAndRestore`` and ``CSVLogger`` are not used: the first writes over its
only backup in place (a crash or full disk mid-save leaves no good copy) and neither
can tell a damaged file from a good one.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from convnets.errors import UserError

logger = logging.getLogger(__name__)

RECORD_FORMAT = 3
RECORD, PREVIOUS_RECORD = "state.json", "state.previous.json"
FINAL = "final.keras"
# Room kept free beyond the estimated size of an epoch's files.
SPACE_MARGIN_BYTES = 1 << 20


class DamagedTrainingState(UserError, RuntimeError):
    """A file of the resume state is damaged and what it held cannot be rebuilt."""


class NoSpaceLeft(UserError, OSError):
    """The resume state cannot be saved: the disk it is on is full."""


def file_entry(path: Path) -> dict[str, Any]:
    """Size and sha256 of ``path``: what a record says of each file it names."""
    with path.open("rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    return {"size": path.stat().st_size, "sha256": digest}


def fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def fsync_folder(folder: Path) -> None:
    """Make renames in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def write_json_atomically(path: Path, data: Any) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, rename it into place."""
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, sort_keys=True, allow_nan=False)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
    fsync_folder(path.parent)


def _sealed(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with a sha256 of its own content, so an edited record is noticed."""
    body = {key: value for key, value in record.items() if key != "sha256"}
    canonical = json.dumps(body, sort_keys=True, allow_nan=False)
    return {**body, "sha256": hashlib.sha256(canonical.encode()).hexdigest()}


def _as_json(history: dict[str, list[float]]) -> dict[str, list[float | None]]:
    """NaN (an epoch without validation; a diverged loss) as null: strict JSON."""
    return {
        key: [None if math.isnan(value) else value for value in values]
        for key, values in history.items()
    }


def _from_json(history: dict[str, list[Any]]) -> dict[str, list[float]]:
    return {
        key: [float("nan") if value is None else float(value) for value in values]
        for key, values in history.items()
    }


@dataclass(frozen=True)
class ResumePoint:
    """A verified place to continue from: after ``epochs_done`` epochs."""

    epochs_done: int
    history: dict[str, list[float]]
    weights: Path | None  # weights and optimizer state after epochs_done
    best: Path | None  # the best checkpoint so far
    best_epoch: int | None
    best_value: float | None
    final: Path | None  # the model after the last epoch, once training finished
    seed_states: list[list[int]] | None = None  # the layers' random streams
    finished: bool = False  # training ran to its end (early stopping included)


class TrainingState:
    """The files that let a killed training run continue where it stopped.

    In ``folder``: ``config.sha256``, the model and training parameters the state
    belongs to (a state left by another configuration is set aside, not resumed);
    ``run.json``, the MLflow run that started the training; the commit records
    ``state.json`` and ``state.previous.json`` (module docstring) with the weight files
    and best checkpoints they name; ``final.keras``, the model after the last epoch.
    The folder stays until the run has persisted everything made from it
    (``release``, called by ``hooks.TrainingStateHook``), so a run killed after
    training reuses the trained models. ``run_id`` is the MLflow run of this process.
    """

    def __init__(self, folder: Path, run_id: str | None = None) -> None:
        self.folder = folder
        self.run_id = run_id
        self.record = folder / RECORD
        self.previous_record = folder / PREVIOUS_RECORD
        self.run = folder / "run.json"
        self.config = folder / "config.sha256"
        self.final = folder / FINAL

    # -------------------------------------------------------------- records
    def _read_record(self, path: Path) -> dict[str, Any] | None:
        """The record at ``path`` if it is whole and unedited; None when missing.

        A damaged record is set aside with a warning.
        """
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            intact = (
                isinstance(record, dict)
                and record.get("format") == RECORD_FORMAT
                and _sealed(record)["sha256"] == record.get("sha256")
            )
        except (OSError, UnicodeDecodeError, ValueError):
            intact = False
        if intact:
            return record
        self._set_aside(path, "it is not a whole record of this project (damaged or edited)")
        return None

    def _records(self) -> list[dict[str, Any]]:
        """The intact records, newest first."""
        found = [self._read_record(self.record), self._read_record(self.previous_record)]
        return [record for record in found if record is not None]

    def _set_aside(self, path: Path, why: str) -> Path:
        target = path.with_name(f"{path.name}.damaged")
        if target.exists():
            target = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(path, target)
        logger.warning("Set aside %s as %s: %s", path, target.name, why)
        return target

    def _verified(self, record: dict[str, Any], name: str | None) -> Path | None:
        """The file ``name`` of ``record`` if its size and sha256 match; else set aside."""
        if name is None:
            return None
        path = self.folder / name
        expected = (record.get("files") or {}).get(name)
        if not path.is_file() or expected is None:
            logger.warning("%s is missing from the resume state", path)
            return None
        if path.stat().st_size == expected.get("size") and file_entry(path) == expected:
            return path
        self._set_aside(path, "its size or sha256 differs from what the record wrote")
        return None

    def commit(  # noqa: PLR0917 - one value per field of the record
        self,
        history: dict[str, list[float]],
        weights: Path | None,
        best: Path | None,
        best_epoch: int | None,
        best_value: float | None,
        final: Path | None = None,
        seed_states: list[list[int]] | None = None,
        *,
        stopped_early: bool = False,
    ) -> None:
        """Record a finished epoch (or the finished training), then drop unnamed files."""
        names = {path.name: path for path in (weights, best, final) if path is not None}
        current = self._read_record(self.record)
        known = (current or {}).get("files") or {}
        record = _sealed(
            {
                "format": RECORD_FORMAT,
                "config": self._recorded_config(),
                "epochs_done": len(history.get("loss", [])),
                "history": _as_json(history),
                "weights": weights.name if weights else None,
                "best": best.name if best else None,
                "best_epoch": best_epoch,
                "best_value": best_value,
                "final": final.name if final else None,
                "seed_states": seed_states or [],
                "stopped_early": stopped_early,
                # Weight files and checkpoints are written once under their own name:
                # an entry the current record holds is still true.
                "files": {
                    name: known.get(name) if name in known and name != FINAL else file_entry(path)
                    for name, path in names.items()
                },
            }
        )
        partial = self.folder / f".{RECORD}.partial"
        write_json_atomically(partial, record)  # durable before it replaces anything
        if self.record.is_file():
            os.replace(self.record, self.previous_record)
        os.replace(partial, self.record)
        fsync_folder(self.folder)
        kept = set(names) | set((current or {}).get("files") or {})
        self._remove_unnamed(kept)

    def _remove_unnamed(self, kept: set[str]) -> None:
        """Delete the weight files and checkpoints that no intact record names."""
        for path in self.folder.iterdir():
            # Files set aside as damaged are the user's to look at: kept.
            ours = path.name.startswith(("epoch-", "best-epoch-", ".epoch-", ".best-epoch-"))
            ours = ours and path.name.endswith((".weights.h5", ".keras"))
            if ours and path.name not in kept and path.is_file():
                path.unlink()

    def resume_point(self, model: keras.Model) -> ResumePoint | None:
        """Where to continue, after checking every file against its record.

        Falls back from the newest record to the previous one, then to the best
        checkpoint (training continues after the best epoch). ``model`` serves to
        rebuild the best checkpoint when it was made at the epoch the weights hold.
        Raises ``DamagedTrainingState`` when the best checkpoint is lost.
        """
        records = self._records()
        if not records:
            if self.folder.is_dir():
                self._set_aside(self.folder, "no intact record of an epoch is left in it")
                logger.warning("Training starts again from epoch 1")
            return None
        newest = records[0]
        best = self._verified(newest, newest.get("best"))
        for record in records:
            weights = self._verified(record, record.get("weights"))
            if weights is None and record.get("epochs_done"):
                continue
            if record.get("best") != newest.get("best"):
                best = self._verified(record, record.get("best"))
            if record is not newest:
                logger.warning(
                    "Resuming from the previous record %s (after epoch %d)",
                    self.previous_record,
                    record["epochs_done"],
                )
            return self._point(record, weights, best, model)
        if best is not None and newest.get("best_epoch"):
            epoch = newest["best_epoch"]
            logger.warning(
                "No weight file of the resume state %s is intact: training continues from "
                "the best checkpoint %s (after epoch %d)",
                self.folder,
                best,
                epoch,
            )
            history = {key: values[:epoch] for key, values in _from_json(newest["history"]).items()}
            # The random streams of that epoch are not kept: they continue from the newest.
            return ResumePoint(
                epoch,
                history,
                best,
                best,
                epoch,
                newest.get("best_value"),
                None,
                newest.get("seed_states"),
            )
        raise self._lost(newest.get("weights") or RECORD)

    def _point(
        self,
        record: dict[str, Any],
        weights: Path | None,
        best: Path | None,
        model: keras.Model,
    ) -> ResumePoint:
        epochs_done = record["epochs_done"]
        best_epoch = record.get("best_epoch")
        if best is None and record.get("best") is not None:
            if best_epoch != epochs_done or weights is None:
                raise self._lost(record["best"])
            # The best epoch is the last one: its checkpoint is the weights file's model.
            restore_weights(model, weights)
            best = self.folder / record["best"]
            save_model_atomically(model, best)
            logger.warning("Rebuilt the best checkpoint %s from %s", best, weights.name)
        final = None
        if record.get("final"):
            final = self._verified(record, record["final"])
            if final is None:
                logger.warning("Rebuilding %s from the weights after the last epoch", self.final)
        return ResumePoint(
            epochs_done,
            _from_json(record["history"]),
            weights,
            best,
            best_epoch,
            record.get("best_value"),
            final,
            record.get("seed_states"),
            finished=bool(record.get("final")) or bool(record.get("stopped_early")),
        )

    def _lost(self, name: str) -> DamagedTrainingState:
        return DamagedTrainingState(
            f"{self.folder / name} of the resume state is damaged or missing, and what it "
            f"held cannot be rebuilt from the rest of {self.folder}. To train this model "
            f"from the start, move the state aside (mv {self.folder} {self.folder}.damaged) "
            "and run the same command again."
        )

    # -------------------------------------------------------------- lifecycle
    def is_finished(self) -> bool:
        """True when a record says training ran to its end and its final model is here."""
        records = self._records()
        return bool(records) and bool(records[0].get("final")) and self.final.is_file()

    def release(self) -> None:
        """Delete the state: everything made from it is persisted elsewhere.

        Files set aside as damaged are kept, moved to ``<folder>.damaged-files/``.
        """
        damaged = list(self.folder.glob("*.damaged*")) if self.folder.is_dir() else []
        if damaged:
            keep = self.folder.with_name(f"{self.folder.name}.damaged-files")
            keep.mkdir(exist_ok=True)
            for path in damaged:
                os.replace(path, keep / path.name)
            logger.warning("Kept the damaged files of %s in %s", self.folder, keep)
        shutil.rmtree(self.folder, ignore_errors=True)

    def _legacy(self) -> bool:
        """A state of an earlier version (Keras' ``BackupAndRestore``, ``history.csv``,
        ``best.keras``): never resumed, and never deleted."""
        if self.record.is_file() or self.previous_record.is_file():
            return False
        return (self.folder / "backup").is_dir() or (self.folder / "best.keras").is_file()

    def _has_progress(self) -> bool:
        return self.record.is_file() or self.previous_record.is_file() or self._legacy()

    def _recorded_config(self) -> str:
        if self._legacy():
            return "format2"
        try:
            config = self.config.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            config = ""
        if len(config) == 64 and all(char in "0123456789abcdef" for char in config):
            return config
        for record in self._records():  # the records carry it too: rebuild the file
            if record.get("config"):
                if self.config.exists():
                    self._set_aside(self.config, "it does not hold a sha256")
                self.config.write_text(record["config"])
                return record["config"]
        return config

    def set_aside_folder(self, config: str) -> Path:
        """Where a state of configuration ``config`` waits while another one trains."""
        return self.folder.with_name(f"{self.folder.name}.set-aside-{(config or 'unknown')[:12]}")

    def is_resumable(self, config: str) -> bool:
        """True when an earlier run of the same configuration left a record here.

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
            if recorded == "format2":
                logger.warning(
                    "Set aside %s as %s: it was written by an earlier version of the project, "
                    "whose state this one cannot resume; its models are kept there (delete the "
                    "folder once you no longer need them). Training starts again",
                    self.folder,
                    target,
                )
            else:
                logger.warning(
                    "Set aside %s: it was left by another configuration (its epochs are kept "
                    "in %s and resume when that configuration runs again; delete the folder "
                    "to free its space)",
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
        """Per-epoch values of every committed epoch (newest intact record)."""
        records = self._records()
        return _from_json(records[0]["history"]) if records else {}

    def remember_mlflow_run(self) -> str | None:
        """Record this run's MLflow run on a fresh start; return the recorded one on resume."""
        if self.run.is_file():
            try:
                recorded = json.loads(self.run.read_text(encoding="utf-8"))["run_id"]
                if isinstance(recorded, str):
                    return recorded
            except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
                pass
            self._set_aside(self.run, "it does not name an MLflow run")
            return None
        if self.run_id is not None:
            write_json_atomically(self.run, {"run_id": self.run_id})
        return None


def _seed_variables(model: keras.Model) -> list[Any]:
    """The state variables of the layers' ``SeedGenerator``s (dropout, augmentation), in
    layer order: their names carry a counter of the process, their order does not.

    ``save_weights`` leaves them out, so a resumed run would draw the random numbers
    of epoch 1 again; the record keeps them.
    """
    found: dict[int, Any] = {}  # a model's variables include its layers': once each
    for layer in model._flatten_layers():  # noqa: SLF001 - every nested layer
        for variable in layer.variables:
            if variable.path.endswith("seed_generator_state"):
                found.setdefault(id(variable), variable)
    return list(found.values())


def seed_states(model: keras.Model) -> list[list[int]]:
    """The layers' random-stream states, for the record."""
    return [
        [int(value) for value in keras.ops.convert_to_numpy(variable)]
        for variable in _seed_variables(model)
    ]


def restore_seed_states(model: keras.Model, states: list[list[int]] | None) -> None:
    """Put back the random-stream states a record kept (none for a record without them)."""
    variables = _seed_variables(model)
    if not states or len(states) != len(variables):
        return
    for variable, state in zip(variables, states, strict=True):
        variable.assign(np.asarray(state, dtype=variable.dtype))


def restore_weights(model: keras.Model, path: Path) -> None:
    """Load weights and optimizer state saved by ``save_weights_atomically`` (or a
    ``.keras`` checkpoint) into ``model``; the optimizer is built first to receive them."""
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.load_weights(path)


def _save_atomically(path: Path, partial: Path, save: Any) -> None:
    """``save(partial)``, fsync, rename to ``path``: a crash or a full disk during the
    save leaves the file that was there, if any."""
    try:
        save(partial)
        fsync_file(partial)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise _disk_error(exc, path) from exc
    os.replace(partial, path)
    fsync_folder(path.parent)


def save_model_atomically(model: keras.Model, path: Path) -> None:
    """``model.save`` through a temporary file beside ``path``."""
    _save_atomically(path, path.with_name(f".{path.stem}.partial{path.suffix}"), model.save)


def save_weights_atomically(model: keras.Model, path: Path) -> None:
    """``model.save_weights`` (weights and optimizer state) through a temporary file
    (Keras wants the name to end in ``.weights.h5``)."""
    stem = path.name.removesuffix(".weights.h5")
    _save_atomically(path, path.with_name(f".{stem}.partial.weights.h5"), model.save_weights)


def _disk_error(exc: OSError, path: Path) -> OSError:
    full = exc.errno == errno.ENOSPC or "No space left" in str(exc)
    if not full:
        return exc
    return NoSpaceLeft(
        f"No space left on device while saving {path}. The previous epoch's state is "
        f"intact: free some space on {path.parent} and run the same command again; "
        "training resumes after the last saved epoch."
    )


def variables_bytes(model: keras.Model) -> int:
    """Bytes of the model's variables, optimizer state included (what one save writes)."""
    variables = list(model.variables)
    factor = 3  # Adam and RMSprop keep one or two slots per weight once built
    if model.optimizer is not None and model.optimizer.built:
        variables += list(model.optimizer.variables)
        factor = 1
    itemsize = {"float16": 2, "bfloat16": 2, "float64": 8, "int64": 8}
    total = sum(
        math.prod(variable.shape) * itemsize.get(keras.backend.standardize_dtype(variable.dtype), 4)
        for variable in variables
    )
    return total * factor
