"""Epoch time of a recipe in book-epoch equivalents, measured beside the book's recipe.

    kedro run --pipelines=catdog --tags=ingestion          # the full split, once
    python benchmarks/book_epochs.py --rounds 3 --json benchmarks/results/book_epochs.json
    python benchmarks/book_epochs.py --candidate catdog_xception --rounds 3

Each round trains one epoch of each recipe (``catdog``: listing 8.16 at 180x180 in
float32, the book's own code, whatever ``compute.precision`` says; and the candidate,
``catdog_fast`` by default, as conf/base configures it) after one warm-up epoch, each in
a fresh process, the order alternating between rounds, validation included. It
reports wall time and process CPU time (user + sys) of the measured epoch, and the
ratio candidate / book of each round: a run of the candidate that trains E epochs costs
about ratio x E book epochs. Only same-round ratios mean anything on a machine whose
speed changes from process to process. The report's frontier uses instead the
``book_epoch`` pipeline's estimate from a few steps, logged per processor flags.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from worker import run_worker  # benchmarks/worker.py, beside this script

from convnets.ml.hardware import compute_flags

ROOT = Path(__file__).resolve().parents[1]
BOOK = "catdog"
# The unit is the book's code as written: float32 (a bfloat16 speed-up is the candidate's).
BOOK_OVERRIDES = [f"{BOOK}.training.precision=float32"]


def worker(recipe: str, split_dir: Path, cache_dir: Path, overrides: list[str]) -> dict:
    """Two epochs of ``recipe`` in this process; the second is the measured one."""
    import keras  # noqa: PLC0415

    from convnets.config.keys import conf_parameters  # noqa: PLC0415
    from convnets.datasets import ImageArrayDataset, ImageFolderDataset  # noqa: PLC0415
    from convnets.ml.models import build_catdog_model  # noqa: PLC0415
    from convnets.ml.training import compile_model, precision_policy  # noqa: PLC0415
    from convnets.parameters import Architecture, CatsVsDogsData, ImageInput, Training, parse  # noqa: PLC0415
    from convnets.pipelines.image_classifier import nodes  # noqa: PLC0415

    if recipe == BOOK:
        overrides = [*overrides, *BOOK_OVERRIDES]
    params = conf_parameters(ROOT / "conf", overrides=overrides)
    data = parse(CatsVsDogsData, "cats_vs_dogs", params["cats_vs_dogs"])
    image_input = parse(ImageInput, f"{recipe}.input", params[recipe]["input"])
    architecture = parse(Architecture, f"{recipe}.architecture", params[recipe]["architecture"])
    training = parse(Training, f"{recipe}.training", params[recipe]["training"])
    cache = ImageArrayDataset(path=str(cache_dir))
    split = ImageFolderDataset(path=str(split_dir)).load()
    cache.save(nodes.decode_images(split, data, image_input))
    decoded = cache.load()
    train, validation, _ = nodes.make_datasets(decoded, image_input)
    # As the pipeline builds it: the recipe's precision (the book's is float32, above).
    with precision_policy(training.precision):
        model = build_catdog_model(image_input.image_size, architecture.root)
        policy = keras.config.dtype_policy().name
    compile_model(model, training, steps_per_epoch=int(train.cardinality()))
    timings = []
    for _ in range(2):
        wall, cpu = time.perf_counter(), sum(os.times()[:2])
        model.fit(train, validation_data=validation, epochs=1, verbose=0)
        timings.append((time.perf_counter() - wall, sum(os.times()[:2]) - cpu))
    return {
        "recipe": recipe,
        "first_epoch_wall_s": timings[0][0],
        "epoch_wall_s": timings[1][0],
        "epoch_cpu_s": timings[1][1],
        "train_images": len(decoded.subsets(image_input.image_size)["train"]),  # the split's
        "image_size": list(image_input.image_size),
        "dtype_policy": policy,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--split", type=Path, default=ROOT / "data/02_intermediate/cats_vs_dogs_small"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--params",
        default="",
        help="overrides for both recipes, as `kedro run --params` takes them, e.g. "
        "catdog_fast.architecture.convolution=separable",
    )
    parser.add_argument(
        "--candidate", default="catdog_fast", help="the recipe timed beside the book's"
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        overrides = [item for item in args.params.split(",") if item]
        print(json.dumps(worker(args.worker, args.split, args.cache, overrides)))
        return 0
    rounds = []
    with tempfile.TemporaryDirectory(prefix="convnets-book-epochs-") as tmp:
        for number in range(args.rounds):
            recipes = [BOOK, args.candidate]
            order = recipes if number % 2 == 0 else list(reversed(recipes))
            results = {}
            for recipe in order:
                command = [
                    sys.executable,
                    __file__,
                    "--worker",
                    recipe,
                    "--split",
                    str(args.split),
                    "--cache",
                    str(Path(tmp) / "decoded"),
                    "--params",
                    args.params,
                ]
                results[recipe] = run_worker(command)
            book, fast = results[BOOK], results[args.candidate]
            ratio = fast["epoch_wall_s"] / book["epoch_wall_s"]
            rounds.append(
                {
                    "order": order,
                    **results,
                    "fast_over_book_wall": ratio,
                    "fast_over_book_cpu": fast["epoch_cpu_s"] / book["epoch_cpu_s"],
                }
            )
            print(
                f"round {number + 1} ({', '.join(order)}): book epoch {book['epoch_wall_s']:.1f} s "
                f"wall, {book['epoch_cpu_s']:.1f} s CPU; {args.candidate} epoch "
                f"{fast['epoch_wall_s']:.1f} s wall, {fast['epoch_cpu_s']:.1f} s CPU; "
                f"{args.candidate}/book {ratio:.3f}",
                flush=True,
            )
    median = statistics.median(r["fast_over_book_wall"] for r in rounds)
    print(
        f"median {args.candidate}/book epoch ratio over {len(rounds)} rounds: {median:.3f} "
        f"(a {args.candidate} run of E epochs = {median:.3f} x E book-epoch equivalents)"
    )
    if args.json:
        result = {
            "candidate": args.candidate,
            "params": args.params,
            "processor_flags": compute_flags(),
            "rounds": rounds,
            "median_ratio": median,
        }
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
