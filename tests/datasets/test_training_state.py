"""TrainingStateDataset: where the resume state lives, tied to the active MLflow run."""

import mlflow
import pytest
from kedro.io import DatasetError

from convnets.datasets import TrainingStateDataset
from tests.conftest import reset_mlflow


def test_load_gives_a_state_for_the_path_without_an_active_run(tmp_path):
    reset_mlflow()
    state = TrainingStateDataset(path=str(tmp_path / "state")).load()
    assert state.folder == tmp_path / "state" and state.run_id is None
    assert not (tmp_path / "state").exists()  # nothing is written by loading


def test_load_ties_the_state_to_the_active_run(tmp_path):
    reset_mlflow()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        with mlflow.start_run() as run:
            state = TrainingStateDataset(path=str(tmp_path / "state")).load()
        assert state.run_id == run.info.run_id
    finally:
        reset_mlflow()


def test_it_cannot_be_saved(tmp_path):
    with pytest.raises(DatasetError, match="written by the training callbacks"):
        TrainingStateDataset(path=str(tmp_path)).save(object())
