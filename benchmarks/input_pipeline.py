"""Input images/s of the catdog training batches: the portable reader against ``os.pread``.

    python benchmarks/input_pipeline.py --split data/02_intermediate/cats_vs_dogs_small

``ImageArrayFile.read`` gathers rows through a short-lived ``numpy.memmap`` (works on
every platform). Its predecessor read each row with ``os.pread`` (Unix only); that
reader is kept here, as the reference. Both feed the project's own ``tf.data``
pipeline (``image_classifier.nodes._batches``) over the decoded training subset.
Each round runs both readers, each in a fresh process, the order alternating; the
figure that counts is the median over rounds of the same-round ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from worker import run_worker  # benchmarks/worker.py, beside this script

ROOT = Path(__file__).resolve().parents[1]


def _pread_reader():
    from convnets.datasets import ImageArrayFile  # noqa: PLC0415

    class PreadImageArrayFile(ImageArrayFile):
        """The previous reader: one ``os.pread`` per row."""

        def read(self, indices: Sequence[int]) -> np.ndarray:
            batch = np.empty((len(indices), *self.shape), dtype=np.uint8)
            flat = batch.reshape(len(indices), -1)
            row_bytes = int(np.prod(self.shape))
            descriptor = os.open(self.path, os.O_RDONLY)
            try:
                for row, index in enumerate(indices):
                    data = os.pread(descriptor, row_bytes, self._offset + int(index) * row_bytes)
                    flat[row] = np.frombuffer(data, dtype=np.uint8)
            finally:
                os.close(descriptor)
            return batch

    return PreadImageArrayFile


def prepare(split_dir: Path, cache_dir: Path, image_size: tuple[int, int]) -> None:
    """Decode the split once at ``image_size`` with the project's own node and dataset."""
    from convnets.config.keys import conf_parameters  # noqa: PLC0415
    from convnets.datasets import ImageArrayDataset, ImageFolderDataset  # noqa: PLC0415
    from convnets.parameters import CatsVsDogsData, ImageInput, parse  # noqa: PLC0415
    from convnets.pipelines.image_classifier.nodes import decode_images  # noqa: PLC0415

    params = conf_parameters(ROOT / "conf")
    data = parse(CatsVsDogsData, "cats_vs_dogs", params["cats_vs_dogs"])
    image_input = parse(
        ImageInput, "catdog.input", {**params["catdog"]["input"], "image_size": list(image_size)}
    )
    split = ImageFolderDataset(path=str(split_dir)).load()
    ImageArrayDataset(path=str(cache_dir)).save(decode_images(split, data, image_input))


def worker(reader: str, cache_dir: Path, image_size: tuple[int, int], epochs: int) -> dict:
    """Images/s of ``epochs`` passes over the shuffled training batches, in this process."""
    from convnets.datasets import ImageArrayDataset  # noqa: PLC0415
    from convnets.pipelines.image_classifier.nodes import _batches  # noqa: PLC0415

    train = ImageArrayDataset(path=str(cache_dir)).load().subsets(image_size)["train"]
    if reader == "pread":
        train = _pread_reader()(train.path, train.labels)
    dataset = _batches(train, 32, seed=0)
    for _ in dataset:  # warm: tracing, page cache
        pass
    wall, cpu = time.perf_counter(), sum(os.times()[:2])
    images = 0
    for _ in range(epochs):
        for batch, _ in dataset:
            images += int(batch.shape[0])
    wall, cpu = time.perf_counter() - wall, sum(os.times()[:2]) - cpu
    return {
        "reader": reader,
        "images": images,
        "wall_s": wall,
        "cpu_s": cpu,
        "images_per_s": images / wall,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--split", type=Path, default=ROOT / "data/02_intermediate/cats_vs_dogs_small"
    )
    parser.add_argument("--image-size", type=int, nargs=2, default=(180, 180))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--worker", choices=["memmap", "pread"], help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = tuple(args.image_size)
    if args.worker:
        print(json.dumps(worker(args.worker, args.cache, size, args.epochs)))
        return 0
    with tempfile.TemporaryDirectory(prefix="convnets-input-") as tmp:
        cache = Path(tmp) / "decoded"
        prepare(args.split, cache, size)
        rounds = []
        for number in range(args.rounds):
            order = ["memmap", "pread"] if number % 2 == 0 else ["pread", "memmap"]
            results = {}
            for reader in order:
                command = [
                    sys.executable,
                    __file__,
                    "--worker",
                    reader,
                    "--cache",
                    str(cache),
                    "--image-size",
                    *map(str, size),
                    "--epochs",
                    str(args.epochs),
                ]
                results[reader] = run_worker(command)
            ratio = results["memmap"]["images_per_s"] / results["pread"]["images_per_s"]
            rounds.append({"order": order, **results, "ratio_memmap_over_pread": ratio})
            print(
                f"round {number + 1}: memmap {results['memmap']['images_per_s']:.0f} img/s "
                f"(cpu {results['memmap']['cpu_s']:.1f} s), pread "
                f"{results['pread']['images_per_s']:.0f} img/s "
                f"(cpu {results['pread']['cpu_s']:.1f} s), ratio {ratio:.2f}",
                flush=True,
            )
    median = statistics.median(r["ratio_memmap_over_pread"] for r in rounds)
    print(f"median ratio memmap/pread over {len(rounds)} rounds: {median:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"rounds": rounds, "median_ratio": median}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
