"""``kedro run --pipelines=explain`` after a tiny training, through KedroSession."""

import mlflow
import pandas as pd
import pytest

from convnets.ml.explain import NotExplainable
from tests.conftest import reset_mlflow
from tests.pipelines.test_end_to_end import TINY_CATDOG, _run

pytestmark = pytest.mark.slow

FIGURES = {"activations", "filter_patterns", "grad_cam", "worst_mistakes", "roc_pr", "reliability"}
TINY_EXPLAIN = {
    "predict_model": "catdog_baseline",
    "explain.filter_steps": 2,
    "explain.batch_size": 3,
    "explain.grad_cam_images": 4,
    "explain.worst_mistakes": 3,
}


def test_explain_writes_every_figure_and_logs_them_to_a_run_tagged_with_the_model(
    kedro_project,
):
    _run(kedro_project, "catdog_baseline", {**TINY_CATDOG, "catdog_baseline.training.epochs": 1})
    reporting = kedro_project / "data" / "08_reporting" / "explain"
    # A layer the model does not have: refused with its names, before any figure.
    with pytest.raises(NotExplainable, match=r"no layer named 'nope': its layers are .*conv2d"):
        _run(kedro_project, "explain", {**TINY_EXPLAIN, "explain.layer": "nope"})
    reset_mlflow()
    assert not reporting.exists()

    _run(kedro_project, "explain", TINY_EXPLAIN)

    assert {path.stem for path in reporting.glob("*.png")} == FIGURES
    scores = pd.read_csv(kedro_project / "data" / "07_model_output" / "explain" / "test_scores.csv")
    assert len(scores) == 8 and scores.probability_dog.between(0, 1).all()

    mlflow.set_tracking_uri(f"sqlite:///{kedro_project / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["convnets"], output_format="list")
    trained = next(run for run in runs if run.info.run_name == "catdog_baseline")
    explained = next(
        run for run in runs if run.info.run_name == "explain" and run.info.status == "FINISHED"
    )
    assert explained.info.run_id != trained.info.run_id  # a run of its own...
    assert explained.data.tags["model_run_id"] == trained.info.run_id  # ...naming the model's
    logged = {
        item.path for item in mlflow.MlflowClient().list_artifacts(explained.info.run_id, "explain")
    }
    assert logged == {f"explain/{name}.png" for name in FIGURES} | {
        "explain/test_scores.csv",
        "explain/calibration.csv",
    }
    metrics = explained.data.metrics
    assert (
        0 <= metrics["test_roc_auc"] <= 1 and 0 <= metrics["test_expected_calibration_error"] <= 1
    )
    assert metrics["test_scored_images"] == 8
    assert explained.data.params["explain.filter_steps"] == "2"


@pytest.mark.processes
def test_a_model_without_a_convolution_is_refused_in_one_message_before_any_work(
    kedro_project,
):
    import keras  # noqa: PLC0415

    from tests.conftest import log_servable_run  # noqa: PLC0415
    from tests.test_cli import kedro  # noqa: PLC0415

    inputs = keras.Input((32, 32, 3))
    flat = keras.layers.Flatten(name="flat")(inputs)
    dense = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid", name="out")(flat))
    run_id = log_servable_run(kedro_project, dense, "2026-12-02T06.00.00.000Z")
    result = kedro(
        kedro_project,
        "run",
        "--pipelines=explain",
        f"--params=model_uri=runs:/{run_id}/best_checkpoint",
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert "has no convolution layer" in output and "flat, out" in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert not (kedro_project / "data" / "08_reporting" / "explain").exists()
