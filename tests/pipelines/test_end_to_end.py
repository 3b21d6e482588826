"""Each registered pipeline, run through KedroSession on tiny data, recorded in MLflow."""

import io
from pathlib import Path

import keras
import mlflow
import mlflow.keras
import numpy as np
import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from PIL import Image

from tests.conftest import jpeg_bytes, reset_mlflow

pytestmark = pytest.mark.slow

TINY_CATDOG = {
    "cats_vs_dogs.subsets.train.size": 10,
    "cats_vs_dogs.subsets.validation.start": 10,
    "cats_vs_dogs.subsets.validation.size": 4,
    "cats_vs_dogs.subsets.test.start": 14,
    "cats_vs_dogs.subsets.test.size": 4,
    **{
        f"{model}.{key}": value
        for model in ("catdog", "catdog_baseline", "catdog_xception", "catdog_fast")
        for key, value in (
            ("input.image_size", [80, 80]),
            ("input.batch_size", 8),
            ("training.epochs", 2),
        )
    },
}
TINY_MNIST = {"mnist.training.epochs": 2, "fashion_mnist.training.epochs": 2}

FIGURES = {
    "mnist": {"training_curves.png", "confusion_matrix.png"},
    "fashion_mnist": {"training_curves.png", "confusion_matrix.png"},
    "catdog": {"training_curves.png", "confusion_matrix.png", "augmentation_samples.png"},
    "catdog_baseline": {"training_curves.png", "confusion_matrix.png"},
    "catdog_xception": {
        "training_curves.png",
        "confusion_matrix.png",
        "augmentation_samples.png",
    },
    "catdog_fast": {"training_curves.png", "confusion_matrix.png", "augmentation_samples.png"},
}


FASHION = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


def _png(size: int, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (size, size), color=128 if mode == "L" else (128, 64, 32)).save(buffer, "PNG")
    return buffer.getvalue()


def _nested(dotted: dict) -> dict:
    """{"a.b": 1} -> {"a": {"b": 1}}, as ``kedro run --params a.b=1`` does."""
    nested: dict = {}
    for key, value in dotted.items():
        *parents, leaf = key.split(".")
        node = nested
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return nested


def _run(project: Path, pipeline: str, params: dict, env: str | None = None) -> None:
    bootstrap_project(project)
    with KedroSession.create(
        project_path=project, env=env, runtime_params=_nested(params)
    ) as session:
        session.run(pipeline_names=[pipeline])
    # kedro-mlflow re-opens its run in each node; a run left open in this process
    # would be taken over by the next session, as in a notebook.
    reset_mlflow()


def _only_run(project: Path, experiment: str) -> mlflow.entities.Run:
    """The one training run of ``experiment`` (``report`` runs aside)."""
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    runs = mlflow.search_runs(
        experiment_names=[experiment],
        filter_string="tags.mlflow.runName != 'report'",
        output_format="list",
    )
    assert len(runs) == 1
    return runs[0]


@pytest.mark.parametrize(
    "pipeline, params",
    [
        ("mnist", TINY_MNIST),
        ("fashion_mnist", TINY_MNIST),
        ("catdog", TINY_CATDOG),
        ("catdog_baseline", TINY_CATDOG),
        ("catdog_xception", TINY_CATDOG),
        ("catdog_fast", TINY_CATDOG),
    ],
)
def test_pipeline_records_a_complete_mlflow_run(kedro_project, pipeline, params):
    _run(kedro_project, pipeline, params)
    run = _only_run(kedro_project, "convnets")
    client = mlflow.MlflowClient()

    assert run.info.status == "FINISHED"
    assert run.info.run_name == pipeline
    assert run.data.params[f"{pipeline}.training.epochs"] == "2"
    fast = pipeline == "catdog_fast"  # an optimizer mapping, logged one key each
    optimizer_key = f"{pipeline}.training.optimizer" + (".name" if fast else "")
    assert run.data.params[optimizer_key] == ("adamw" if fast else "rmsprop")
    digits = pipeline.endswith("mnist")
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        history = client.get_metric_history(run.info.run_id, key)
        # The MNIST pipelines train on every image as the book does: no validation.
        expected = [] if digits and key.startswith("val_") else [1, 2]
        assert [metric.step for metric in history] == expected, key
    assert {
        "best_checkpoint_test_loss",
        "best_checkpoint_test_accuracy",
        "final_model_test_loss",
        "final_model_test_accuracy",
    } <= set(run.data.metrics)
    if pipeline.startswith("catdog"):
        assert run.data.metrics["skipped_images"] == 0
        assert run.data.metrics["refused_images"] == 0
        # Its own cost; the book's epoch is timed by the book_epoch pipeline, not here.
        cost = run.data.metrics
        assert cost["train_wall_time_s"] > 0 and cost["median_epoch_s"] > 0
        assert cost["epochs_run"] == 2 and cost["peak_rss_mb"] > 100
        assert "book_epoch_equivalents" not in cost and run.data.tags["processor_flags"]

    figures = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "figures")}
    assert figures == FIGURES[pipeline]
    run_log = Path(client.download_artifacts(run.info.run_id, "logs/kedro_run.log"))
    assert "Completed node: " in run_log.read_text()
    evaluation = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "evaluation")}
    assert evaluation == {"confusion_matrix.csv", "per_class_metrics.csv"}

    logged = mlflow.search_logged_models(
        experiment_ids=[run.info.experiment_id], output_format="list"
    )
    assert {model.name for model in logged} == {"model", "best_checkpoint"}
    best = next(model for model in logged if model.name == "best_checkpoint")
    assert best.source_run_id == run.info.run_id
    # The best checkpoint is served: registered, champion, bytes in, label out.
    registered = f"convnets-{pipeline.replace('_', '-')}"
    version = client.get_model_version_by_alias(registered, "champion")
    assert version.run_id == run.info.run_id and version.source.endswith(best.model_id)
    assert float(version.tags["best_checkpoint_test_accuracy"]) == pytest.approx(
        run.data.metrics["best_checkpoint_test_accuracy"], abs=1e-6
    )
    served = mlflow.pyfunc.load_model(f"models:/{registered}@champion")
    assert [spec.name for spec in served.metadata.get_input_schema().inputs] == ["image"]
    picture = _png(28, mode="L") if digits else jpeg_bytes(7, size=40)
    answer = served.predict(pd.DataFrame({"image": [picture, b"not a picture"]}))
    probability = "probability" if digits else "probability_dog"
    assert list(answer.columns) == ["label", probability, "error", "error_code"]
    assert answer.label[0] in (
        [str(d) for d in range(10)]
        if pipeline == "mnist"
        else (FASHION if digits else ["cat", "dog"])
    )
    assert 0 <= answer[probability][0] <= 1 and answer.error[0] == ""
    assert (
        answer.label[1] == ""
        and answer.error[1].startswith("UnidentifiedImageError")
        and list(answer.error_code) == ["", "not_an_image"]
        and answer[probability].isna()[1]
    )
    if pipeline == "catdog_fast":  # the served model averages over mirror images too
        assert served.unwrap_python_model().keras_model.name.endswith("_flip_averaged")

    models = kedro_project / "data" / "06_models" / pipeline
    assert len(list((models / "model.keras").iterdir())) == 1  # one version folder
    assert not (models / "training_state").exists()  # finished: no resume state left
    assert (kedro_project / "data" / "08_reporting" / pipeline / "training_curves.png").is_file()


def test_catdog_and_baseline_share_one_split_written_once(kedro_project):
    _run(kedro_project, "catdog_baseline", {**TINY_CATDOG, "catdog_baseline.training.epochs": 1})
    split = kedro_project / "data" / "02_intermediate" / "cats_vs_dogs_small"
    checks = kedro_project / "data" / "02_intermediate" / "cats_vs_dogs_image_checks.json"
    first = split.joinpath("train", "cat", "cat.0.jpg").stat().st_mtime_ns
    checked = checks.stat().st_mtime_ns
    _run(kedro_project, "catdog", {**TINY_CATDOG, "catdog.training.epochs": 1})
    assert split.joinpath("train", "cat", "cat.0.jpg").stat().st_mtime_ns == first
    assert checks.stat().st_mtime_ns == checked
    assert sorted(p.name for p in split.iterdir()) == [
        ".content.sha256",
        ".manifest.json",
        "test",
        "train",
        "validation",
    ]
    manifest = kedro_project / "data" / "02_intermediate" / "cats_vs_dogs_small_manifest.csv"
    assert manifest.read_text().splitlines()[0] == "file,label,split,source"


def test_quick_environment_uses_its_own_experiment_and_model_names(kedro_project):
    _run(kedro_project, "mnist", {"mnist.training.epochs": 1}, env="quick")
    run = _only_run(kedro_project, "convnets-quick")
    assert run.data.params["mnist.training.epochs"] == "1"
    assert run.data.params["mnist.training.batch_size"] == "64"  # from base, not replaced
    registered = [model.name for model in mlflow.MlflowClient().search_registered_models()]
    assert registered == ["convnets-quick-mnist"]  # never the real convnets-mnist champion


def test_system_metrics_are_recorded_when_switched_on(kedro_project, monkeypatch):
    monkeypatch.setenv("MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING", "true")  # MLflow's own switch
    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "1")
    _run(kedro_project, "mnist", {"mnist.training.epochs": 2})
    run = _only_run(kedro_project, "convnets")
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= set(
        run.data.metrics
    )


def test_missing_archive_fails_before_training_with_instructions(kedro_project):
    archive = kedro_project / "data" / "01_raw" / "cats_vs_dogs" / "train.zip"
    archive.unlink()
    with pytest.raises(Exception, match="kaggle competitions download"):
        _run(kedro_project, "catdog", {**TINY_CATDOG, "cats_vs_dogs_source": "local"})
    assert not (kedro_project / "data" / "06_models" / "catdog").exists()


def test_predict_classifies_a_folder_with_the_catalog_model_or_an_mlflow_uri(kedro_project):
    _run(kedro_project, "catdog_baseline", {**TINY_CATDOG, "catdog_baseline.training.epochs": 1})
    pictures = kedro_project / "pictures"
    pictures.mkdir()
    for index in range(3):
        (pictures / f"dog.{100 + index}.jpg").write_bytes(jpeg_bytes(2000 + index))
    (pictures / "notes.jpg").write_text("not a picture")
    _run(
        kedro_project, "predict", {"predict_dir": str(pictures), "predict_model": "catdog_baseline"}
    )
    table = pd.read_csv(kedro_project / "data" / "07_model_output" / "predictions.csv")
    assert list(table.file) == ["dog.100.jpg", "dog.101.jpg", "dog.102.jpg", "notes.jpg"]
    assert table.probability_dog.between(0, 1).sum() == 3
    assert table.set_index("file").loc["notes.jpg", "error"].startswith("UnidentifiedImage")
    assert (kedro_project / "data" / "08_reporting" / "predict" / "predictions.png").is_file()

    mlflow.set_tracking_uri(f"sqlite:///{kedro_project / 'mlflow.db'}")
    experiment = mlflow.get_experiment_by_name("convnets")
    best = next(
        model
        for model in mlflow.search_logged_models(
            experiment_ids=[experiment.experiment_id], output_format="list"
        )
        if model.name == "best_checkpoint"
    )
    _run(
        kedro_project,
        "predict",
        {"predict_dir": str(pictures), "model_uri": f"models:/{best.model_id}"},
    )
    again = pd.read_csv(kedro_project / "data" / "07_model_output" / "predictions.csv")
    assert np.allclose(again.probability_dog[:3], table.probability_dog[:3], atol=1e-5)
    runs = mlflow.search_runs(experiment_names=["convnets"], output_format="list")
    assert sorted(run.info.run_name for run in runs) == ["catdog_baseline", "predict", "predict"]
    assert all(
        "predict_accuracy" in run.data.metrics for run in runs if run.info.run_name == "predict"
    )
    trained = next(run for run in runs if run.info.run_name == "catdog_baseline")
    predicted = [run for run in runs if run.info.run_name == "predict"]
    # Each predict run names the model it used and the run that trained it.
    assert all(run.data.tags["model_run_id"] == trained.info.run_id for run in predicted)
    assert {run.data.tags["model_source"] for run in predicted} == {
        str(kedro_project / "data" / "06_models" / "catdog_baseline" / "best_checkpoint.keras"),
        f"models:/{best.model_id}",
    }
    assert all(run.data.tags["model_epochs"] == "1" for run in predicted)
    assert all(run.data.tags["model_is_quick"] == "false" for run in predicted)


def test_a_run_that_fails_after_training_is_completed_without_training_again(
    kedro_project, monkeypatch
):
    from convnets.datasets import MlflowServableModelDataset  # noqa: PLC0415

    params = {**TINY_CATDOG, "catdog_baseline.training.epochs": 2}

    def crash(self, data):
        raise RuntimeError("killed while registering the model")

    with monkeypatch.context() as patched:
        patched.setattr(MlflowServableModelDataset, "save", crash)
        with pytest.raises(Exception, match="killed while registering"):
            _run(kedro_project, "catdog_baseline", params)
    reset_mlflow()
    state = kedro_project / "data" / "06_models" / "catdog_baseline" / "training_state"
    assert (state / "final.keras").is_file()  # the finished training is kept
    failed = _only_run(kedro_project, "convnets")
    assert failed.info.status == "FAILED"  # kedro-mlflow's on_pipeline_error, kept so

    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr(keras.Model, "fit", no_training)
    _run(kedro_project, "catdog_baseline", params)
    runs = mlflow.search_runs(experiment_names=["convnets"], output_format="list")
    finished = next(run for run in runs if run.info.status == "FINISHED")
    assert finished.data.tags["resumed_from_run_id"] == failed.info.run_id
    history = mlflow.MlflowClient().get_metric_history(finished.info.run_id, "val_loss")
    assert [metric.step for metric in history] == [1, 2]
    version = mlflow.MlflowClient().get_model_version_by_alias(
        "convnets-catdog-baseline", "champion"
    )
    assert version.run_id == finished.info.run_id
    assert not state.exists()  # released once everything is persisted


def test_the_report_compares_the_finished_runs_of_the_experiment(kedro_project):
    _run(kedro_project, "report", {})
    comparison = kedro_project / "data" / "08_reporting" / "comparison.md"
    assert "run one first, for example `kedro run --pipelines=mnist`," in comparison.read_text()

    _run(kedro_project, "mnist", {"mnist.training.epochs": 1})
    _run(kedro_project, "report", {})
    text = comparison.read_text()
    mnist = _only_run(kedro_project, "convnets")
    assert f"`{mnist.info.run_id}`" in text and "| `mnist` |" in text
    assert (kedro_project / "data" / "08_reporting" / "comparison.png").is_file()
    runs = mlflow.search_runs(
        experiment_names=["convnets"],
        filter_string="tags.mlflow.runName = 'report'",
        output_format="list",
    )
    artifacts = {
        a.path for a in mlflow.MlflowClient().list_artifacts(runs[0].info.run_id, "report")
    }
    assert artifacts == {"report/comparison.md", "report/comparison.png"}


def test_the_book_epoch_is_its_own_run_and_the_report_draws_the_frontier(kedro_project):
    _run(kedro_project, "book_epoch", {"book_epoch.image_size": [80, 80], "book_epoch.steps": 1})
    mlflow.set_tracking_uri(f"sqlite:///{kedro_project / 'mlflow.db'}")
    (book,) = mlflow.search_runs(experiment_names=["convnets"], output_format="list")
    assert book.info.status == "FINISHED" and book.data.tags["pipeline"] == "book_epoch"
    assert book.data.metrics["book_epoch_s"] > 0 and book.data.tags["processor_flags"]
    assert book.data.params["book_epoch.precision"] == "float32"

    _run(kedro_project, "report", {})
    reporting = kedro_project / "data" / "08_reporting"
    assert (reporting / "frontier.png").is_file() and (reporting / "frontier.csv").is_file()
    (report,) = mlflow.search_runs(
        experiment_names=["convnets"],
        filter_string="tags.mlflow.runName = 'report'",
        output_format="list",
    )
    artifacts = {
        a.path for a in mlflow.MlflowClient().list_artifacts(report.info.run_id, "frontier")
    }
    assert artifacts == {"frontier/frontier.csv", "frontier/frontier.png"}


def test_a_model_trained_with_a_mirrored_strategy_is_logged_served_and_predicts(kedro_project):
    params = {
        **TINY_CATDOG,
        "catdog_baseline.training.epochs": 1,
        "catdog_baseline.training.distribution": "mirrored",  # one CPU: one replica
    }
    _run(kedro_project, "catdog_baseline", params)
    run = _only_run(kedro_project, "convnets")
    assert run.info.status == "FINISHED"
    assert (
        "MirroredStrategy: 1 replica(s)"
        in Path(
            mlflow.MlflowClient().download_artifacts(run.info.run_id, "logs/kedro_run.log")
        ).read_text()
    )
    pictures = kedro_project / "pictures"
    pictures.mkdir()
    (pictures / "dog.1.jpg").write_bytes(jpeg_bytes(4001))
    uri = "models:/convnets-catdog-baseline@champion"
    _run(kedro_project, "predict", {"predict_dir": str(pictures), "model_uri": uri})
    table = pd.read_csv(kedro_project / "data" / "07_model_output" / "predictions.csv")
    assert table.probability_dog.between(0, 1).all() and table.error.isna().all()  # "" in CSV
