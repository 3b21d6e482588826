"""deploy/airflow_dag_template.j2: `kedro airflow create` makes a DAG that Airflow imports,
whose tasks are the pipeline's memory groups, and that runs catdog into one MLflow run."""

import json
import os
import sys
from pathlib import Path

import mlflow
import pytest
from slugify import slugify

from tests.conftest import PROJECT_ROOT, run_checked
from tests.pipelines.test_node_by_node import _memory_groups, _tiny_project

pytestmark = [pytest.mark.slow, pytest.mark.orchestration]

TEMPLATE = PROJECT_ROOT / "deploy" / "airflow_dag_template.j2"

# Run by Airflow's own interpreter setup: the DAG folder parsed as the scheduler does.
READ_DAG = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
dag = bag.dags.get("convnets-catdog")
print(json.dumps({
    "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
    "tasks": None if dag is None else {
        task.task_id: sorted(task.upstream_task_ids) for task in dag.tasks
    },
    "max_active_tasks": None if dag is None else dag.max_active_tasks,
}))
"""


@pytest.fixture
def airflow_env(tmp_path: Path) -> dict[str, str]:
    """An Airflow home of its own (sqlite metadata database), DAGs from the project."""
    return {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow_home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "KEDRO_DISABLE_TELEMETRY": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }


def test_the_catdog_dag_has_the_pipelines_groups_and_runs_into_one_mlflow_run(
    tmp_path, airflow_env
):
    project = _tiny_project(tmp_path / "project")
    kedro = [sys.executable, "-m", "kedro"]
    run_checked(
        [*kedro, "airflow", "create", "--pipelines=catdog", "--group-by=memory",
         f"--jinja-file={TEMPLATE}"],
        project,
        airflow_env,
    )  # fmt: skip
    dags = project / "airflow_dags"
    assert [path.name for path in dags.iterdir()] == ["convnets_catdog_dag.py"]

    env = {**airflow_env, "AIRFLOW__CORE__DAGS_FOLDER": str(dags)}
    output = run_checked([sys.executable, "-c", READ_DAG, str(dags)], project, env)
    parsed = json.loads(output.strip().splitlines()[-1])  # after Airflow's own log lines
    assert parsed["import_errors"] == {}
    groups = _memory_groups(project)
    opener = next(group for group in groups if not group.dependencies)  # opens the MLflow run
    expected = {
        slugify(group.name): sorted(
            {slugify(dependency) for dependency in group.dependencies}
            | ({slugify(opener.name)} if group is not opener else set())
        )
        for group in groups
    }
    assert parsed["tasks"] == expected
    assert parsed["max_active_tasks"] == 1  # one kedro run at a time in a project folder

    run_checked([sys.executable, "-m", "airflow", "db", "migrate"], project, env)
    run_checked([sys.executable, "-m", "airflow", "dags", "test", "convnets-catdog"], project, env)

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    (run,) = mlflow.search_runs(experiment_names=["convnets"], output_format="list")
    assert run.info.status == "FINISHED"
    assert {"best_checkpoint_test_accuracy", "final_model_test_loss"} <= set(run.data.metrics)
    client = mlflow.MlflowClient()
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")] == [1, 2]
    (version,) = client.search_model_versions("name = 'convnets-catdog'")
    assert version.run_id == run.info.run_id
