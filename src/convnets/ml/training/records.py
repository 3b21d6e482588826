"""The resume state of a training run: what a killed run needs to continue, verified before use.

Every epoch ends with a *commit*: the weights and optimizer state are saved to a new
file (``epoch-0003.weights.h5``), the best checkpoint, when it improved, to another
(``best-epoch-0003.keras``), and then a record (``state.json``) names them with their
sizes and sha256 and holds the history of every finished epoch. The record is written
to a temporary file, fsynced and renamed, and the one it replaces is kept as
``state.previous.json``, so a crash or a full disk at any moment leaves at least one
complete, verifiable epoch. Files the records no longer name are removed after the
commit. On resume each file is checked against its record; a damaged one is set aside
(renamed ``<name>.damaged-<time>``, never deleted) and the state falls back to the previous
record, then to the best checkpoint; where nothing can be rebuilt the run stops with
a message that names the file.

Keras' ``BackupAndRestore`` and ``CSVLogger`` are not used: the first writes over its
only backup in place (a crash or full disk mid-save leaves no good copy) and neither
can tell a damaged file from a good one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from convnets.durability.atomic import fsync_folder, write_json_atomically
from convnets.durability.integrity import HASH, check_files, file_hash, set_aside
from convnets.errors import UserError

logger = logging.getLogger(__name__)

RECORD_FORMAT = 3
RECORD, PREVIOUS_RECORD = "state.json", "state.previous.json"
FINAL = "final.keras"


class DamagedTrainingState(UserError, RuntimeError):
    """A file of the resume state is damaged and what it held cannot be rebuilt."""


def file_entry(path: Path) -> dict[str, Any]:
    """Size and sha256 of ``path``: what a record says of each file it names."""
    return {"size": path.stat().st_size, HASH: file_hash(path)}


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


class StateRecords:
    """The commit records of a resume state in ``folder``: written, sealed and verified.

    ``TrainingState`` (``convnets.ml.training.state``) adds where to resume from and the
    state's lifecycle.
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
        target = set_aside(path)
        logger.warning("Set aside %s as %s: %s", path, target.name, why)
        return target

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

    def _verified(self, record: dict[str, Any], name: str | None) -> Path | None:
        """The file ``name`` of ``record`` if its size and sha256 match; else set aside."""
        if name is None:
            return None
        path = self.folder / name
        expected = (record.get("files") or {}).get(name)
        if not path.is_file() or expected is None:
            logger.warning("%s is missing from the resume state", path)
            return None
        if not check_files(self.folder, {name: expected}):  # size, then sha256
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
