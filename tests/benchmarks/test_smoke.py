"""Every script of benchmarks/ run as a user runs it, on tiny data made here: none can rot.

Each test starts one script in a fresh interpreter from the project root with its
smallest options (one round, a step or two, a few pictures per class), writes its JSON
into ``tmp_path`` (never benchmarks/results/) and checks the figures the script
promises. The figures themselves mean nothing at this size: only that they are there.
Every process a script starts is stopped with it, servers included (``_run``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import (
    PROCESS_MARK,
    PROJECT_ROOT,
    jpeg_bytes,
    kill_processes,
    log_servable_run,
    marked_processes,
    write_kaggle_zip,
)

pytestmark = pytest.mark.benchmarks

RESULTS = PROJECT_ROOT / "benchmarks" / "results"
# Images per class of train, validation and test: the smallest split every script takes.
SIZES = (4, 2, 2)
# Kaggle's names, with indices from the book's start of each subset (0, 1000, 1500).
STARTS = (0, 1000, 1500)


# ----------------------------------------------------------------- processes
def _environment(**extra: str) -> dict[str, str]:
    """The test's environment without MLflow settings of its own (a developer's tracking
    server must not receive these runs), quiet TensorFlow, and ``extra``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
    env.update(KEDRO_DISABLE_TELEMETRY="1", TF_CPP_MIN_LOG_LEVEL="2", **extra)
    return env


def _run(
    script: str, *args: object, env: dict[str, str] | None = None, timeout: float = 600
) -> str:
    """``python benchmarks/<script> args`` from the project root; its output, once it
    has succeeded. Whatever it started is stopped when it ends, however it ends."""
    mark = uuid.uuid4().hex
    process = subprocess.Popen(
        [sys.executable, f"benchmarks/{script}", *map(str, args)],
        cwd=PROJECT_ROOT,
        env={**(env or _environment()), PROCESS_MARK: mark},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        try:
            output = process.communicate(timeout=timeout)[0]
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            kill_processes(marked_processes(mark))
            output = process.communicate()[0]
            pytest.fail(f"{script} did not finish within {timeout:.0f} s:\n{output[-5000:]}")
        # The script's own processes (its workers, its model server) end with it.
        deadline = time.monotonic() + 30
        while (left := marked_processes(mark)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not left, f"{script} left processes running: {left}"
    finally:
        # Whatever is left, by the mark: its workers, and processes in sessions of their
        # own such as the model server (the group alone would miss those).
        kill_processes(marked_processes(mark))
        process.wait()
    assert process.returncode == 0, f"{script} failed:\n{output[-5000:]}"
    return output


@pytest.fixture(autouse=True)
def _committed_results_stay_untouched():
    def state() -> dict[str, tuple[int, int]]:
        return {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in RESULTS.iterdir()}

    before = state()
    yield
    assert state() == before, "a smoke run wrote into benchmarks/results/"


# ----------------------------------------------------------------- tiny data
def _archive(path: Path) -> Path:
    """Kaggle's train.zip with exactly SIZES pictures per class, at the book's indices."""
    names = [
        f"train/{label}.{start + index}.jpg"
        for label in ("cat", "dog")
        for start, size in zip(STARTS, SIZES, strict=True)
        for index in range(size)
    ]
    return write_kaggle_zip(
        path, per_class=0, extra={name: jpeg_bytes(seed) for seed, name in enumerate(names)}
    )


def _split(folder: Path) -> Path:
    """The split as the ingestion writes it (data/02_intermediate/cats_vs_dogs_small)."""
    from convnets.datasets import ImageFolderDataset  # noqa: PLC0415

    files = {
        f"{subset}/{label}/{label}.{start + index}.jpg": jpeg_bytes(start + index + 7 * number)
        for subset, start, size in zip(("train", "validation", "test"), STARTS, SIZES, strict=True)
        for number, label in enumerate(("cat", "dog"))
        for index in range(size)
    }
    ImageFolderDataset(path=str(folder)).save(files)
    return folder


def _positive(mapping: dict, *keys: str) -> None:
    for key in keys:
        value = mapping[key]
        assert isinstance(value, int | float) and value > 0, (key, value)


# ----------------------------------------------------------------- the scripts
def test_training_speed(tmp_path):
    """Book and project side by side, a full (tiny) epoch, and the Kedro overhead."""
    output = tmp_path / "training_speed.json"
    printed = _run(
        "training_speed.py",
        "--archive", _archive(tmp_path / "train.zip"),
        "--subset-sizes", *SIZES,
        "--repeats", 1, "--steps", 1, "--warmup", 1,
        "--overhead",
        "--output", output,
    )  # fmt: skip
    report = json.loads(output.read_text())
    assert "| training, images/s |" in printed and "Kedro + MLflow overhead" in printed
    assert report["settings"]["subset_sizes"] == list(SIZES)
    assert set(report["median"]) == {"book", "project"}
    for side in ("book", "project"):
        _positive(
            report["median"][side],
            "input_images_per_s",
            "train_images_per_s",
            "train_gflops_per_s",
            "matmul_peak_gflops_per_s",
            "peak_rss_mb",
            "epoch_s",
            "epoch_cpu_s",
        )
    _positive(report["median"]["project"], "decode_once_s")
    assert len(report["speedups_per_round"]["epoch_s_book_over_project"]) == 1
    _positive(report["overhead"], "kedro_run_s", "bare_script_s")
    assert "overhead_s" in report["overhead"]


def test_book_epochs(tmp_path):
    output = tmp_path / "book_epochs.json"
    split = _split(tmp_path / "split")
    printed = _run("book_epochs.py", "--split", split, "--rounds", 1, "--json", output)
    report = json.loads(output.read_text())
    assert "median catdog_fast/book epoch ratio over 1 rounds" in printed
    (round_,) = report["rounds"]
    assert round_["catdog"]["dtype_policy"] == "float32"  # the unit is the book's float32
    for recipe, size in (("catdog", [180, 180]), ("catdog_fast", [128, 128])):
        assert round_[recipe]["image_size"] == size
        assert round_[recipe]["train_images"] == 2 * SIZES[0]
        _positive(round_[recipe], "first_epoch_wall_s", "epoch_wall_s", "epoch_cpu_s")
    _positive(report, "median_ratio")
    _positive(round_, "fast_over_book_wall", "fast_over_book_cpu")


def test_bf16_batchnorm(tmp_path):
    output = tmp_path / "bf16_batchnorm.json"
    _run("bf16_batchnorm.py", "--rounds", 1, "--steps", 1, "--json", output)
    runs = json.loads(output.read_text())["runs"]
    sides = {(run["precision"], run["normalization"]): run for run in runs}
    assert len(runs) == 6 and set(sides) == {
        (precision, normalization)
        for precision in ("float32", "mixed_bfloat16")
        for normalization in ("convolution", "pooling", "none")
    }
    for run in runs:
        _positive(run, "step_wall_s", "parameters")
        assert run["step_cpu_s"] >= 0
    # ``none`` really builds the model without its batch normalisation layers.
    assert sides["float32", "none"]["parameters"] < sides["float32", "convolution"]["parameters"]


def test_ingestion(tmp_path):
    """The damaged copy: each kind of damage at an index the tiny split reaches."""
    damaged = [1000, 1200, 1201, 1500, 1600, 1601]  # cat.1200, dog.1600 and their stand-ins
    archive = write_kaggle_zip(
        tmp_path / "train.zip",
        per_class=16,  # cat.3, cat.10, dog.5, dog.7 and dog.11 among train's first 13
        extra={
            f"train/{label}.{index}.jpg": jpeg_bytes(index + number)
            for number, label in enumerate(("cat", "dog"))
            for index in damaged
        },
    )
    output = tmp_path / "ingestion.json"
    printed = _run(
        "ingestion.py", "--archive", archive, "--damage", "--subset-sizes", 12, 2, 2,
        "--json", output,
    )  # fmt: skip
    assert "damaged copy: clean split, damage reported, nothing outside data/" in printed
    report = json.loads(output.read_text())
    assert report["images_in_split"] == 2 * (12 + 2 + 2)
    assert report["second_run_wrote_nothing"] is True
    assert report["files_written_outside_data"] == []
    assert report["report_counts"] == {
        "skipped_images": 4,  # truncated (2), empty, text
        "converted_images": 3,  # PNG, CMYK, grayscale
        "refused_images": 4,  # two zip-slips, an absolute path, a symbolic link
    }
    _positive(report, "first_run_seconds", "peak_rss_mib")
    assert report["second_run_seconds"] >= 0


def test_input_pipeline(tmp_path):
    output = tmp_path / "input_pipeline.json"
    split = _split(tmp_path / "split")
    printed = _run(
        "input_pipeline.py", "--split", split, "--image-size", 32, 32,
        "--rounds", 1, "--epochs", 1, "--json", output,
    )  # fmt: skip
    report = json.loads(output.read_text())
    assert "median ratio memmap/pread over 1 rounds" in printed
    (round_,) = report["rounds"]
    for reader in ("memmap", "pread"):
        assert round_[reader]["images"] == 2 * SIZES[0]
        _positive(round_[reader], "wall_s", "images_per_s")
    _positive(report, "median_ratio")


def test_serving(kedro_project, tmp_path):
    """The model server (one worker), the bare model and the predict path, on a tiny model
    registered as a catdog run registers it; the script stops its server."""
    import keras  # noqa: PLC0415

    inputs = keras.Input((32, 32, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(pooled))
    log_servable_run(kedro_project, model, "2026-01-01T00.00.00.000Z")
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    for index in range(4):
        (pictures / f"cat.{index}.jpg").write_bytes(jpeg_bytes(index, size=40))
    output = tmp_path / "serving.json"
    env = _environment(MLFLOW_TRACKING_URI=f"sqlite:///{kedro_project / 'mlflow.db'}")
    _run(
        "serving.py", "--model-uri", "models:/convnets-catdog@champion",
        "--pictures", pictures, "--rounds", 1, "--workers", 1, "--clients", 1,
        "--requests", 2, "--json", output, env=env,
    )  # fmt: skip
    report = json.loads(output.read_text())
    assert report["pictures"] == 4
    http = report["http_workers_1"]
    assert http["workers"] == 1 and http["requests"] == 2
    _positive(http, "requests_per_s", "p50_ms", "p95_ms", "over_bare_batch1")
    _positive(report["median_images_per_s"], "bare_batch1", "bare_batch32", "predict_path")
    assert report["compute_dtype"] in ("float32", "bfloat16", "float16")


def test_system_metrics(kedro_project, tmp_path):
    """Two ``kedro run --pipelines=mnist`` of a tiny MNIST, without and with system metrics."""
    output = tmp_path / "system_metrics.json"
    printed = _run("system_metrics.py", "--project", kedro_project, "--rounds", 1, "--json", output)
    report = json.loads(output.read_text())
    assert "median with/without" in printed
    (round_,) = report["rounds"]
    assert round_["order"] == ["without", "with"]
    for side in ("without", "with"):
        _positive(round_[side], "wall_s", "cpu_s")
    _positive(report, "median_wall_ratio", "median_cpu_ratio")
    # The runs were the tiny project's, not this checkout's.
    assert (kedro_project / "mlflow.db").is_file()


def test_ablation(tmp_path):
    """``ablate.py cache`` then ``ablate.py train``: one epoch of a narrow fast_v1."""
    out = tmp_path / "ablation"
    archive = _archive(tmp_path / "train.zip")
    printed = _run(
        "ablation/ablate.py", "--out", out, "cache", "--size", 80, "--archive", archive,
        "--subset-sizes", *SIZES,
    )  # fmt: skip
    assert "failures: 0" in printed
    manifest = json.loads((out / "cache" / "manifest_80.json").read_text())
    assert manifest["counts"] == {"train": 8, "validation": 4, "test": 4}
    printed = _run(
        "ablation/ablate.py", "--out", out, "train", "--name", "smoke", "--size", 80,
        "--epochs", 1, "--widths", "4,4,4,4,4",
    )  # fmt: skip
    (result,) = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert printed.count("RESULT ") == 1
    assert result["name"] == "smoke" and result["complete"] and result["epochs_done"] == 1
    _positive(result, "params", "fit_wall_s", "median_epoch_wall_s", "total_wall_s", "peak_rss_mb")
    for key in ("best_val_accuracy", "test_acc_best", "test_acc_last_tta"):
        assert 0 <= result[key] <= 1, key
    assert len((out / "logs" / "smoke.epochs.jsonl").read_text().splitlines()) == 1
