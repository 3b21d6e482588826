"""Where predict takes its model from: the latest saved version, or an MLflow URI."""

import re
from pathlib import Path

import mlflow
import pytest
from kedro.io import DatasetError, Version

from convnets.datasets import KerasModelSourceDataset
from tests.conftest import reset_mlflow


def test_a_missing_saved_model_says_how_to_make_one(tmp_path):
    dataset = KerasModelSourceDataset(filepath=str(tmp_path / "nothing" / "best_checkpoint.keras"))
    with pytest.raises(DatasetError, match="train it first"):
        dataset.load()


def test_a_truncated_saved_model_is_reported_damaged_and_the_version_before_it_is_used(tmp_path):
    import keras  # noqa: PLC0415
    from kedro_datasets.tensorflow import TensorFlowModelDataset  # noqa: PLC0415

    from convnets.datasets.keras_model_source import DamagedModel  # noqa: PLC0415

    path = tmp_path / "best_checkpoint.keras"
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    for version in ("2026-01-01T00.00.00.000Z", "2026-01-02T00.00.00.000Z"):
        TensorFlowModelDataset(filepath=str(path), version=Version(None, version)).save(model)
    latest = path / "2026-01-02T00.00.00.000Z" / "best_checkpoint.keras"
    latest.write_bytes(latest.read_bytes()[:300])
    dataset = KerasModelSourceDataset(filepath=str(path))
    with pytest.raises(DamagedModel) as error:
        dataset.load()
    message = str(error.value)
    assert str(latest) in message and "damaged" in message and "train it first" not in message
    # The advice, followed, gives the version before it.
    command = re.search(r"\(mv (\S+) (\S+)\)", message)
    Path(command[1]).rename(command[2])
    assert dataset.load().count_params() == model.count_params()


def test_an_unknown_model_uri_names_what_was_looked_up(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    reset_mlflow()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    dataset = KerasModelSourceDataset(
        filepath=str(tmp_path / "unused.keras"), model_uri="models:/convnets-nothing@champion"
    )
    with pytest.raises(DatasetError, match=r"models:/convnets-nothing@champion.*tracking URI"):
        dataset.load()
