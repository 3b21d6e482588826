"""The served model beside the bare Keras model and the predict path, in one run.

    MLFLOW_TRACKING_URI=sqlite:///$PWD/mlflow.db python benchmarks/serving.py \\
        --model-uri models:/convnets-catdog@champion \\
        --pictures data/02_intermediate/cats_vs_dogs_small/test --workers 1 --workers 2 \\
        --json benchmarks/results/serving.json

Three ways to classify the same JPEGs with the same model, each timed here:

- ``bare_batch1`` / ``bare_batch32``: the Keras model's ``predict_on_batch`` on pictures
  already decoded and resized (images/s): the machine's own limit for this model;
- ``predict_path``: ``serving.classify`` on the picture bytes, what ``kedro run
  --pipelines=predict`` and the served model run for each picture (header check,
  decode, resize, batches of 32), images/s over ``--pictures``;
- ``http_workers_<W>``: ``python -m convnets.serve`` (``mlflow models serve``) with
  ``W`` uvicorn workers, ``--clients`` threads each posting one JPEG per request,
  ``--requests`` in all after a warm-up: requests/s, p50 and p95 latency.

The processor flags and the precision the model computes in are written with the
figures. Run it on an otherwise idle machine: every figure shares the two cores.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _pictures(folder: Path, limit: int) -> list[bytes]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not files:
        raise SystemExit(f"No pictures under {folder}: give --pictures a folder of JPEGs")
    return [p.read_bytes() for p in files[:limit]]


def bare_and_predict_path(model_uri: str, pictures: list[bytes], rounds: int) -> dict:
    import mlflow  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    from convnets.ml.preprocessing import to_model_input  # noqa: PLC0415
    from convnets.serving.model import classify  # noqa: PLC0415

    served = mlflow.pyfunc.load_model(model_uri).unwrap_python_model()
    model, config = served.keras_model, served.config
    arrays = np.stack(
        [to_model_input(p, tuple(config.image_size), config.max_pixels) for p in pictures]
    )
    model.predict_on_batch(arrays[:32])  # tracing
    model.predict_on_batch(arrays[:1])
    results: dict[str, list[float]] = {"bare_batch1": [], "bare_batch32": [], "predict_path": []}
    for _ in range(rounds):
        count = min(200, len(arrays))
        started = time.perf_counter()
        for index in range(count):
            model.predict_on_batch(arrays[index : index + 1])
        results["bare_batch1"].append(count / (time.perf_counter() - started))
        started = time.perf_counter()
        for start in range(0, len(arrays), 32):
            model.predict_on_batch(arrays[start : start + 32])
        results["bare_batch32"].append(len(arrays) / (time.perf_counter() - started))
        started = time.perf_counter()
        classify(model, config, pictures)
        results["predict_path"].append(len(pictures) / (time.perf_counter() - started))
    dtype = model.layers[-2].compute_dtype
    return {"images_per_s": results, "compute_dtype": dtype}


def _request_body(picture: bytes) -> bytes:
    split = {"columns": ["image"], "data": [[base64.b64encode(picture).decode()]]}
    return json.dumps({"dataframe_split": split}).encode()


def _post(url: str, body: bytes) -> float:
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as answer:
        payload = json.loads(answer.read())
    assert "predictions" in payload, payload
    return time.perf_counter() - started


def http(model_uri: str, pictures: list[bytes], workers: int, clients: int, requests: int) -> dict:
    port = _free_port()
    command = [sys.executable, "-m", "convnets.serve", model_uri, "-h", "127.0.0.1"]
    command += ["-p", str(port), "-w", str(workers)]
    server = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the model server did not start") from None
                time.sleep(1)
        bodies = [
            json.dumps(
                {
                    "dataframe_split": {
                        "columns": ["image"],
                        "data": [[base64.b64encode(p).decode()]],
                    }
                }
            ).encode()
            for p in pictures[:64]
        ]
        url = f"http://127.0.0.1:{port}/invocations"
        for body in bodies[: 2 * workers]:  # warm every worker
            _post(url, body)
        latencies: list[float] = []
        lock = threading.Lock()
        counter = iter(range(requests))

        def client() -> None:
            while True:
                with lock:
                    index = next(counter, None)
                if index is None:
                    return
                seconds = _post(url, bodies[index % len(bodies)])
                with lock:
                    latencies.append(seconds)

        started = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        ordered = sorted(latencies)
        return {
            "workers": workers,
            "clients": clients,
            "requests": len(latencies),
            "requests_per_s": len(latencies) / elapsed,
            "p50_ms": 1000 * statistics.median(ordered),
            "p95_ms": 1000 * ordered[int(0.95 * (len(ordered) - 1))],
        }
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-uri", required=True)
    parser.add_argument("--pictures", type=Path, required=True, help="a folder of JPEGs")
    parser.add_argument("--limit", type=int, default=1000, help="pictures used (default 1000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, action="append", help="uvicorn workers (repeat)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/serving.json")
    args = parser.parse_args()
    from convnets import quiet  # noqa: PLC0415
    from convnets.ml.hardware import cpu_flags, resolve_precision  # noqa: PLC0415

    quiet.install()
    pictures = _pictures(args.pictures, args.limit)
    report = {
        "command": " ".join(sys.argv),
        "date": time.strftime("%Y-%m-%d"),
        "flags": sorted(f for f in cpu_flags() if f.startswith(("avx512", "amx"))),
        "precision_auto": resolve_precision("auto", gpus=[])[0],
        "pictures": len(pictures),
    }
    for workers in args.workers or [1]:  # the server first, so the bare model holds no cores
        report[f"http_workers_{workers}"] = http(
            args.model_uri, pictures, workers, args.clients, args.requests
        )
        print(json.dumps(report[f"http_workers_{workers}"]))  # noqa: T201
    local = bare_and_predict_path(args.model_uri, pictures, args.rounds)
    report.update(local)
    medians = {key: statistics.median(values) for key, values in local["images_per_s"].items()}
    report["median_images_per_s"] = medians
    for workers in args.workers or [1]:
        rate = report[f"http_workers_{workers}"]["requests_per_s"]
        report[f"http_workers_{workers}"]["over_bare_batch1"] = rate / medians["bare_batch1"]
    print(json.dumps({k: v for k, v in report.items() if k != "images_per_s"}, indent=1))  # noqa: T201
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
