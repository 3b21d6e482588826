"""Tags set on the active MLflow run from a node's output."""

from __future__ import annotations

import logging
from typing import Any

import mlflow
from kedro.io import AbstractDataset, DatasetError

logger = logging.getLogger(__name__)


class MlflowTagsDataset(AbstractDataset[dict[str, str], None]):
    """Saves ``{tag: value}`` on the active MLflow run; kedro-mlflow has no tag dataset."""

    def __init__(self, metadata: dict[str, Any] | None = None) -> None:
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {}

    def load(self) -> None:
        raise DatasetError(f"{type(self).__name__} is write-only: read tags in MLflow")

    def save(self, data: dict[str, str]) -> None:
        if not data:
            return
        if mlflow.active_run() is None:
            logger.warning("No active MLflow run: tags %s not recorded", data)
            return
        mlflow.set_tags(data)
