"""The parameter hook: a whole run's parameters are checked before its first node."""

import mlflow
import pytest
from omegaconf import OmegaConf

from convnets.parameters import ParameterError
from tests.pipelines.test_end_to_end import TINY_CATDOG, _run

pytestmark = pytest.mark.slow


def _hints(message: str) -> list[str]:
    return [part.split()[0] for part in message.split("Fix: ")[1:]]


def test_bad_parameters_fail_before_any_node_and_the_hint_fixes_them(kedro_project):
    bad = {**TINY_CATDOG, "catdog.training.epochs": 0, "catdog.input.batch_size": -2}
    with pytest.raises(ParameterError) as error:
        _run(kedro_project, "catdog", bad)
    message = str(error.value)
    assert "catdog.training.epochs: Input should be greater than 0 (got 0)" in message
    assert "catdog.input.batch_size" in message
    assert "kedro run --pipelines=catdog" in message
    # Nothing ran: no split written, no MLflow run left behind.
    assert not (kedro_project / "data" / "02_intermediate" / "cats_vs_dogs_small").exists()
    mlflow.set_tracking_uri(f"sqlite:///{kedro_project / 'mlflow.db'}")
    assert mlflow.search_runs(search_all_experiments=True, output_format="list") == []

    # Each hint, with a value in place of <value>, is what `kedro run --params` parses.
    fixes = {"catdog.training.epochs": "1", "catdog.input.batch_size": "4"}
    dotlist = []
    for hint in _hints(message):
        key = hint.removeprefix("--params=").removesuffix("=<value>")
        dotlist.append(f"{key}={fixes[key]}")
    runtime = OmegaConf.to_container(OmegaConf.from_dotlist(dotlist))
    _run(kedro_project, "catdog", {**TINY_CATDOG, **_flat(runtime)})
    runs = mlflow.search_runs(experiment_names=["convnets"], output_format="list")
    assert [run.info.status for run in runs] == ["FINISHED"]
    assert runs[0].data.params["catdog.training.epochs"] == "1"


def test_an_unknown_architecture_fails_before_ingestion(kedro_project):
    with pytest.raises(ParameterError, match="catdog_baseline.architecture.name"):
        _run(kedro_project, "catdog_baseline", {"catdog_baseline.architecture.name": "resnet"})
    assert not (kedro_project / "data" / "02_intermediate" / "cats_vs_dogs_small").exists()


def _flat(nested: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in nested.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def test_two_training_pipelines_in_one_run_are_refused():
    from kedro.pipeline import Pipeline  # noqa: PLC0415

    from convnets.hooks import ParameterHook  # noqa: PLC0415

    with pytest.raises(ParameterError, match="Run one training pipeline at a time, not catdog"):
        ParameterHook().before_pipeline_run(
            {"pipeline_names": ["catdog", "catdog_fast"]}, Pipeline([]), catalog=None
        )
