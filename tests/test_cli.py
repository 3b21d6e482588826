"""``kedro run`` as a user runs it, in real processes: signals, modes, errors, a quiet terminal."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import yaml

from tests.conftest import remount, reset_mlflow, tmpfs

pytestmark = pytest.mark.slow

KEDRO = str(Path(sys.executable).with_name("kedro"))
NOISE = re.compile(r"Warning|cuInit|oneDNN|cpu_feature_guard|absl")
TINY_SPLIT = {
    "subsets": {
        "train": {"start": 0, "size": 10},
        "validation": {"start": 10, "size": 4},
        "test": {"start": 14, "size": 4},
    }
}
TINY_INPUT = {"image_size": [80, 80], "batch_size": 8, "shuffle_seed": 0}


def tiny_conf(project: Path) -> None:
    """Tiny data for every environment, as conf files (lists cannot go on a command line).

    conf/local is read by a plain ``kedro run``; ``--env=quick`` reads conf/quick instead.
    """
    tiny = {"cats_vs_dogs": TINY_SPLIT, "catdog": {"input": TINY_INPUT}}
    (project / "conf" / "local" / "parameters.yml").write_text(yaml.safe_dump(tiny))
    quick = project / "conf" / "quick" / "parameters.yml"
    values = yaml.safe_load(quick.read_text())
    values["cats_vs_dogs"] = TINY_SPLIT
    values["catdog"] = {**values.get("catdog", {}), "input": TINY_INPUT}
    quick.write_text(yaml.safe_dump(values))


def environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
    # A user's terminal: nothing set that the project sets itself.
    for key in ("TF_CPP_MIN_LOG_LEVEL", "PYTHONWARNINGS", "KEDRO_ENV"):
        env.pop(key, None)
    env["KEDRO_DISABLE_TELEMETRY"] = "1"
    # Rich wraps log lines at the terminal's width: wide enough that no message is
    # split, so what a test looks for does not depend on a logger's file name.
    env["COLUMNS"] = "400"
    return env


def kedro(project: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [KEDRO, *args],
        cwd=project,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start(project: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [KEDRO, *args],
        cwd=project,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(process: subprocess.Popen, pattern: str, timeout: float = 240) -> str:
    """Read the process's output until a line matches ``pattern``; returns what was read."""
    seen = []
    deadline = time.monotonic() + timeout
    for line in process.stdout:
        seen.append(line)
        if re.search(pattern, line):
            return "".join(seen)
        assert time.monotonic() < deadline, "".join(seen)[-3000:]
    raise AssertionError(f"ended before {pattern!r}:\n" + "".join(seen)[-3000:])


def runs(project: Path, experiment: str = "convnets") -> list[mlflow.entities.Run]:
    reset_mlflow()
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    return mlflow.search_runs(experiment_names=[experiment], output_format="list")


@pytest.mark.processes
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_the_run_killed_and_the_same_command_resumes(kedro_project, signum):
    command = ("run", "--pipelines=mnist", "--params=mnist.training.epochs=40")
    process = start(kedro_project, *command)
    wait_for(process, r"Epoch 3/40: ")  # epoch 3 has begun: epochs 1-2 are saved
    process.send_signal(signum)
    output = process.communicate(timeout=120)[0]
    assert process.returncode == {signal.SIGINT: 130, signal.SIGTERM: 143}[signum]
    assert "Traceback" not in output and "Aborted!" not in output
    assert "run the same command again to resume: kedro run --pipelines=mnist" in output
    (stopped,) = runs(kedro_project)
    assert stopped.info.status == "KILLED"
    assert stopped.data.tags["killed_reason"] == f"stopped by {signal.Signals(signum).name}"
    state = kedro_project / "data" / "06_models" / "mnist" / "training_state"
    done = json.loads((state / "state.json").read_text())["epochs_done"]
    assert done >= 2
    if signum == signal.SIGTERM:
        return  # what follows does not depend on the signal

    again = kedro(kedro_project, *command)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "Resuming training" in again.stdout and f"after epoch {done} of 40" in again.stdout
    finished = next(run for run in runs(kedro_project) if run.info.status == "FINISHED")
    assert finished.info.run_name == f"mnist (resumed after epoch {done})"
    assert finished.data.tags["resumed_from_run_id"] == stopped.info.run_id
    # The report lists the stopped run apart, as not finished.
    assert kedro(kedro_project, "run", "--pipelines=report").returncode == 0
    comparison = (kedro_project / "data" / "08_reporting" / "comparison.md").read_text()
    assert "| `mnist` | KILLED |" in comparison and stopped.info.run_id in comparison


@pytest.mark.processes
def test_a_quick_run_never_touches_what_a_full_run_made(kedro_project):
    tiny_conf(kedro_project)
    full = ("run", "--pipelines=catdog", "--params=catdog.training.epochs=30")
    process = start(kedro_project, *full)
    wait_for(process, r"Epoch 3/30: ")  # epoch 3 has begun: epochs 1-2 are saved
    process.kill()  # kill -9: no clean-up at all
    process.wait(timeout=60)
    data = kedro_project / "data"
    state = data / "06_models" / "catdog" / "training_state"
    done = json.loads((state / "state.json").read_text())["epochs_done"]
    assert done >= 2
    split = data / "02_intermediate" / "cats_vs_dogs_small"
    before = {path: path.stat().st_mtime_ns for path in split.rglob("*") if path.is_file()}

    quick = kedro(kedro_project, "run", "--pipelines=catdog", "--env=quick")
    assert quick.returncode == 0, quick.stdout[-3000:] + quick.stderr[-3000:]
    assert "Set aside" not in quick.stdout and "Discarding" not in quick.stdout
    assert (data / "quick" / "06_models" / "catdog" / "best_checkpoint.keras").is_dir()
    assert (data / "quick" / "02_intermediate" / "cats_vs_dogs_small").is_dir()
    assert {path: path.stat().st_mtime_ns for path in split.rglob("*") if path.is_file()} == before
    assert not (data / "06_models" / "catdog" / "best_checkpoint.keras").exists()

    resumed = kedro(kedro_project, *full)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert f"after epoch {done} of 30" in resumed.stdout


@pytest.mark.processes
def test_expected_mistakes_get_one_message_and_no_traceback(kedro_project):
    cases = {
        ("run", "--pipelines=mnist", "--params=mnist.training.epochs=0"): (
            "Fix: --params=mnist.training.epochs=<value>"
        ),
        ("run", "--pipelines=mnsit"): "Did you mean one of these instead?",
        ("run", "--pipelines=predict", "--params=model_uri=models:/nope@champion"): (
            "Registered models: none yet"
        ),
    }
    (kedro_project / "data" / "01_raw" / "predict").mkdir()
    (kedro_project / "data" / "01_raw" / "predict" / "a.jpg").write_bytes(b"x")
    for args, hint in cases.items():
        result = kedro(kedro_project, *args)
        output = result.stdout + result.stderr
        assert result.returncode == 2, output[-3000:]
        assert hint in output, output[-3000:]
        assert "Traceback" not in output and "╭" not in output, output[-3000:]
        assert "Error: " in result.stderr
    verbose = kedro(kedro_project, "run", "--pipelines=mnsit", "--verbose")
    assert verbose.returncode != 0 and "Traceback" in verbose.stdout + verbose.stderr


WATCH_TENSORFLOW = (
    "import atexit, sys\n"
    "atexit.register(lambda: print('TENSORFLOW', 'tensorflow' in sys.modules))\n"
    "from kedro.framework.cli import main\n"
    "sys.argv = ['kedro', *sys.argv[1:]]\n"
    "main()\n"
)


@pytest.mark.processes
def test_a_refused_second_run_and_the_help_do_not_import_tensorflow(kedro_project):
    from convnets.durability.lock import ProjectLock  # noqa: PLC0415

    def watched(*args):
        return _watched(kedro_project, *args)[0]

    helped = watched("run", "--help")
    assert "--verbose" in helped.stdout and "TENSORFLOW False" in helped.stdout
    listed = watched("registry", "list")
    assert "- catdog_fast" in listed.stdout and "TENSORFLOW False" in listed.stdout
    holder = ProjectLock(kedro_project / "data")
    holder.acquire(["catdog"])  # another run, as far as the folder can tell
    try:
        refused = watched("run", "--pipelines=mnist")
    finally:
        holder.release()
    assert refused.returncode == 2
    assert "Another run" in refused.stderr and "pipelines catdog" in refused.stderr
    assert "TENSORFLOW False" in refused.stdout
    assert not list(kedro_project.glob("mlflow.db"))  # nothing written


@pytest.mark.processes
def test_a_quick_mnist_run_prints_no_third_party_noise(kedro_project):
    result = kedro(kedro_project, "run", "--pipelines=mnist", "--env=quick")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    noisy = [line for line in (result.stdout + result.stderr).splitlines() if NOISE.search(line)]
    assert noisy == []
    (run,) = runs(kedro_project, "convnets-quick")
    assert run.data.tags["kedro_command"] == "kedro run --pipelines=mnist --env=quick"
    assert run.data.tags["runner"] == "SequentialRunner"
    # The code's commit (an editable install from a checkout, as the README installs).
    assert len(run.data.tags["mlflow.source.git.commit"]) == 40
    assert run.data.tags["git_dirty"] in ("true", "false")
    experiment = mlflow.get_experiment_by_name("convnets-quick")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


@pytest.mark.processes
def test_kedro_viz_build_draws_the_layers(kedro_project):
    result = kedro(kedro_project, "viz", "build", timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "circular dependency" not in output
    assert (kedro_project / "build" / "index.html").is_file()


@pytest.mark.processes
def test_serving_an_unknown_model_says_so_in_one_line_with_the_registered_names(kedro_project):
    result = subprocess.run(
        [sys.executable, "-m", "convnets.serve", "models:/convnets-catdog@champion"],
        cwd=kedro_project,
        env={**environment(), "MLFLOW_TRACKING_URI": f"sqlite:///{kedro_project / 'mlflow.db'}"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert "Registered models: none yet" in line and "convnets-quick-<pipeline>" in line


@pytest.fixture
def small_disk(tmp_path):
    """A real tmpfs of 3 MiB: room for one epoch's files of the MNIST convnet, not two."""
    with tmpfs(tmp_path / "small-disk", "3m") as mount:
        yield mount


@pytest.mark.processes
@pytest.mark.faults
def test_a_full_disk_ends_the_run_failed_with_the_space_to_free_and_it_resumes(
    kedro_project, small_disk
):
    command = (
        "run",
        "--pipelines=mnist",
        f"--params=training_state_root={small_disk},mnist.training.epochs=3",
    )
    full = kedro(kedro_project, *command)
    assert full.returncode == 2, full.stdout[-3000:] + full.stderr[-3000:]
    output = full.stdout + full.stderr
    assert "No space left on device" in output and "Traceback" not in output
    assert "run the same command again; training resumes after epoch 1" in output
    (failed,) = runs(kedro_project)
    assert failed.info.status == "FAILED"
    state = small_disk / "mnist" / "training_state"
    record = json.loads((state / "state.json").read_text())
    assert record["epochs_done"] == 1  # the saved epoch survived the full disk
    assert not list(state.glob(".*partial*"))  # nothing half-written left

    remount(small_disk, "size=32m")
    again = kedro(kedro_project, *command)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "Epoch 1/3" not in again.stdout and "Epoch 2/3" in again.stdout  # not trained twice
    finished = next(run for run in runs(kedro_project) if run.info.status == "FINISHED")
    assert finished.info.run_name == "mnist (resumed after epoch 1)"
    assert finished.data.tags["resumed_from_run_id"] == failed.info.run_id


def _raised(error: BaseException, wrap: BaseException) -> BaseException:
    """``wrap`` raised while handling ``error``, as a node or a hook would."""
    try:
        try:
            raise error
        except BaseException:
            raise wrap  # noqa: B904 - __context__, not __cause__, as in MLflow's own code
    except BaseException as raised:
        return raised


def test_a_tracking_server_that_stays_down_gets_one_message_naming_the_resume_state(
    tmp_path, monkeypatch
):
    import socket  # noqa: PLC0415

    from convnets.cli import _environment_failure  # noqa: PLC0415
    from convnets.hooks.tracking_store import MLFLOW_HTTP_DEFAULTS, bound_mlflow_http_retries  # noqa: PLC0415

    for name in MLFLOW_HTTP_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    bound_mlflow_http_retries()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        server = f"http://127.0.0.1:{probe.getsockname()[1]}"  # nothing listens there
    monkeypatch.setattr(mlflow, "get_tracking_uri", lambda: server)
    try:
        mlflow.MlflowClient(tracking_uri=server).log_metric("0" * 32, "loss", 1.0)
    except mlflow.exceptions.MlflowException as down:
        failure = _raised(down, RuntimeError("a callback failed"))
    message = _environment_failure(failure, tmp_path, ["mnist"], None)
    assert message.startswith(f"The MLflow tracking server {server} did not answer")
    assert "resume state (data/06_models/mnist/training_state)" in message
    assert "run the same command again to log them" in message
    # Another host that does not answer is not the tracking server.
    requests = pytest.importorskip("requests")
    other = requests.exceptions.ConnectionError("refused")
    other.request = requests.Request("GET", "http://example.invalid/data.zip").prepare()
    assert _environment_failure(_raised(other, RuntimeError("x")), tmp_path, [], None) is None
    assert _environment_failure(RuntimeError("a bug"), tmp_path, [], None) is None


def test_a_full_disk_gets_one_message_naming_the_file(tmp_path, monkeypatch):
    import errno  # noqa: PLC0415
    import sqlite3  # noqa: PLC0415

    from convnets.cli import _environment_failure  # noqa: PLC0415

    full = OSError(errno.ENOSPC, "No space left on device", "data/06_models/mnist/x.keras")
    message = _environment_failure(_raised(full, ValueError("save failed")), tmp_path, [], None)
    assert message == (
        "No space left on device (data/06_models/mnist/x.keras): free space and run the "
        "same command again; the run resumes where it stopped."
    )
    monkeypatch.setattr(mlflow, "get_tracking_uri", lambda: "sqlite:////p/mlflow.db")
    sqlite_full = mlflow.exceptions.MlflowException("(sqlite3.OperationalError) ...")
    store = sqlite3.connect(":memory:")
    store.execute("CREATE TABLE metrics (value)")
    store.execute("PRAGMA max_page_count = 2")  # SQLite's own SQLITE_FULL, as on a full disk
    with pytest.raises(sqlite3.OperationalError) as raised:
        for _ in range(100):
            store.execute("INSERT INTO metrics VALUES (?)", ("x" * 1000,))
    sqlite_full.__cause__ = raised.value
    message = _environment_failure(sqlite_full, tmp_path, [], None)
    assert message.startswith("No space left on device (/p/mlflow.db): free space")


@pytest.mark.processes
@pytest.mark.faults
def test_a_run_that_fills_the_disk_ends_with_one_message(kedro_project):
    # The resume state goes to a disk too small for a checkpoint.
    with tmpfs(kedro_project / "full", "32k") as full:
        params = f"--params=mnist.training.epochs=2,training_state_root={full}"
        result = kedro(kedro_project, "run", "--pipelines=mnist", params)
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Error: No space left on device" in result.stderr
    assert "run the same command again; training starts at epoch 1" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.processes
@pytest.mark.faults
@pytest.mark.parametrize(
    "folder, tags, size, said",
    [
        ("02_intermediate", "ingestion", "8k", "No space left on device"),
        # The cache's size is known before decoding: refused with the parameters.
        ("03_primary", "ingestion,preprocessing", "64k", "of decoded cache"),
    ],
    ids=["split", "decoded-cache"],
)
def test_a_full_disk_while_the_split_or_the_cache_is_written_says_so_and_leaves_nothing(
    kedro_project, folder, tags, size, said
):
    tiny_conf(kedro_project)
    with tmpfs(kedro_project / "data" / folder, size) as disk:
        command = ("run", "--pipelines=catdog", f"--tags={tags}")
        full = kedro(kedro_project, *command)
        assert full.returncode == 2, full.stdout[-3000:] + full.stderr[-3000:]
        assert said in full.stderr, full.stderr[-3000:]
        assert "Traceback" not in full.stdout + full.stderr
        left = [path.name for path in disk.rglob("*") if "staging" in path.name]
        assert left == []  # the half-written folder went with the failed write
        remount(disk, "size=16m")
        again = kedro(kedro_project, *command)
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]


@pytest.mark.processes
@pytest.mark.faults
def test_a_full_disk_while_models_are_logged_keeps_the_training_for_the_next_run(kedro_project):
    # Where the MLflow run's files go.
    with tmpfs(kedro_project / "mlruns", "256k") as artifacts:
        command = ("run", "--pipelines=mnist", "--params=mnist.training.epochs=2")
        full = kedro(kedro_project, *command)
        assert full.returncode == 2, full.stdout[-3000:] + full.stderr[-3000:]
        assert "No space left on device" in full.stderr
        assert "Traceback" not in full.stdout + full.stderr
        (failed,) = runs(kedro_project)
        assert failed.info.status == "FAILED"  # not left RUNNING
        state = kedro_project / "data" / "06_models" / "mnist" / "training_state"
        assert (state / "final.keras").is_file()  # the training is kept
        remount(artifacts, "size=64m")
        again = kedro(kedro_project, *command)
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
        assert "Training finished earlier" in again.stdout and "Epoch 1/2" not in again.stdout


def _watched(project: Path, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    """``kedro <args>`` in a process that says whether it imported TensorFlow; and its time."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", WATCH_TENSORFLOW, *args],
        cwd=project,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result, time.monotonic() - started


def _last_fix(stderr: str) -> list[str]:
    """The command of the message's last ``Fix:``, as the user would paste it."""
    import shlex  # noqa: PLC0415

    command = stderr.rsplit("Fix: ", 1)[1].splitlines()[0]
    assert command.startswith("kedro run "), stderr
    return shlex.split(command)[1:]


@pytest.mark.processes
def test_an_unknown_env_and_key_are_refused_before_tensorflow_and_the_fixes_run(kedro_project):
    tiny_conf(kedro_project)
    typed = (
        "run",
        "--pipelines=catdog",
        "--env=quikc",
        "--params=catdog.trainig.epochs=1,catdog.input.image_size=90x90",
    )
    refused, seconds = _watched(kedro_project, *typed)
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert "There is no environment 'quikc'" in refused.stderr
    assert "base, local, quick, server" in refused.stderr
    assert "TENSORFLOW False" in refused.stdout and "Traceback" not in refused.stderr
    assert seconds < 8, seconds  # a bad value took 8-10 s: the pipelines import TensorFlow

    refused, _ = _watched(kedro_project, *_last_fix(refused.stderr))
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert "catdog.trainig (--params): no key trainig in catdog" in refused.stderr
    assert "did you mean catdog.training?" in refused.stderr
    assert "TENSORFLOW False" in refused.stdout
    assert not list(kedro_project.glob("mlflow.db"))  # nothing written

    fixed = _last_fix(refused.stderr)
    assert "--env=quick" in fixed
    (params,) = [arg.removeprefix("--params=") for arg in fixed if arg.startswith("--params=")]
    assert set(params.split(",")) == {"catdog.training.epochs=1", "catdog.input.image_size=90x90"}
    done = kedro(kedro_project, *fixed)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (run,) = runs(kedro_project, "convnets-quick")
    assert run.data.params["catdog.training.epochs"] == "1"
    decoded = kedro_project / "data" / "quick" / "03_primary" / "cats_vs_dogs_decoded"
    assert (decoded / "90x90").is_dir()


@pytest.mark.processes
def test_a_bad_value_is_refused_before_tensorflow_and_before_anything_is_written(kedro_project):
    refused, seconds = _watched(
        kedro_project,
        "run",
        "--pipelines=catdog",
        "--env=quick",
        "--params=catdog.training.epochs=-1",
    )
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert "catdog.training.epochs: Input should be greater than 0 (got -1)" in refused.stderr
    assert "Fix: --params=catdog.training.epochs=<value>" in refused.stderr
    assert "TENSORFLOW False" in refused.stdout and "Traceback" not in refused.stderr
    # About 2 s on an idle 2-core machine (docs/reliability.md); 8 s leaves room for load.
    assert seconds < 8, seconds
    assert not list(kedro_project.glob("mlflow.db"))  # nothing written


@pytest.mark.faults
@pytest.mark.processes
def test_a_first_run_stopped_while_it_creates_the_store_leaves_one_the_next_run_uses(
    kedro_project,
):
    """Stopped by SIGINT or SIGKILL at several moments of MLflow's schema creation (the
    file's appearance is the start), the same command finishes each time, and the store
    is MLflow's, whole."""
    moments = [(0.05, signal.SIGINT), (0.4, signal.SIGKILL), (0.8, signal.SIGINT)]
    moments += [(1.2, signal.SIGKILL)]
    for offset, signum in moments:  # seconds after the store's file appears
        for made in kedro_project.glob("mlflow.db*"):
            made.unlink()
        process = start(kedro_project, "run", "--pipelines=report", "--env=quick")
        deadline = time.monotonic() + 120
        while not list(kedro_project.glob("mlflow.db*")) and process.poll() is None:
            assert time.monotonic() < deadline, "no tracking store was created"
            time.sleep(0.01)
        time.sleep(offset)
        process.send_signal(signum)
        process.communicate(timeout=120)
        again = kedro(kedro_project, "run", "--pipelines=report", "--env=quick")
        output = again.stdout + again.stderr
        assert again.returncode == 0, (offset, output[-3000:])
        assert "Traceback" not in output and "already exists" not in output, offset
        store = kedro_project / "mlflow.db"
        assert sorted(path.name for path in kedro_project.glob("mlflow.db*")) in (
            ["mlflow.db", "mlflow.db.lock"],
            ["mlflow.db"],
        ), offset
        check = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from mlflow.store.db.utils import "
                "_get_latest_schema_revision as head; import sqlite3; "
                "db = sqlite3.connect(sys.argv[1]); "
                "print(db.execute('SELECT version_num FROM alembic_version').fetchone()[0]"
                " == head())",
                str(store),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert check.stdout.strip() == "True", offset


# Where each phase of a catdog run begins, in order; each stopped run goes further.
PHASES = (
    ("ingestion", r"Running node: make_subset"),
    ("decoding", r"Running node: decode_images"),
    ("training", r"Epoch 1/3: "),
    ("training, epoch 3", r"Epoch 2/3 accuracy="),
    ("evaluation", r"Running node: evaluate_best_checkpoint"),
    ("logging", r"Running node: log_final_model"),
    ("registration", r"Running node: register_servable_model"),
)


@pytest.mark.faults
@pytest.mark.processes
def test_a_signal_in_any_phase_stops_the_run_at_its_next_safe_point_and_it_goes_on(
    kedro_project,
):
    """SIGINT and SIGTERM, alternating, at a random moment (seed 34) after the start of
    each phase: each run exits 130 or 143 within seconds, with no traceback and nothing
    swallowed, its MLflow run KILLED; the same command then finishes the work. A signal
    during the last node may come after its last safe point: that run finishes, says so."""
    import random  # noqa: PLC0415

    tiny_conf(kedro_project)
    command = ("run", "--pipelines=catdog", "--params=catdog.training.epochs=3")
    rng = random.Random(34)
    for trial, (phase, marker) in enumerate(PHASES):
        signum = (signal.SIGINT, signal.SIGTERM)[trial % 2]
        process = start(kedro_project, *command)
        seen = wait_for(process, marker)
        time.sleep(rng.uniform(0.0, 0.2))
        process.send_signal(signum)
        sent = time.monotonic()
        output = seen + process.communicate(timeout=120)[0]
        waited = time.monotonic() - sent
        name = signal.Signals(signum).name
        where = f"{phase} ({name}): {output[-2500:]}"
        assert waited < 15, (phase, waited)
        assert "Traceback" not in output and "Exception ignored" not in output, where
        newest = max(runs(kedro_project), key=lambda run: run.info.start_time)
        if process.returncode == 0:  # the signal came after the last safe point
            assert f"{name} came after the run's last safe point" in output, where
            assert newest.info.status == "FINISHED" and phase == "registration", where
            break
        assert process.returncode == stopping_status(signum), where
        assert newest.info.status == "KILLED", where
        assert newest.data.tags["killed_reason"] == f"stopped by {name}"
    else:
        done = kedro(kedro_project, *command)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert "Training finished earlier" in done.stdout  # the trained epochs are kept
    finished = [run for run in runs(kedro_project) if run.info.status == "FINISHED"]
    assert len(finished) == 1


def stopping_status(signum: int) -> int:
    from convnets.stopping import EXIT_STATUS  # noqa: PLC0415

    return EXIT_STATUS[signum]


@pytest.mark.parametrize(
    "params, hint",
    [
        ("catdog.input.image_size=[180,180]", "--params=catdog.input.image_size=180x180"),
        ('catdog.title=!!python/object/apply:os.system ["true"]', "tags such as !!python"),
    ],
)
def test_params_kedro_cannot_split_or_read_get_one_message_with_the_form_to_use(params, hint):
    from click.testing import CliRunner  # noqa: PLC0415

    from convnets.cli import run  # noqa: PLC0415

    option = next(param for param in run.params if param.name == "params")
    command = click_command_with(option)
    result = CliRunner().invoke(command, ["--params", params])
    assert result.exit_code == 2, result.output
    assert hint in result.output and "Traceback" not in result.output


def click_command_with(option):
    """A command that only parses ``option``, as ``kedro run`` does before running."""
    import click  # noqa: PLC0415

    return click.Command("run", params=[option], callback=lambda **kwargs: None)


def test_a_tracking_database_made_read_only_during_the_run_gets_one_message(tmp_path, monkeypatch):
    import sqlite3  # noqa: PLC0415

    from convnets.cli import _environment_failure  # noqa: PLC0415

    store = tmp_path / "mlflow.db"
    sqlite3.connect(store).execute("CREATE TABLE runs (id)").connection.close()
    read_only = sqlite3.connect(f"file:{store}?mode=ro", uri=True)  # SQLite's own error
    with pytest.raises(sqlite3.OperationalError) as raised:
        read_only.execute("INSERT INTO runs VALUES (1)")
    registering = mlflow.exceptions.MlflowException("(sqlite3.OperationalError) ...")
    registering.__cause__ = raised.value
    monkeypatch.setattr(mlflow, "get_tracking_uri", lambda: f"sqlite:///{store}")
    message = _environment_failure(_raised(registering, RuntimeError("x")), tmp_path, [], None)
    assert message.startswith(f"The MLflow tracking database {store} became read-only")
    assert f"chmod u+w {store}" in message and "without training again" in message
