"""Where predict takes its model from: the latest saved version, or an MLflow URI."""

import mlflow
import pytest
from kedro.io import DatasetError

from convnets.datasets import KerasModelSourceDataset
from tests.conftest import reset_mlflow


def test_a_missing_saved_model_says_how_to_make_one(tmp_path):
    dataset = KerasModelSourceDataset(filepath=str(tmp_path / "nothing" / "best_checkpoint.keras"))
    with pytest.raises(DatasetError, match="train it first"):
        dataset.load()


def test_an_unknown_model_uri_names_what_was_looked_up(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    reset_mlflow()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    dataset = KerasModelSourceDataset(
        filepath=str(tmp_path / "unused.keras"), model_uri="models:/convnets-nothing@champion"
    )
    with pytest.raises(DatasetError, match=r"models:/convnets-nothing@champion.*tracking URI"):
        dataset.load()
