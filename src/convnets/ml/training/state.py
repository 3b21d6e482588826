"""A training's resume state: where a killed run continues from, and the state's lifecycle.

The records it reads are ``convnets.ml.training.records``'s (their format, and how a
damaged file is told apart); this module decides what to do with them: continue from
the newest intact epoch, fall back, set a state of another configuration aside, release.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import keras

from convnets.durability.atomic import write_json_atomically
from convnets.ml.training.records import (
    RECORD,
    DamagedTrainingState,
    ResumePoint,
    StateRecords,
    _from_json,
)
from convnets.ml.training.saving import averaged_weights, restore_weights, save_model_atomically

logger = logging.getLogger(__name__)


class TrainingState(StateRecords):
    """The files that let a killed training run continue where it stopped.

    In ``folder``: ``config.sha256``, the model and training parameters the state
    belongs to (a state left by another configuration is set aside, not resumed);
    ``run.json``, the MLflow run that started the training; the commit records
    ``state.json`` and ``state.previous.json`` (``records``) with the weight files and
    best checkpoints they name; ``final.keras``, the model after the last epoch.
    The folder stays until the run has persisted everything made from it
    (``release``, called by ``hooks.TrainingStateHook``), so a run killed after
    training reuses the trained models. ``run_id`` is the MLflow run of this process.
    """

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
            with averaged_weights(model):  # as the checkpoint saved it (use_ema)
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
