"""``python -m convnets.serve`` as a user runs it: a model that cannot load is refused
before any worker starts, and stopping the command stops every process it started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import mlflow
import pytest

from tests.conftest import (
    PROCESS_MARK,
    kill_processes,
    log_servable_run,
    marked_processes,
    reset_mlflow,
    wait_for_ping,
)

pytestmark = [pytest.mark.processes, pytest.mark.slow]


def _tiny_model():
    import keras  # noqa: PLC0415

    inputs = keras.Input((16, 16, 3))
    features = keras.layers.Conv2D(2, 3, name="conv")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(pooled))


@pytest.fixture
def two_versions(kedro_project):
    """Versions 1 and 2 of ``convnets-catdog`` in the project's store."""
    for version in ("2026-12-06T01.00.00.000Z", "2026-12-06T02.00.00.000Z"):
        log_servable_run(kedro_project, _tiny_model(), version)
    return kedro_project


def _serve(project: Path, mark: str, *args: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        PROCESS_MARK: mark,  # in every process the command starts
    }
    return subprocess.Popen(
        [sys.executable, "-m", "convnets.serve", *args],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_damaged_version_is_refused_before_any_worker_naming_the_file_and_the_one_before(
    two_versions,
):
    reset_mlflow()
    mlflow.set_tracking_uri(f"sqlite:///{two_versions / 'mlflow.db'}")
    model_id = mlflow.models.get_model_info("models:/convnets-catdog/2").model_id
    location = Path(mlflow.get_logged_model(model_id).artifact_location.removeprefix("file://"))
    reset_mlflow()
    (keras_file,) = location.rglob("*.keras")
    keras_file.write_bytes(keras_file.read_bytes()[:200])  # truncated
    mark = uuid.uuid4().hex
    started = time.monotonic()
    serving = _serve(two_versions, mark, "models:/convnets-catdog/2", "-p", str(_free_port()))
    output = serving.communicate(timeout=120)[0]
    assert serving.returncode == 2, output[-3000:]
    assert time.monotonic() - started < 60
    assert str(keras_file) in output and "is damaged" in output, output[-3000:]
    assert "python -m convnets.serve models:/convnets-catdog/1" in output
    assert "Traceback" not in output
    assert marked_processes(mark) == []  # no worker was started


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stopping_the_serve_command_stops_every_process_it_started(two_versions, signum):
    mark, port = uuid.uuid4().hex, _free_port()
    serving = _serve(
        two_versions, mark, "models:/convnets-catdog/1", "-h", "127.0.0.1", "-p", str(port)
    )
    try:
        wait_for_ping(f"http://127.0.0.1:{port}", serving)
        assert len(marked_processes(mark)) > 1  # the command, mlflow's server and its workers
        serving.send_signal(signum)  # to the command alone, as kill <pid> does
        serving.communicate(timeout=60)
        deadline = time.monotonic() + 30
        while marked_processes(mark) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert marked_processes(mark) == []
        assert serving.returncode == 128 + signum
    finally:
        kill_processes(marked_processes(mark))
