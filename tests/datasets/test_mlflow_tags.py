"""MlflowTagsDataset: a node's tags land on the active MLflow run."""

import mlflow
import pytest
from kedro.io import DatasetError

from convnets.datasets import MlflowTagsDataset
from tests.conftest import reset_mlflow


def test_tags_are_set_on_the_active_run(tmp_path):
    reset_mlflow()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        with mlflow.start_run() as run:
            MlflowTagsDataset().save({"resumed_from_run_id": "abc"})
            MlflowTagsDataset().save({})  # nothing to tag: no call, no error
        tags = mlflow.get_run(run.info.run_id).data.tags
        assert tags["resumed_from_run_id"] == "abc"
    finally:
        reset_mlflow()


def test_without_an_active_run_no_run_is_started(tmp_path):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    reset_mlflow()
    MlflowTagsDataset().save({"a": "b"})
    assert mlflow.active_run() is None
    assert mlflow.search_runs(search_all_experiments=True, output_format="list") == []
    reset_mlflow()


def test_it_cannot_be_loaded():
    with pytest.raises(DatasetError, match="write-only"):
        MlflowTagsDataset().load()
