"""The catdog pipeline run one group of nodes per ``kedro run`` process, as an orchestrator
runs it, against the same pipeline in one process."""

import os
import sys
from pathlib import Path

import mlflow
import pytest
import yaml

from tests.conftest import make_kedro_project, run_checked
from tests.pipelines.test_end_to_end import TINY_CATDOG, _nested

pytestmark = [pytest.mark.slow, pytest.mark.orchestration]

# The nodes that share tf.data datasets, which stay in memory (conf/base/catalog.yml).
IN_MEMORY_GROUP = {
    "catdog.make_datasets",
    "catdog.plot_augmented_images",
    "catdog.train_model",
    "catdog.evaluate_best_checkpoint",
    "catdog.evaluate_final_model",
}


def _tiny_project(folder: Path) -> Path:
    """A project whose conf/local holds the tiny parameters, so plain ``kedro run`` uses them."""
    project = make_kedro_project(folder)
    (project / "conf" / "local" / "parameters_tiny.yml").write_text(
        yaml.safe_dump(_nested(TINY_CATDOG))
    )
    return project


def _kedro_run(project: Path, *args: str, run_id: str | None = None) -> None:
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    if run_id:
        env["MLFLOW_RUN_ID"] = run_id
    run_checked([sys.executable, "-m", "kedro", "run", "--pipelines=catdog", *args], project, env)


def _memory_groups(project: Path) -> list:
    """kedro-airflow's --group-by memory groups of catdog, dependencies first."""
    from kedro.framework.project import pipelines  # noqa: PLC0415
    from kedro.framework.session import KedroSession  # noqa: PLC0415
    from kedro.framework.startup import bootstrap_project  # noqa: PLC0415
    from kedro_airflow.grouping import group_memory_nodes  # noqa: PLC0415

    bootstrap_project(project)
    with KedroSession.create(project_path=project) as session:
        catalog = session.load_context().catalog
        groups = group_memory_nodes(catalog, pipelines["catdog"])
    done: set[str] = set()
    ordered = []
    while len(ordered) < len(groups):
        for group in groups:
            if group.name not in done and set(group.dependencies) <= done:
                ordered.append(group)
                done.add(group.name)
    return ordered


def _runs(project: Path) -> list[mlflow.entities.Run]:
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    return mlflow.search_runs(experiment_names=["convnets"], output_format="list")


def test_catdog_node_by_node_gives_the_run_of_one_process(tmp_path):
    whole, split = _tiny_project(tmp_path / "whole"), _tiny_project(tmp_path / "split")

    groups = [group.nodes for group in _memory_groups(split)]
    assert [set(group) for group in groups if len(group) > 1] == [IN_MEMORY_GROUP]
    assert len(groups) == 8  # the other seven nodes each run alone

    _kedro_run(whole)
    (first, *rest) = groups
    _kedro_run(split, f"--nodes={','.join(first)}")
    (run,) = _runs(split)
    for group in rest:  # every later process logs into the first one's MLflow run
        _kedro_run(split, f"--nodes={','.join(group)}", run_id=run.info.run_id)

    (one_process,) = _runs(whole)
    (node_by_node,) = _runs(split)
    assert node_by_node.info.status == "FINISHED"
    for metric in (
        "best_checkpoint_test_accuracy",
        "best_checkpoint_test_loss",
        "final_model_test_loss",
    ):
        assert node_by_node.data.metrics[metric] == pytest.approx(
            one_process.data.metrics[metric], rel=1e-5
        ), metric
    client = mlflow.MlflowClient()
    steps = [m.step for m in client.get_metric_history(node_by_node.info.run_id, "val_loss")]
    assert steps == [1, 2]
    artifacts = {a.path for a in client.list_artifacts(node_by_node.info.run_id, "figures")}
    assert {"figures/training_curves.png", "figures/augmentation_samples.png"} <= artifacts
    (version,) = client.search_model_versions("name = 'convnets-catdog'")
    assert version.run_id == node_by_node.info.run_id
    # The resume state was released by the last group, as in one process.
    assert not (split / "data" / "06_models" / "catdog" / "training_state").exists()
