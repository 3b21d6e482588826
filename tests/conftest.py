"""Shared fixtures: tiny synthetic data in the real formats, and a throw-away Kedro project."""

from __future__ import annotations

import contextlib
import copy
import functools
import io
import os
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# Before TensorFlow or Kedro are imported by a test module.
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """A real tmpfs of ``size`` (``3m``, ``64k``) on ``folder``, made if missing; the test
    is skipped where mounting is not permitted (root can)."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        # Lazy: a file a process still holds open keeps the mount busy.
        subprocess.run(["umount", "--lazy", str(folder)], check=False)


def remount(folder: Path, options: str) -> None:
    """Change a ``tmpfs`` mount: ``size=32m`` (space freed), ``ro``."""
    subprocess.run(["mount", "-o", f"remount,{options}", str(folder)], check=True)


def jpeg_bytes(seed: int, size: int = 24, mode: str = "RGB") -> bytes:
    """A small random JPEG; brighter for dogs so a model has something to learn."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, size=(size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, format="JPEG")
    return buffer.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares its size and holds no pixels: only its header can be read."""
    import zlib  # noqa: PLC0415

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def write_kaggle_zip(
    path: Path, per_class: int = 20, extra: dict[str, bytes] | None = None
) -> Path:
    """A zip in Kaggle's train.zip layout: train/cat.N.jpg and train/dog.N.jpg."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for label_number, label in enumerate(("cat", "dog")):
            for index in range(per_class):
                archive.writestr(
                    f"train/{label}.{index}.jpg", jpeg_bytes(1000 * label_number + index)
                )
        for name, content in (extra or {}).items():
            archive.writestr(name, content)
    return path


def write_mnist_npz(path: Path, n_train: int = 200, n_test: int = 50) -> Path:
    """A keras.datasets-format npz with random 28x28 digits."""
    rng = np.random.default_rng(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        x_train=rng.integers(0, 255, (n_train, 28, 28), dtype=np.uint8),
        y_train=rng.integers(0, 10, n_train, dtype=np.uint8),
        x_test=rng.integers(0, 255, (n_test, 28, 28), dtype=np.uint8),
        y_test=rng.integers(0, 10, n_test, dtype=np.uint8),
    )
    return path


@pytest.fixture
def kaggle_zip(tmp_path: Path) -> Path:
    """20 tiny JPEGs per class in Kaggle's train.zip layout."""
    return write_kaggle_zip(tmp_path / "raw" / "train.zip")


@pytest.fixture
def kedro_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A copy of this project's pyproject.toml and conf/ with tiny raw data, as cwd."""
    project = make_kedro_project(tmp_path / "project")
    monkeypatch.chdir(project)
    reset_mlflow()
    yield project
    reset_mlflow()


def make_kedro_project(project: Path) -> Path:
    """This project's pyproject.toml and conf/ in ``project``, with tiny raw data."""
    project.mkdir()
    shutil.copy(PROJECT_ROOT / "pyproject.toml", project)
    (project / "src").mkdir()  # bootstrap_project wants it; convnets is installed
    shutil.copytree(
        PROJECT_ROOT / "conf", project / "conf", ignore=shutil.ignore_patterns("credentials*")
    )
    # conf/base/mlflow.yml's relative "sqlite:///mlflow.db" is kept: the project's hook
    # makes it absolute against the project root, as for a user.
    write_mnist_npz(project / "data" / "01_raw" / "mnist.npz")
    write_mnist_npz(project / "data" / "01_raw" / "fashion_mnist.npz")
    write_kaggle_zip(project / "data" / "01_raw" / "cats_vs_dogs" / "train.zip")
    return project


def run_checked(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run a command to its end; fail with the end of its output unless it succeeds."""
    import subprocess  # noqa: PLC0415

    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def reset_mlflow() -> None:
    """Forget the active run and experiment that MLflow keeps in module globals."""
    import mlflow  # noqa: PLC0415
    from mlflow.tracking import fluent  # noqa: PLC0415

    while mlflow.active_run():
        mlflow.end_run()
    fluent._active_experiment_id = None
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)  # set by MLflow for the run's process


@pytest.fixture
def http_server(tmp_path: Path):
    """A static file server on 127.0.0.1 serving ``<tmp>/served``; yields (folder, base URL)."""
    import functools  # noqa: PLC0415
    import threading  # noqa: PLC0415
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer  # noqa: PLC0415

    served = tmp_path / "served"
    served.mkdir()

    class QuietHandler(SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(served))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@functools.cache
def _project_parameters(env: str | None) -> dict:
    from convnets.config.keys import conf_parameters as load  # noqa: PLC0415

    return load(PROJECT_ROOT / "conf", env)


def conf_parameters(env: str | None = None) -> dict:
    """The project's parameters as ``kedro run`` reads them (base, then ``env``), read
    once per test run (conf/ does not change during one): a copy each call."""
    return copy.deepcopy(_project_parameters(env))


def typed_parameters(annotation, key: str, **changes):
    """The section ``key`` (dotted) of conf/base with ``changes``, parsed as ``annotation``."""
    from convnets.config.loader import merged  # noqa: PLC0415
    from convnets.parameters import parse  # noqa: PLC0415

    value = conf_parameters()
    for part in key.split("."):
        value = value[part]
    return parse(annotation, key, merged(value, changes))


def upright_pixels() -> np.ndarray:
    """A 40x60 picture whose orientation shows: bright top, dark bottom, a grey left edge."""
    pixels = np.full((40, 60, 3), 20, dtype=np.uint8)
    pixels[:20] = 230
    pixels[:, :12] = 128
    return pixels


def exif_rotated_jpeg(pixels: np.ndarray, orientation: int = 6) -> bytes:
    """``pixels`` as a phone stores them: turned, with the EXIF tag that turns them back."""
    from PIL import ImageOps  # noqa: PLC0415

    def tagged(image: Image.Image, value: int) -> Image.Image:
        image.getexif()[0x0112] = value
        return image

    # Turning by the inverse of ``orientation`` stores what ``orientation`` turns back.
    inverse = {6: 8, 8: 6}.get(orientation, orientation)
    source = Image.fromarray(pixels)
    stored = ImageOps.exif_transpose(tagged(source, inverse))
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", quality=95, exif=exif)
    return buffer.getvalue()


def save_servable(keras_model, **changes):
    """``keras_model`` as the ``ServableModel`` a catdog run logs (``changes`` to its
    ``ServingConfig``)."""
    from convnets.parameters import CatsVsDogsData  # noqa: PLC0415
    from convnets.serving.model import ServableModel, ServingConfig, ServingSpec  # noqa: PLC0415

    data = typed_parameters(CatsVsDogsData, "cats_vs_dogs")
    config = ServingConfig(
        **{
            "class_names": list(data.classes),
            "image_size": list(keras_model.input_shape[1:3]),
            "channels": 3,
            "input_scale": 1.0,
            "max_pixels": data.max_image_pixels,
            "decision_threshold": data.decision_threshold,
            **changes,
        }
    )
    spec = ServingSpec(config, jpeg_bytes(0, size=40), test_split_sha256="0" * 64)
    return ServableModel(keras_model, spec, test_accuracy=0.5)


def servable_model(keras_model, folder: Path, **changes):
    """``keras_model`` as the servable model, saved in ``folder`` and loaded as predict
    loads it (``mlflow.pyfunc.load_model``)."""
    import mlflow  # noqa: PLC0415

    from convnets.serving.servable_dataset import save_servable_model  # noqa: PLC0415

    save_servable_model(save_servable(keras_model, **changes), folder, ["mlflow"])
    return mlflow.pyfunc.load_model(str(folder))


def log_servable_run(project: Path, keras_model, version: str, **changes) -> str:
    """A run of ``project``'s MLflow store that saved ``version`` of a catdog best
    checkpoint and logged ``keras_model`` as its servable model; returns its run id."""
    import mlflow  # noqa: PLC0415

    from convnets.datasets import MlflowServableModelDataset  # noqa: PLC0415

    reset_mlflow()
    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    if mlflow.get_experiment_by_name("convnets") is None:
        mlflow.create_experiment("convnets", artifact_location=(project / "mlruns").as_uri())
    mlflow.set_experiment("convnets")
    with mlflow.start_run(tags={"run_id": version}) as run:
        MlflowServableModelDataset("convnets-catdog", pip_requirements=["mlflow"]).save(
            save_servable(keras_model, **changes)
        )
    reset_mlflow()
    return run.info.run_id


PROCESS_MARK = "CONVNETS_TEST_PROCESS"  # set in the environment of processes a test starts


def marked_processes(mark: str) -> list[int]:
    """Ids of the live processes (this one aside) whose environment holds
    ``PROCESS_MARK=mark``: every process a test started, and theirs."""
    needle = f"{PROCESS_MARK}={mark}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def kill_processes(pids: list[int]) -> None:
    import signal  # noqa: PLC0415

    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_for_ping(base_url: str, process: subprocess.Popen, timeout: float = 180) -> None:
    """Until an MLflow scoring server at ``base_url`` answers ``/ping``; fails if
    ``process`` (the server's command) ends first."""
    import time  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{base_url}/ping", timeout=5):
                return
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"the server ended ({process.returncode})") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"{base_url} did not answer within {timeout:.0f} s") from None
            time.sleep(1)
