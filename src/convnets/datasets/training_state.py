"""Where a model pipeline keeps what a killed training run needs to continue."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
from kedro.io import AbstractDataset, DatasetError

from convnets.ml.training import TrainingState


class TrainingStateDataset(AbstractDataset[None, TrainingState]):
    """Loads a ``TrainingState`` for ``path``, tied to the MLflow run now active.

    Keras' callbacks write the files during ``fit``; this dataset only says where
    they go, so the location is set in the catalog and not in the training code.
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}

    def _exists(self) -> bool:
        return self._path.is_dir()

    def save(self, data: None) -> None:
        raise DatasetError(f"{type(self).__name__} is written by the training callbacks only")

    def load(self) -> TrainingState:
        active = mlflow.active_run()
        return TrainingState(self._path, run_id=active.info.run_id if active else None)
