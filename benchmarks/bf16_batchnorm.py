"""Where bfloat16 does not pay: catdog_fast's training step with its batch
normalisation after each convolution, after each pooling, and without it, in float32
and mixed_bfloat16, each in a fresh process.

    python benchmarks/bf16_batchnorm.py --rounds 2 --json benchmarks/results/bf16_batchnorm.json

The model is conf/base's ``catdog_fast`` architecture (128x128, batch 32) on random
pictures (a step's time does not depend on the pixels). ``convolution`` and
``pooling`` are the values of ``architecture.normalization``; ``none`` replaces every
``BatchNormalization`` layer with an identity while the model is built, so the
difference is what the normalisation costs in each precision. Each process reports
the median over ``--steps`` training steps after warm-up, wall and process CPU time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from worker import run_worker  # benchmarks/worker.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
SIDES = [
    (precision, normalization)
    for normalization in ("convolution", "pooling", "none")
    for precision in ("float32", "mixed_bfloat16")
]


def worker(precision: str, normalization: str, steps: int) -> dict:
    import keras  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    from convnets.config.keys import conf_parameters  # noqa: PLC0415
    from convnets.ml import models  # noqa: PLC0415
    from convnets.ml.training import compile_model, precision_policy  # noqa: PLC0415
    from convnets.parameters import Architecture, ImageInput, Training, parse  # noqa: PLC0415

    params = conf_parameters(ROOT / "conf")["catdog_fast"]
    image_input = parse(ImageInput, "catdog_fast.input", params["input"])
    if normalization != "none":
        params["architecture"]["normalization"] = normalization
    architecture = parse(Architecture, "catdog_fast.architecture", params["architecture"])
    training = parse(Training, "catdog_fast.training", params["training"])
    if normalization == "none":
        models.layers.BatchNormalization = lambda *args, **kwargs: keras.layers.Identity()
    keras.utils.set_random_seed(0)
    with precision_policy(precision):
        model = models.build_catdog_model(image_input.image_size, architecture.root)
    compile_model(model, training, steps_per_epoch=63)
    rng = np.random.default_rng(0)
    batch = image_input.batch_size
    images = rng.integers(0, 256, (batch, *image_input.image_size, 3), dtype=np.uint8)
    labels = rng.integers(0, 2, (batch,)).astype("float32")
    for _ in range(3):
        model.train_on_batch(images, labels)
    walls, cpus = [], []
    for _ in range(steps):
        wall, cpu = time.perf_counter(), sum(os.times()[:2])
        model.train_on_batch(images, labels)
        walls.append(time.perf_counter() - wall)
        cpus.append(sum(os.times()[:2]) - cpu)
    return {
        "precision": precision,
        "normalization": normalization,
        "step_wall_s": statistics.median(walls),
        "step_cpu_s": statistics.median(cpus),
        "parameters": model.count_params(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks/results/bf16_batchnorm.json"
    )
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        precision, normalization = args.worker
        print(json.dumps(worker(precision, normalization, args.steps)))  # noqa: T201
        return
    from convnets.ml.hardware import cpu_flags  # noqa: PLC0415

    runs = []
    for round_number in range(args.rounds):
        ordered = SIDES if round_number % 2 == 0 else list(reversed(SIDES))
        for precision, normalization in ordered:
            command = [sys.executable, __file__, "--steps", str(args.steps)]
            command += ["--worker", precision, normalization]
            result = {"round": round_number + 1, **run_worker(command)}
            print(json.dumps(result))  # noqa: T201
            runs.append(result)
    report = {
        "command": " ".join(sys.argv),
        "date": time.strftime("%Y-%m-%d"),
        "flags": sorted(f for f in cpu_flags() if f.startswith(("avx512", "amx"))),
        "runs": runs,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
