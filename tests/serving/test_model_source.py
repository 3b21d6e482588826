"""Where predict takes its servable model from: an MLflow URI, or the latest run's."""

import re
from pathlib import Path

import mlflow
import pytest
from kedro.io import DatasetError, Version

from convnets.datasets import ServableModelSourceDataset
from tests.conftest import log_servable_run, reset_mlflow


def test_a_missing_saved_model_says_how_to_make_one(tmp_path):
    dataset = ServableModelSourceDataset(
        filepath=str(tmp_path / "nothing" / "best_checkpoint.keras")
    )
    with pytest.raises(DatasetError, match="train it first"):
        dataset.load()


def _tiny_model(units: int):
    import keras  # noqa: PLC0415

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Dense(units)(keras.layers.GlobalAveragePooling2D()(inputs))
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))


def test_a_damaged_servable_model_is_reported_and_the_version_before_it_is_used(
    tmp_path, monkeypatch
):
    from kedro_datasets.tensorflow import TensorFlowModelDataset  # noqa: PLC0415

    from convnets.serving.model_source import DamagedModel  # noqa: PLC0415

    monkeypatch.chdir(tmp_path)
    path = tmp_path / "best_checkpoint.keras"
    runs = []
    for units, version in ((2, "2026-01-01T00.00.00.000Z"), (3, "2026-01-02T00.00.00.000Z")):
        model = _tiny_model(units)
        TensorFlowModelDataset(filepath=str(path), version=Version(None, version)).save(model)
        runs.append(log_servable_run(tmp_path, model, version))
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    # The latest run's servable model, as predict loads it by default.
    dataset = ServableModelSourceDataset(filepath=str(path))
    assert dataset.load().metadata.run_id == runs[1]
    logged = mlflow.search_logged_models(
        filter_string=f"source_run_id = '{runs[1]}'",
        output_format="list",
        experiment_ids=[mlflow.get_experiment_by_name("convnets").experiment_id],
    )[0]
    damaged = next(Path(logged.artifact_location.removeprefix("file://")).rglob("*.keras"))
    damaged.write_bytes(damaged.read_bytes()[:300])
    with pytest.raises(DamagedModel) as error:
        dataset.load()
    message = str(error.value)
    assert str(damaged) in message and "damaged" in message and "train it first" not in message
    # The advice, followed, gives the version before it.
    command = re.search(r"\(mv (\S+) (\S+)\)", message)
    Path(command[1]).rename(command[2])
    assert dataset.load().metadata.run_id == runs[0]
    reset_mlflow()


def test_a_checkpoint_without_a_tracked_run_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    reset_mlflow()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    saved = tmp_path / "best_checkpoint.keras" / "2026-01-01T00.00.00.000Z"
    saved.mkdir(parents=True)
    (saved / "best_checkpoint.keras").write_bytes(b"PK")
    dataset = ServableModelSourceDataset(filepath=str(tmp_path / "best_checkpoint.keras"))
    with pytest.raises(DatasetError, match=r"no servable model: no MLflow run .*model_uri"):
        dataset.load()


def test_an_unknown_model_uri_names_what_was_looked_up(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    reset_mlflow()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    dataset = ServableModelSourceDataset(
        filepath=str(tmp_path / "unused.keras"), model_uri="models:/convnets-nothing@champion"
    )
    with pytest.raises(DatasetError, match=r"models:/convnets-nothing@champion.*tracking URI"):
        dataset.load()
