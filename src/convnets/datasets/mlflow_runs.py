"""The runs of an MLflow experiment, as a table, read through the catalog."""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from kedro.io import AbstractDataset, DatasetError


class MlflowRunsDataset(AbstractDataset[None, pd.DataFrame]):
    """``mlflow.search_runs`` of one experiment: by default the one the active run (this
    ``kedro run``) belongs to, so each environment reads its own experiment.

    kedro-mlflow has datasets for one run's metrics and artifacts, none for a search
    over runs. The table's ``attrs`` name the tracking store and the experiment.
    """

    def __init__(
        self, experiment_name: str | None = None, metadata: dict[str, Any] | None = None
    ) -> None:
        self._experiment_name = experiment_name
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"experiment_name": self._experiment_name}

    def save(self, data: None) -> None:
        raise DatasetError(f"{type(self).__name__} is read-only")

    def load(self) -> pd.DataFrame:
        if self._experiment_name is not None:
            experiment = mlflow.get_experiment_by_name(self._experiment_name)
        elif (active := mlflow.active_run()) is not None:
            experiment = mlflow.get_experiment(active.info.experiment_id)
        else:
            raise DatasetError(
                "No experiment to read: give experiment_name, or load inside a tracked run"
            )
        if experiment is None:
            runs = pd.DataFrame(columns=["run_id", "status", "start_time", "end_time"])
        else:
            runs = mlflow.search_runs([experiment.experiment_id], output_format="pandas")
        runs.attrs["tracking_uri"] = mlflow.get_tracking_uri()
        runs.attrs["experiment"] = experiment.name if experiment else self._experiment_name
        return runs
