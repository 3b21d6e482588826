"""The project's hooks: parameters checked before the first node; orphan runs closed."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
from omegaconf import OmegaConf

from convnets.hooks.mlflow_run import PID_TAG
from convnets.parameters import ParameterError
from tests.conftest import remount, tmpfs
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

    from convnets.config.check import ParameterCheck  # noqa: PLC0415

    with pytest.raises(ParameterError, match="Run one training pipeline at a time, not catdog"):
        ParameterCheck().before_pipeline_run(
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


@pytest.mark.processes
def test_a_run_killed_with_sigkill_is_marked_killed_by_the_next_run(kedro_project):
    from convnets.hooks.mlflow_run import KILLED_REASON_TAG, PID_TAG  # noqa: PLC0415

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


@pytest.mark.processes
def test_a_second_run_in_the_same_folder_is_refused_while_the_first_lives(kedro_project):
    from convnets.durability.lock import HOLDER_NAME, ProjectBusy, mark_as_staging  # noqa: PLC0415
    from convnets.hooks.mlflow_run import PID_TAG  # noqa: PLC0415

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

    from convnets.durability import scratch  # noqa: PLC0415
    from convnets.durability.lock import make_staging_dir  # noqa: PLC0415
    from convnets.durability.scratch import OWNER_FILE, scratch_dir  # noqa: PLC0415
    from convnets.hooks.lock import ProjectLockCheck  # noqa: PLC0415

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
    scratch._unmark(abandoned)  # noqa: SLF001 - and its owner's lock gone with it
    live = scratch_dir("convnets-servable-")

    hook = ProjectLockCheck()
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
    from convnets.hooks.tracking_store import TrackingStoreError  # noqa: PLC0415

    (kedro_project / "mlflow.db").write_bytes(b"this is not an sqlite database" * 100)
    with pytest.raises(TrackingStoreError, match=r"mlflow\.db cannot be read .*mv "):
        _run(kedro_project, "mnist", {"mnist.training.epochs": 1})
    assert not (kedro_project / "data" / "06_models" / "mnist").exists()


def test_a_locked_tracking_database_is_named(kedro_project):
    from convnets.hooks.tracking_store import TrackingStoreError, check_tracking_store  # noqa: PLC0415

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


def _kedro_cli_process(project, *args: str) -> subprocess.Popen:
    """``kedro run`` as a user starts it (the project's CLI), without creating the store."""
    kedro = str(Path(sys.executable).with_name("kedro"))
    env = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
    env.update(KEDRO_DISABLE_TELEMETRY="1", TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen(
        [kedro, "run", *args],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


@pytest.mark.processes
@pytest.mark.faults
def test_two_first_runs_at_once_make_one_store_and_the_second_is_refused(kedro_project):
    from convnets.durability.lock import LOCK_NAME  # noqa: PLC0415

    assert not (kedro_project / "mlflow.db").exists()
    args = ("--pipelines=mnist", "--params=mnist.training.epochs=100000")
    processes = [_kedro_cli_process(kedro_project, *args) for _ in range(2)]
    try:
        deadline = time.monotonic() + 240
        while all(process.poll() is None for process in processes):
            assert time.monotonic() < deadline, "neither run ended"
            time.sleep(0.2)
        ended = [process for process in processes if process.poll() is not None]
        if len(ended) == 2:  # both ended: show why
            raise AssertionError([process.communicate()[0][-3000:] for process in ended])
        (refused,) = ended
        (running,) = [process for process in processes if process is not refused]
        output = refused.communicate(timeout=30)[0]
        assert refused.returncode == 2, output[-3000:]
        assert f"Another run (pid {running.pid} " in output and LOCK_NAME in output, output
        assert "Traceback" not in output and "already exists" not in output, output
        time.sleep(1)
        assert running.poll() is None  # the first run goes on
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.communicate(timeout=120)
    assert running.returncode == 143  # stopped cleanly by SIGTERM
    # One working store, with the one run that ran.
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{kedro_project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("convnets")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "KILLED" and run.data.tags[PID_TAG] == str(running.pid)
    client.set_terminated(client.create_run(experiment.experiment_id).info.run_id)


def _new_store(database) -> None:
    mlflow.MlflowClient(tracking_uri=f"sqlite:///{database}").search_experiments()


def test_a_half_migrated_tracking_database_is_named_with_what_to_do(tmp_path):
    import sqlite3  # noqa: PLC0415

    from convnets.hooks.tracking_store import TrackingStoreError, check_tracking_store  # noqa: PLC0415

    leftover, unstamped = tmp_path / "leftover.db", tmp_path / "unstamped.db"
    for database in (leftover, unstamped):
        _new_store(database)
    with sqlite3.connect(leftover) as db:  # what an interrupted migration leaves
        db.execute("CREATE TABLE _alembic_tmp_latest_metrics (key VARCHAR(250))")
    with sqlite3.connect(unstamped) as db:
        db.execute("DROP TABLE alembic_version")
    with pytest.raises(TrackingStoreError, match=r"_alembic_tmp_latest_metrics.*mv .*\.broken"):
        check_tracking_store(f"sqlite:///{leftover}")
    with pytest.raises(TrackingStoreError, match=r"unstamped\.db is half-created .*alembic"):
        check_tracking_store(f"sqlite:///{unstamped}")


def test_a_read_only_tracking_database_is_named_with_what_to_do(tmp_path):
    from convnets.hooks.tracking_store import TrackingStoreError, check_tracking_store  # noqa: PLC0415

    database = tmp_path / "mlflow.db"
    _new_store(database)
    database.chmod(0o444)  # root could still write it: the mode bits are what count
    with pytest.raises(TrackingStoreError, match=rf"{database} cannot be written.*chmod u\+w"):
        check_tracking_store(f"sqlite:///{database}")
    database.chmod(0o644)
    check_tracking_store(f"sqlite:///{database}")


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder on a tmpfs remounted read-only, with a tracking database in it."""
    with tmpfs(tmp_path / "mount", "4m") as folder:
        # Made outside: MLflow keeps its database open, and a busy mount stays writable.
        _new_store(tmp_path / "mlflow.db")
        shutil.copy(tmp_path / "mlflow.db", folder / "mlflow.db")
        remount(folder, "ro")
        yield folder


def test_a_tracking_database_on_a_read_only_mount_is_named_with_what_to_do(read_only_folder):
    from convnets.hooks.tracking_store import TrackingStoreError, check_tracking_store  # noqa: PLC0415

    database = read_only_folder / "mlflow.db"
    with pytest.raises(TrackingStoreError, match=rf"{database} cannot be written.*chmod u\+w"):
        check_tracking_store(f"sqlite:///{database}")


def test_a_copied_project_does_not_write_into_the_original(kedro_project, tmp_path, monkeypatch):
    from convnets.hooks.experiment import check_artifact_location  # noqa: PLC0415
    from convnets.hooks.tracking_store import TrackingStoreError  # noqa: PLC0415

    uri = f"sqlite:///{kedro_project / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    client.create_experiment("convnets")  # from the project root, as a run makes it
    experiment = client.get_experiment_by_name("convnets")
    assert experiment.artifact_location == str(kedro_project / "mlruns" / "1")
    check_artifact_location(uri, experiment, kedro_project)  # the original is fine

    copy = tmp_path / "copy"
    shutil.copytree(kedro_project, copy)
    monkeypatch.chdir(copy)
    with pytest.raises(TrackingStoreError) as error:
        _run(copy, "mnist", {"mnist.training.epochs": 1})
    message = str(error.value)
    assert f"another project folder, {kedro_project}:" in message
    assert f"({copy})" in message and f"mv {copy / 'mlflow.db'} " in message
    assert not (kedro_project / "mlruns" / "1").exists()
    assert not (copy / "data" / "06_models" / "mnist").exists()


def test_mlflow_http_calls_to_a_server_that_is_down_give_up_within_seconds(monkeypatch):
    import socket  # noqa: PLC0415

    from convnets.hooks.tracking_store import MLFLOW_HTTP_DEFAULTS, bound_mlflow_http_retries  # noqa: PLC0415

    for name in MLFLOW_HTTP_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "7")  # a user's own value
    bound_mlflow_http_retries()
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "7"
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there
    started = time.monotonic()
    with pytest.raises(mlflow.exceptions.MlflowException, match="Max retries exceeded"):
        mlflow.MlflowClient(tracking_uri=f"http://127.0.0.1:{port}").search_experiments()
    assert time.monotonic() - started < 15  # MLflow's own defaults: minutes


def test_a_name_typo_then_a_size_the_disk_cannot_hold_are_refused_and_their_fixes_run(
    kedro_project, monkeypatch
):
    from convnets.config import costs  # noqa: PLC0415

    tiny = {**TINY_CATDOG, "catdog.training.epochs": 1}
    split = kedro_project / "data" / "02_intermediate" / "cats_vs_dogs_small"
    with pytest.raises(ParameterError) as error:
        _run(kedro_project, "catdog", {**tiny, "catdog.training.optimizer": "rmsprp"})
    message = str(error.value)
    assert "catdog.training.optimizer: Input should be 'adadelta'" in message
    (hint,) = _hints(message)
    assert hint == "--params=catdog.training.optimizer=<value>"
    assert not split.exists()

    # 36 pictures of 200x200 need 4.3 MB of decoded cache; the disk has 2 MB.
    monkeypatch.setattr(costs, "free_disk", lambda path: 2_000_000)
    with pytest.raises(ParameterError) as error:
        _run(kedro_project, "catdog", {**tiny, "catdog.input.image_size": "200x200"})
    message = str(error.value)
    assert "catdog.input.image_size: 200x200 needs about 4.3 MB of decoded cache" in message
    assert "has 2.0 MB free" in message
    (hint,) = _hints(message)
    assert not split.exists()
    key, size = hint.removeprefix("--params=").split("=")
    _run(kedro_project, "catdog", {**tiny, key: size})
    runs = mlflow.search_runs(experiment_names=["convnets"], output_format="list")
    assert [run.info.status for run in runs] == ["FINISHED"]
    decoded = kedro_project / "data" / "03_primary" / "cats_vs_dogs_decoded"
    assert [folder.name for folder in decoded.iterdir() if folder.is_dir()] == [size]


def test_an_unknown_key_is_refused_in_a_session_started_without_the_cli(kedro_project):
    with pytest.raises(ParameterError) as error:
        _run(kedro_project, "catdog", {**TINY_CATDOG, "catdog.trainig.epochs": 1})
    assert "did you mean catdog.training?" in str(error.value)
    assert not (kedro_project / "data" / "02_intermediate" / "cats_vs_dogs_small").exists()


@pytest.mark.parametrize("reader", ["predict", "explain", "report", "book_epoch"])
def test_a_training_with_a_pipeline_that_reads_its_results_is_refused(reader):
    from kedro.pipeline import Pipeline  # noqa: PLC0415

    from convnets.config.check import ParameterCheck  # noqa: PLC0415

    with pytest.raises(
        ParameterError, match=f"Run {reader} in a kedro run of its own, not with catdog"
    ):
        ParameterCheck().before_pipeline_run(
            {"pipeline_names": ["catdog", reader]}, Pipeline([]), catalog=None
        )
