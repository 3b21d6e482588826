"""scripts/mlflow-server.sh: runs tracked on an MLflow server with PostgreSQL behind it."""

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlflow
import pytest

from tests.conftest import PROJECT_ROOT, make_kedro_project
from tests.pipelines.test_end_to_end import TINY_CATDOG, _run

pytestmark = [pytest.mark.slow, pytest.mark.server]

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "mlflow-server.sh"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _point_server_env_at(project: Path, uri: str) -> None:
    mlflow_yml = project / "conf" / "server" / "mlflow.yml"
    mlflow_yml.write_text(mlflow_yml.read_text().replace("http://127.0.0.1:5005", uri))


@pytest.fixture(scope="module")
def tracking_server():
    """A throwaway PostgreSQL cluster and MLflow server on free ports of 127.0.0.1."""
    # Outside pytest's private tmp: the postgres user must reach the data folder.
    folder = Path(tempfile.mkdtemp(prefix="convnets-server-"))
    folder.chmod(0o755)
    env = {
        **os.environ,
        "CONVNETS_SERVER_DIR": str(folder),
        "CONVNETS_PG_PORT": str(_free_port()),
        "CONVNETS_MLFLOW_PORT": str(_free_port()),
        "CONVNETS_DB_PASSWORD": secrets.token_hex(12),
    }
    try:
        subprocess.run([str(SCRIPT), "start"], env=env, check=True, timeout=240)
        yield f"http://127.0.0.1:{env['CONVNETS_MLFLOW_PORT']}", env
    finally:
        subprocess.run([str(SCRIPT), "stop"], env=env, check=False, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


def test_a_run_on_the_server_env_lands_in_postgresql(tracking_server, kedro_project):
    import psycopg  # noqa: PLC0415

    uri, env = tracking_server
    _point_server_env_at(kedro_project, uri)
    _run(kedro_project, "catdog", {**TINY_CATDOG, "catdog.training.epochs": 2}, env="server")

    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name("convnets")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")] == [1, 2]
    version = client.get_model_version_by_alias("convnets-catdog", "champion")
    assert version.run_id == run.info.run_id
    # Artifacts travel through the server (mlflow-artifacts:/), not a local path.
    assert run.info.artifact_uri.startswith("mlflow-artifacts:")
    log = Path(client.download_artifacts(run.info.run_id, "logs/kedro_run.log"))
    assert "Completed node" in log.read_text()
    assert not (kedro_project / "mlflow.db").exists() and not (kedro_project / "mlruns").exists()

    database = psycopg.connect(
        host="127.0.0.1",
        port=int(env["CONVNETS_PG_PORT"]),
        dbname="mlflow",
        user="mlflow",
        password=env["CONVNETS_DB_PASSWORD"],
    )
    with database, database.cursor() as cursor:
        cursor.execute("SELECT status FROM runs WHERE run_uuid = %s", (run.info.run_id,))
        assert cursor.fetchone() == ("FINISHED",)
        cursor.execute(
            "SELECT count(*) FROM metrics WHERE run_uuid = %s AND key = 'val_loss'",
            (run.info.run_id,),
        )
        assert cursor.fetchone() == (2,)
        cursor.execute("SELECT count(*) FROM model_versions WHERE name = 'convnets-catdog'")
        assert cursor.fetchone() == (1,)


def test_an_unreachable_server_fails_fast_naming_it(kedro_project):
    from convnets.hooks.tracking_store import TrackingStoreError  # noqa: PLC0415

    uri = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    _point_server_env_at(kedro_project, uri)
    started = time.monotonic()
    with pytest.raises(TrackingStoreError, match=rf"{uri} does not answer.*mlflow-server.sh start"):
        _run(kedro_project, "catdog", TINY_CATDOG, env="server")
    assert time.monotonic() - started < 15
    assert not (kedro_project / "data" / "02_intermediate" / "cats_vs_dogs_small").exists()


def test_wrong_database_credentials_fail_clearly_without_the_password(tracking_server):
    _, env = tracking_server
    wrong = secrets.token_hex(12)
    started = time.monotonic()
    result = subprocess.run(
        [str(SCRIPT), "start"],
        env={**env, "CONVNETS_DB_PASSWORD": wrong, "CONVNETS_MLFLOW_PORT": str(_free_port())},
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "PostgreSQL refused the password of its user mlflow" in result.stderr
    assert wrong not in result.stdout + result.stderr
    logs = list(Path(env["CONVNETS_SERVER_DIR"]).glob("*.log"))
    assert logs  # postgres.log, mlflow.log, ...
    for secret in (wrong, env["CONVNETS_DB_PASSWORD"]):
        assert not any(secret in log.read_text(errors="replace") for log in logs)
    assert time.monotonic() - started < 30  # MLflow alone would retry for minutes


# `kedro run` of the tiny catdog in a process of its own: two of them at once.
RUNNER = """
import sys
from pathlib import Path
from tests.pipelines.test_end_to_end import TINY_CATDOG, _run
_run(Path(sys.argv[1]), "catdog", TINY_CATDOG, env=sys.argv[2] or None)
"""


def _run_two_projects_at_once(projects: list[Path], env: str | None) -> list[str]:
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", RUNNER, str(project), env or ""],
            cwd=project,
            env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for project in projects
    ]
    outputs = [process.communicate(timeout=600)[0] for process in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-3000:]
    return outputs


def _make_projects(folder: Path, names: tuple[str, ...], prefix: str) -> list[Path]:
    """Project folders whose runs go to an experiment and registry names of their own."""
    projects = []
    for name in names:
        project = make_kedro_project(folder / name)
        for path, old, new in (
            ("base/mlflow.yml", "name: convnets", f"name: {prefix}"),
            ("base/globals.yml", "registry_prefix: convnets", f"registry_prefix: {prefix}"),
        ):
            conf = project / "conf" / path
            conf.write_text(conf.read_text().replace(old, new))
        projects.append(project)
    return projects


def _assert_two_complete_runs(uri: str, prefix: str) -> None:
    mlflow.set_tracking_uri(uri)  # model versions look their logged models up there
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name(prefix)
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(run.info.status for run in runs) == ["FINISHED", "FINISHED"]
    first, second = sorted(runs, key=lambda run: run.info.start_time)
    assert second.info.start_time < first.info.end_time  # the two runs overlapped
    for run in runs:
        history = client.get_metric_history(run.info.run_id, "val_accuracy")
        assert [metric.step for metric in history] == [1, 2]
        assert "best_checkpoint_test_accuracy" in run.data.metrics
        assert client.list_artifacts(run.info.run_id, "model")
    versions = client.search_model_versions(f"name = '{prefix}-catdog'")
    assert {version.run_id for version in versions} == {run.info.run_id for run in runs}
    # Whichever decided last, the alias ends on the better score (a tie keeps either).
    champion = client.get_model_version_by_alias(f"{prefix}-catdog", "champion")
    best = max(float(version.tags["best_checkpoint_test_accuracy"]) for version in versions)
    assert float(champion.tags["best_checkpoint_test_accuracy"]) == best


def test_two_projects_track_to_one_server_at_once(tracking_server, tmp_path):
    uri, _ = tracking_server
    projects = _make_projects(tmp_path, ("alice", "bob"), prefix="two-projects")
    for project in projects:
        _point_server_env_at(project, uri)
    _run_two_projects_at_once(projects, env="server")
    _assert_two_complete_runs(uri, prefix="two-projects")


def test_two_projects_track_to_one_sqlite_file_at_once(tmp_path):
    """The same two runs on one sqlite file, for comparison (docs/scaling.md)."""
    shared = tmp_path / "shared-mlflow.db"
    projects = _make_projects(tmp_path, ("alice", "bob"), prefix="two-projects")
    for project in projects:
        mlflow_yml = project / "conf" / "base" / "mlflow.yml"
        mlflow_yml.write_text(
            mlflow_yml.read_text().replace("sqlite:///mlflow.db", f"sqlite:///{shared}")
        )
    # Created beforehand: two processes creating a new sqlite store at once collide on
    # its schema ("table ... already exists"); a server creates its schema once.
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{shared}").search_experiments()
    _run_two_projects_at_once(projects, env=None)
    _assert_two_complete_runs(f"sqlite:///{shared}", prefix="two-projects")


def _kedro_run(project: Path, *args: str) -> subprocess.Popen:
    """``kedro run`` as a user starts it: no MLFLOW_ settings of the test's own."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
    # Wide: rich would wrap the log lines this test looks for.
    env.update(KEDRO_DISABLE_TELEMETRY="1", TF_CPP_MIN_LOG_LEVEL="3", COLUMNS="400")
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("kedro")), "run", *args],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _read_until(process: subprocess.Popen, text: str, seen: list[str]) -> None:
    for line in process.stdout:
        seen.append(line)
        if text in line:
            return
    raise AssertionError(f"ended before {text!r}:\n" + "".join(seen)[-3000:])


def test_a_server_restarted_mid_training_gets_every_epoch_once(tracking_server, kedro_project):
    """The server is killed during epoch 2 and started again while training goes on: the
    epochs it missed are sent once it answers, each step once."""
    import signal  # noqa: PLC0415

    uri, env = tracking_server
    _point_server_env_at(kedro_project, uri)
    # An experiment of its own: the last test counts the mnist runs of "convnets".
    mlflow_yml = kedro_project / "conf" / "server" / "mlflow.yml"
    mlflow_yml.write_text(
        mlflow_yml.read_text() + "tracking:\n  experiment:\n    name: convnets-restart\n"
    )
    command = ("--pipelines=mnist", "--env=server", "--params=mnist.training.epochs=100000")
    process = _kedro_run(kedro_project, *command)
    seen: list[str] = []
    try:
        _read_until(process, "Epoch 2/100000", seen)
        group = int((Path(env["CONVNETS_SERVER_DIR"]) / "mlflow.pid").read_text())
        os.killpg(group, signal.SIGKILL)
        _read_until(process, "Could not log epoch metrics", seen)
        subprocess.run([str(SCRIPT), "start"], env=env, check=True, timeout=240)
        _read_until(process, "MLflow answers again", seen)
        _read_until(process, "Epoch ", seen)  # one more epoch, logged as it ends
        process.send_signal(signal.SIGINT)
        seen.append(process.communicate(timeout=300)[0])
    finally:
        if process.poll() is None:
            process.kill()
    output = "".join(seen)
    assert process.returncode == 130, output[-3000:]
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("convnets-restart")
    (run,) = client.search_runs(
        [experiment.experiment_id],
        filter_string="tags.pipeline = 'mnist' and attributes.status = 'KILLED'",
    )
    steps = sorted(metric.step for metric in client.get_metric_history(run.info.run_id, "loss"))
    state = kedro_project / "data" / "06_models" / "mnist" / "training_state"
    done = json.loads((state / "state.json").read_text())["epochs_done"]
    assert steps == list(range(1, len(steps) + 1))  # none missing, none twice
    assert done - 1 <= len(steps) <= done  # the epoch being sent at the signal may be lost
    assert len(steps) > 3, output[-3000:]  # epochs of the outage were sent after it


def test_a_server_that_dies_mid_training_and_stays_down(tracking_server, kedro_project):
    """Last in this module: it kills the module's MLflow server, then starts it again."""
    import signal  # noqa: PLC0415

    uri, env = tracking_server
    _point_server_env_at(kedro_project, uri)
    command = ("--pipelines=mnist", "--env=server", "--params=mnist.training.epochs=6")
    process = _kedro_run(kedro_project, *command)
    seen: list[str] = []
    try:
        _read_until(process, "Epoch 2/6", seen)  # epoch 1 is logged to the server
        group = int((Path(env["CONVNETS_SERVER_DIR"]) / "mlflow.pid").read_text())
        os.killpg(group, signal.SIGKILL)  # the server dies; PostgreSQL stays
        killed = time.monotonic()
        seen.append(process.communicate(timeout=600)[0])
        took = time.monotonic() - killed
    finally:
        if process.poll() is None:
            process.kill()
        subprocess.run([str(SCRIPT), "start"], env=env, check=True, timeout=240)
    output = "".join(seen)
    # Training went on, each MLflow call giving up within seconds (MLflow's own
    # retries took minutes per call): then one message, and the models kept.
    assert process.returncode == 2, output[-3000:]
    assert took < 150, output[-3000:]
    assert "Could not log epoch metrics to MLflow (training goes on" in output
    assert f"The MLflow tracking server {uri} did not answer" in output, output[-3000:]
    assert "resume state (data/06_models/mnist/training_state)" in output
    assert "Traceback" not in output
    state = kedro_project / "data" / "06_models" / "mnist" / "training_state"
    assert json.loads((state / "state.json").read_text())["epochs_done"] == 6

    # The server is back: the same command logs the kept models without training again.
    again = _kedro_run(kedro_project, *command)
    output = again.communicate(timeout=600)[0]
    assert again.returncode == 0, output[-3000:]
    assert "after epoch 6 of 6" in output, output[-3000:]
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = client.get_experiment_by_name("convnets")
    # The module's server holds the runs of the tests before this one too.
    mnist = client.search_runs([experiment.experiment_id], filter_string="tags.pipeline = 'mnist'")
    # The first could not end its run on a dead server: the second marked it KILLED.
    assert sorted(run.info.status for run in mnist) == ["FINISHED", "KILLED"]
    finished = [run for run in mnist if run.info.status == "FINISHED"]
    versions = client.search_model_versions("name = 'convnets-mnist'")
    assert [version.run_id for version in versions] == [finished[0].info.run_id]
    assert not state.exists()  # released once everything was logged
    # Each of the six epochs once on the run that finished (logged from the saved state).
    history = client.get_metric_history(finished[0].info.run_id, "loss")
    assert sorted(metric.step for metric in history) == [1, 2, 3, 4, 5, 6]
