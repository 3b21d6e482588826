"""The project's hooks: parameters checked before the first node; orphan runs closed."""

import os
import signal
import subprocess
import sys
import time

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


def _kedro_run_process(project, *args: str) -> subprocess.Popen:
    """``kedro run`` in a real process of its own, in ``project``."""
    # Create the tracking store first: two processes creating it at once collide.
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    mlflow.MlflowClient().search_experiments()
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    log = (project / "kedro_process.log").open("a")
    return subprocess.Popen(
        [sys.executable, "-m", "kedro", "run", *args],
        cwd=project,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait_for(condition, process, seconds: float = 120):
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, "the kedro run process ended early"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


def test_a_run_killed_with_sigkill_is_marked_killed_by_the_next_run(kedro_project):
    from convnets.hooks import KILLED_REASON_TAG, PID_TAG  # noqa: PLC0415

    mlflow.set_tracking_uri(f"sqlite:///{kedro_project / 'mlflow.db'}")
    process = _kedro_run_process(
        kedro_project, "--pipelines=mnist", "--params=mnist.training.epochs=100000"
    )
    try:

        def tagged_run():
            try:
                runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
            except Exception:  # noqa: BLE001 - the store may not exist yet
                return False
            return any(PID_TAG in run.data.tags for run in runs)

        _wait_for(tagged_run, process)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    (orphan,) = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert orphan.info.status == "RUNNING" and orphan.data.tags[PID_TAG] == str(process.pid)

    _run(kedro_project, "mnist", {"mnist.training.epochs": 1})
    orphan = mlflow.get_run(orphan.info.run_id)
    assert orphan.info.status == "KILLED"
    assert f"pid {process.pid}" in orphan.data.tags[KILLED_REASON_TAG]
    statuses = sorted(
        run.info.status
        for run in mlflow.search_runs(search_all_experiments=True, output_format="list")
    )
    assert statuses == ["FINISHED", "KILLED"]


def test_a_second_run_in_the_same_folder_is_refused_while_the_first_lives(kedro_project):
    from convnets.hooks import PID_TAG  # noqa: PLC0415
    from convnets.project_lock import HOLDER_NAME, ProjectBusy, mark_as_staging  # noqa: PLC0415

    data = kedro_project / "data"
    process = _kedro_run_process(
        kedro_project, "--pipelines=mnist", "--params=mnist.training.epochs=100000"
    )
    mlflow.set_tracking_uri(f"sqlite:///{kedro_project / 'mlflow.db'}")
    try:
        _wait_for((data / HOLDER_NAME).is_file, process)
        with pytest.raises(ProjectBusy, match=rf"pid {process.pid} .*pipelines mnist"):
            _run(kedro_project, "catdog", TINY_CATDOG)
        # The refused run wrote nothing: no split, no MLflow run of its own.
        assert not (data / "02_intermediate" / "cats_vs_dogs_small").exists()
        runs = mlflow.search_runs(search_all_experiments=True, output_format="list")
        assert [run.data.tags.get(PID_TAG) for run in runs] in ([], [str(process.pid)])
        assert process.poll() is None  # the first run goes on
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    # The killed run's lock died with it; its staging folders are removed by the next run.
    staging = data / "02_intermediate" / ".cats_vs_dogs_small-staging-x1y2"
    (staging / "train").mkdir(parents=True)
    mark_as_staging(staging, "the killed run")
    _run(kedro_project, "mnist", {"mnist.training.epochs": 1})
    assert not staging.exists()
    assert not (data / HOLDER_NAME).exists()


def test_the_lock_hook_removes_only_what_killed_runs_of_the_project_left(tmp_path, monkeypatch):
    import json  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    from convnets.hooks import ProjectLockHook  # noqa: PLC0415
    from convnets.project_lock import make_staging_dir  # noqa: PLC0415
    from convnets.scratch import OWNER_FILE, scratch_dir  # noqa: PLC0415

    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    raw = tmp_path / "data" / "01_raw"
    users = [raw / "predict" / ".download-holiday", raw / "my-album" / ".summer-staging-2024"]
    for folder in users:
        folder.mkdir(parents=True)
        (folder / "photo.jpg").write_bytes(b"a photo")
    staging = make_staging_dir(raw, ".download-", "a killed run")
    abandoned = scratch_dir("convnets-run-log-")
    owner = json.loads((abandoned / OWNER_FILE).read_text())
    (abandoned / OWNER_FILE).write_text(json.dumps({**owner, "create_time": 1.0}))  # pid reused
    live = scratch_dir("convnets-servable-")

    hook = ProjectLockHook()
    hook.before_pipeline_run(
        run_params={"project_path": str(tmp_path)}, pipeline=None, catalog=None
    )
    hook.after_pipeline_run()
    assert not staging.exists()
    assert not abandoned.exists()
    assert live.is_dir()
    for folder in users:
        assert (folder / "photo.jpg").read_bytes() == b"a photo"


def test_a_damaged_tracking_database_is_named_with_what_to_do(kedro_project):
    from convnets.hooks import TrackingStoreError  # noqa: PLC0415

    (kedro_project / "mlflow.db").write_bytes(b"this is not an sqlite database" * 100)
    with pytest.raises(TrackingStoreError, match=r"mlflow\.db cannot be read .*mv "):
        _run(kedro_project, "mnist", {"mnist.training.epochs": 1})
    assert not (kedro_project / "data" / "06_models" / "mnist").exists()


def test_a_locked_tracking_database_is_named(kedro_project):
    from convnets.hooks import TrackingStoreError, check_tracking_store  # noqa: PLC0415

    database = kedro_project / "mlflow.db"
    mlflow.set_tracking_uri(f"sqlite:///{database}")
    mlflow.MlflowClient().search_experiments()  # creates the store
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            f"db = sqlite3.connect({str(database)!r}, isolation_level=None)\n"
            "db.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(TrackingStoreError, match=r"mlflow\.db is locked by another process"):
            check_tracking_store(f"sqlite:///{database}", timeout_s=0.5)
    finally:
        holder.kill()
        holder.wait()
    check_tracking_store(f"sqlite:///{database}", timeout_s=0.5)  # free again
