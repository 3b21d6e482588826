"""The project's cats-vs-dogs training beside the book's recipe, measured in one run.

    python benchmarks/training_speed.py --archive ../shared/data/dogs-vs-cats/train.zip
    python benchmarks/training_speed.py --archive ... --variant jit:jit_compile=true \\
        --variant bf16:precision=mixed_bfloat16 --variant batch64:batch_size=64

Both sides train listing 8.16's model on the same split of the archive (the book's
make_subset: 1,000/500/1,000 images per class), written once by the project's
ingestion. ``book`` is a faithful copy of the book's code (listing 8.9's
``image_dataset_from_directory`` at 180x180, batch 32; listing 8.16's model, rmsprop).
``project`` is the project's own code (decode-once cache, ``make_datasets``,
``build_model``, ``compile_model``) with conf/base parameters; each ``--variant
name:key=value,...`` is the project with parameters changed (``env.NAME=value`` sets an
environment variable, e.g. ``env.TF_NUM_INTRAOP_THREADS=2``).

Every side runs in its own process, the order alternating between repeats so machine
noise hits all of them. Each process measures: input pipeline images/s over one full
pass of the training set without training (the second pass; the project's one-time
decode is reported apart); training images/s over ``--steps`` steps after warm-up;
one full epoch's wall time with validation (book and project only, unless
``--epoch-variants``; none with ``--no-epoch``); achieved GFLOP/s
of the training step (multiply-adds of the conv and dense layers x 2, x 3 for the
forward and both backward products) beside a float32 matmul peak measured in the
same run; and its peak resident memory. Medians over repeats and the ratios
project/book are printed as a table and written to ``--output`` (JSON).

``--overhead`` also times ``kedro run --pipelines=catdog`` in a temporary copy of the
project against a bare script doing the same on the same tiny settings (split from
the zip, decode, one epoch, evaluation): the difference is what Kedro and MLflow cost.

``--subset-sizes TRAIN VALIDATION TEST`` takes that many images per class from the same
start indices instead (the book's 1000 500 1000, and the tiny settings' 100 50 100), for
an archive smaller than Kaggle's: a smoke run, not a measurement.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
logger = logging.getLogger("benchmarks.training_speed")

BOOK_SPLIT = {"train": (0, 1000), "validation": (1000, 1500), "test": (1500, 2500)}
IMAGE_SIZE = (180, 180)


# ----------------------------------------------------------------- the book's code
def book_make_subset(archive: Path, target: Path, ranges: dict[str, tuple[int, int]]) -> None:
    """Listing 8.6's make_subset, reading from the zip instead of an extracted folder."""
    with zipfile.ZipFile(archive) as source:
        for subset_name, (start, end) in ranges.items():
            for category in ("cat", "dog"):
                folder = target / subset_name / category
                folder.mkdir(parents=True, exist_ok=True)
                for index in range(start, end):
                    name = f"{category}.{index}.jpg"
                    (folder / name).write_bytes(source.read(f"train/{name}"))


def book_datasets(split_dir: Path, batch_size: int = 32):
    """Listing 8.9."""
    from keras.utils import image_dataset_from_directory  # noqa: PLC0415

    return tuple(
        image_dataset_from_directory(
            split_dir / subset, image_size=IMAGE_SIZE, batch_size=batch_size, verbose=False
        )
        for subset in ("train", "validation", "test")
    )


def book_model():
    """Listings 8.14 and 8.16, as printed (kept apart from convnets.ml.models on purpose:
    this is the reference the project is measured against)."""
    import keras  # noqa: PLC0415
    from keras import layers  # noqa: PLC0415

    data_augmentation = keras.Sequential(
        [layers.RandomFlip("horizontal"), layers.RandomRotation(0.1), layers.RandomZoom(0.2)]
    )
    inputs = keras.Input(shape=(180, 180, 3))
    x = data_augmentation(inputs)
    x = layers.Rescaling(1.0 / 255)(x)
    for filters in (32, 64, 128, 256):
        x = layers.Conv2D(filters=filters, kernel_size=3, activation="relu")(x)
        x = layers.MaxPooling2D(pool_size=2)(x)
    x = layers.Conv2D(filters=256, kernel_size=3, activation="relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(loss="binary_crossentropy", optimizer="rmsprop", metrics=["accuracy"])
    return model


# ----------------------------------------------------------------- measurements
def training_flops_per_image(model) -> float:
    """2 x multiply-adds of every Conv2D and Dense layer, x 3 for a training step."""
    import keras  # noqa: PLC0415

    forward = 0.0
    for layer in _layers(model):
        if isinstance(layer, keras.layers.Conv2D):
            _, height, width, filters = layer.output.shape
            kernel = layer.kernel.shape  # (kh, kw, in, out)
            forward += 2.0 * height * width * filters * kernel[0] * kernel[1] * kernel[2]
        elif isinstance(layer, keras.layers.Dense):
            forward += 2.0 * layer.kernel.shape[0] * layer.kernel.shape[1]
    return 3.0 * forward


def _layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers"):
            yield from _layers(layer)
        else:
            yield layer


def matmul_peak_gflops(size: int = 2048, repeats: int = 10) -> float:
    """float32 matmul throughput on this CPU, best of ``repeats``."""
    import tensorflow as tf  # noqa: PLC0415

    a = tf.random.uniform((size, size))
    b = tf.random.uniform((size, size))
    tf.linalg.matmul(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        tf.linalg.matmul(a, b).numpy()
        best = min(best, time.perf_counter() - started)
    return 2.0 * size**3 / best / 1e9


def _input_pass(dataset) -> float:
    """Images per second over one full pass of ``dataset``."""
    count = 0
    started = time.perf_counter()
    for images, _ in dataset:
        count += int(images.shape[0])
    return count / (time.perf_counter() - started)


def _train_rate(model, dataset, batch_size: int, warmup: int, steps: int) -> float:
    """Training images per second over ``steps`` steps, after ``warmup`` steps."""
    repeated = dataset.repeat()
    model.fit(repeated, steps_per_epoch=warmup, epochs=1, verbose=0)
    started = time.perf_counter()
    model.fit(repeated, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch_size / (time.perf_counter() - started)


def _catdog_params() -> dict[str, Any]:
    """conf/base's parameters, as ``kedro run`` would start from."""
    from convnets.config.keys import conf_parameters  # noqa: PLC0415

    return conf_parameters(ROOT / "conf")


def _project_setup(split_dir: Path, work: Path, options: dict[str, Any]):
    """The project's own input pipeline and model with conf/base parameters + options."""
    import keras  # noqa: PLC0415

    from convnets.datasets import ImageArrayDataset, ImageFolderDataset  # noqa: PLC0415
    from convnets.ml.models import build_catdog_model  # noqa: PLC0415
    from convnets.ml.training import compile_model, precision_policy  # noqa: PLC0415
    from convnets.parameters import (  # noqa: PLC0415
        Architecture,
        CatsVsDogsData,
        ImageInput,
        Training,
        parse,
    )
    from convnets.pipelines.image_classifier import nodes  # noqa: PLC0415

    params = _catdog_params()
    image_input, training = dict(params["catdog"]["input"]), dict(params["catdog"]["training"])
    for key, value in options.items():
        (image_input if key in image_input else training)[key] = value
    data = parse(CatsVsDogsData, "cats_vs_dogs", params["cats_vs_dogs"])
    image_input = parse(ImageInput, "catdog.input", image_input)
    training = parse(Training, "catdog.training", training)
    architecture = parse(Architecture, "catdog.architecture", params["catdog"]["architecture"])
    cache = ImageArrayDataset(path=str(work / "decoded"))
    started = time.perf_counter()
    split = ImageFolderDataset(path=str(split_dir)).load()
    cache.save(nodes.decode_images(split, data, image_input))
    decode_seconds = time.perf_counter() - started
    train, validation, _ = nodes.make_datasets(cache.load(), image_input)
    keras.utils.set_random_seed(training.seed)
    with precision_policy(training.precision):
        model = build_catdog_model(image_input.image_size, architecture.root)
    # As the pipeline compiles it: a learning-rate schedule needs the steps of one epoch.
    compile_model(model, training, steps_per_epoch=int(train.cardinality()))
    return train, validation, model, image_input.batch_size, decode_seconds


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """One side of the comparison, in its own process; returns its measurements."""
    split_dir = Path(args.split_dir)
    options = json.loads(args.options)
    result: dict[str, Any] = {"side": args.worker}
    if args.worker == "book":
        train, validation, _ = book_datasets(split_dir)
        model, batch_size = book_model(), 32
    else:
        work = Path(tempfile.mkdtemp(dir=args.workdir, prefix="project-"))
        train, validation, model, batch_size, decode = _project_setup(split_dir, work, options)
        result["decode_once_s"] = decode
    _input_pass(train)  # warm: file listing, page cache, tracing
    result["input_images_per_s"] = _input_pass(train)
    result["train_images_per_s"] = _train_rate(model, train, batch_size, args.warmup, args.steps)
    result["train_gflops_per_s"] = (
        training_flops_per_image(model) * result["train_images_per_s"] / 1e9
    )
    if args.epoch:
        started, cpu = time.perf_counter(), sum(os.times()[:2])
        model.fit(train, validation_data=validation, epochs=1, verbose=0)
        result["epoch_s"] = time.perf_counter() - started
        result["epoch_cpu_s"] = sum(os.times()[:2]) - cpu  # user + system, this process
    result["compute_dtype"] = model.layers[-2].compute_dtype
    result["matmul_peak_gflops_per_s"] = matmul_peak_gflops()
    from convnets.ml.training import peak_rss_mb  # noqa: PLC0415

    result["peak_rss_mb"] = peak_rss_mb()
    return result


# ----------------------------------------------------------------- Kedro + MLflow overhead
TINY = {"train": (0, 100), "validation": (1000, 1050), "test": (1500, 1600)}


def _tiny_split(sizes: list[int] | None) -> dict[str, tuple[int, int]]:
    """TINY, or ``sizes`` images per class from TINY's start indices."""
    if not sizes:
        return TINY
    return {
        name: (start, start + size)
        for (name, (start, _)), size in zip(TINY.items(), sizes, strict=True)
    }


def bare_tiny_run(archive: Path, work: Path, sizes: list[int] | None = None) -> None:
    """The book's code end to end on the tiny settings: what a Kedro run is measured against."""
    split_dir = work / "bare-split"
    shutil.rmtree(split_dir, ignore_errors=True)
    book_make_subset(archive, split_dir, _tiny_split(sizes))
    train, validation, test = book_datasets(split_dir)
    model = book_model()
    model.fit(train, validation_data=validation, epochs=1, verbose=0)
    model.evaluate(test, verbose=0)


def _tiny_project(archive: Path, work: Path, sizes: list[int] | None = None) -> Path:
    project = work / "kedro-project"
    if project.exists():
        return project
    project.mkdir()
    shutil.copy(ROOT / "pyproject.toml", project)
    (project / "src").mkdir()
    shutil.copytree(ROOT / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
    (project / "conf" / "local").mkdir()
    raw = project / "data" / "01_raw" / "cats_vs_dogs"
    raw.mkdir(parents=True)
    (raw / "train.zip").symlink_to(archive.resolve())
    tiny = {
        "cats_vs_dogs": {
            "subsets": {
                name: {"start": s, "size": e - s} for name, (s, e) in _tiny_split(sizes).items()
            }
        },
        "catdog": {"training": {"epochs": 1}},
    }
    (project / "conf" / "local" / "parameters.yml").write_text(yaml.safe_dump(tiny))
    return project


def overhead(
    archive: Path, work: Path, repeats: int, sizes: list[int] | None = None
) -> dict[str, Any]:
    """Wall time of ``kedro run --pipelines=catdog`` and of the bare script, alternating."""
    project = _tiny_project(archive, work, sizes)
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    kedro = Path(sys.executable).with_name("kedro")
    commands = {
        "kedro_run_s": ([str(kedro), "run", "--pipelines=catdog"], project),
        "bare_script_s": (
            [sys.executable, __file__, "--bare-tiny", "--archive", str(archive.resolve())]
            + (["--subset-sizes", *map(str, sizes)] if sizes else []),
            work,
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for repeat in range(repeats):
        order = list(commands) if repeat % 2 == 0 else list(reversed(commands))
        for name in order:
            command, cwd = commands[name]
            started = time.perf_counter()
            done = subprocess.run(
                command, cwd=cwd, env=env, capture_output=True, text=True, check=False
            )
            if done.returncode:
                raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
            times[name].append(time.perf_counter() - started)
            logger.info("%s: %.1f s", name, times[name][-1])
    result = {name: statistics.median(values) for name, values in times.items()}
    result["overhead_s"] = result["kedro_run_s"] - result["bare_script_s"]
    result["runs"] = times
    return result


# ----------------------------------------------------------------- orchestration
def _parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    name, _, assignments = text.partition(":")
    if not name or not assignments:
        raise argparse.ArgumentTypeError(
            f"--variant wants name:key=value[,key=value], got {text!r}"
        )
    options = {}
    for assignment in assignments.split(","):
        key, _, value = assignment.partition("=")
        options[key] = yaml.safe_load(value)
    return name, options


def _prepare_split(archive: Path, work: Path, sizes: list[int] | None = None) -> Path:
    """The book's split by the project's ingestion (the folder is rewritten only if changed);
    ``sizes``: images per class of train, validation and test instead of conf/base's."""
    from convnets.datasets import ImageArchiveDataset, ImageFolderDataset  # noqa: PLC0415
    from convnets.parameters import SUBSET_NAMES, CatsVsDogsData, parse  # noqa: PLC0415
    from convnets.pipelines.cats_vs_dogs_data.nodes import make_subset  # noqa: PLC0415

    split = _catdog_params()["cats_vs_dogs"]
    for name, size in zip(SUBSET_NAMES, sizes, strict=True) if sizes else ():
        split["subsets"][name]["size"] = size
    data = parse(CatsVsDogsData, "cats_vs_dogs", split)
    split_dir = work / "split"
    _, files, _, _, _ = make_subset(ImageArchiveDataset(filepath=str(archive)).load(), data, {})
    ImageFolderDataset(path=str(split_dir)).save(files)
    return split_dir


def _run_side(name: str, options: dict[str, Any], split_dir: Path, work: Path, args) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.update({k[4:]: str(v) for k, v in options.items() if k.startswith("env.")})
    options = {k: v for k, v in options.items() if not k.startswith("env.")}
    command = [
        sys.executable,
        __file__,
        "--worker",
        "book" if name == "book" else "project",
        "--split-dir",
        str(split_dir),
        "--workdir",
        str(work),
        "--options",
        json.dumps(options),
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
    ] + (
        []
        if args.epoch and (name in ("book", "project") or args.epoch_variants)
        else ["--no-epoch"]
    )
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"side {name} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    logger.info(
        "%s: %s", name, {k: round(v, 2) for k, v in result.items() if isinstance(v, int | float)}
    )
    return result


METRICS = [
    ("input_images_per_s", "input pipeline, images/s", "higher"),
    ("train_images_per_s", "training, images/s", "higher"),
    ("epoch_s", "one epoch with validation, s", "lower"),
    ("epoch_cpu_s", "one epoch with validation, process CPU s", "lower"),
    ("train_gflops_per_s", "training step, GFLOP/s", "higher"),
    ("matmul_peak_gflops_per_s", "matmul peak, GFLOP/s", "higher"),
    ("peak_rss_mb", "peak resident memory, MB", "lower"),
    ("decode_once_s", "one-time decode of the split, s", "lower"),
]


def table(summary: dict[str, dict[str, float]]) -> str:
    sides = list(summary)
    lines = [
        "| measure | "
        + " | ".join(sides)
        + " | "
        + " | ".join(f"{s}/book" for s in sides[1:])
        + " |",
        "|---" * (1 + 2 * len(sides) - 1) + "|",
    ]
    for key, label, _ in METRICS:
        values = [summary[side].get(key) for side in sides]
        if all(value is None for value in values):
            continue
        cells = ["" if v is None else f"{v:.1f}" for v in values]
        book = summary["book"].get(key)
        ratios = ["" if (v is None or not book) else f"{v / book:.2f}x" for v in values[1:]]
        lines.append(f"| {label} | " + " | ".join(cells + ratios) + " |")
    return "\n".join(lines)


def compare(args: argparse.Namespace) -> dict[str, Any]:
    """Book, project and variants, each in its own process, alternating; medians, table."""
    split_dir = _prepare_split(args.archive, args.workdir, args.subset_sizes)
    sides = [("book", {}), ("project", {}), *args.variant]
    runs: dict[str, list[dict]] = {name: [] for name, _ in sides}
    for repeat in range(args.repeats):
        ordered = sides if repeat % 2 == 0 else list(reversed(sides))
        for name, options in ordered:
            runs[name].append(_run_side(name, options, split_dir, args.workdir, args))
    summary = {
        name: {
            key: statistics.median(run[key] for run in results)
            for key, value in results[0].items()
            if isinstance(value, int | float)
        }
        for name, results in runs.items()
    }
    # Same-round ratios: the only comparison that holds on a machine whose speed changes.
    speedups = {
        f"{key}_book_over_{name}": [
            book[key] / side[key] for book, side in zip(runs["book"], results, strict=True)
        ]
        for name, results in runs.items()
        if name != "book"
        for key in ("epoch_s", "epoch_cpu_s")
        if key in results[0]
    }
    return {
        "variants": dict(sides),
        "runs": runs,
        "median": summary,
        "speedups_per_round": speedups,
        "table": table(summary),
    }


def resolve_precision(precision: str) -> tuple[str, str]:
    from convnets.ml.hardware import resolve_precision as resolve  # noqa: PLC0415

    return resolve(precision, gpus=[])  # what the CPU sides compute in


def cpu_flags() -> frozenset[str]:
    from convnets.ml.hardware import cpu_flags as flags  # noqa: PLC0415

    return flags()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--archive", type=Path, default=ROOT.parent / "shared/data/dogs-vs-cats/train.zip"
    )
    parser.add_argument("--repeats", type=int, default=2, help="alternating rounds (default 2)")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    parser.add_argument(
        "--no-epoch", dest="epoch", action="store_false", help="skip the full epoch"
    )
    parser.add_argument("--variant", action="append", type=_parse_variant, default=[])
    parser.add_argument(
        "--epoch-variants", action="store_true", help="time a full epoch for variants too"
    )
    parser.add_argument("--overhead", action="store_true", help="also time kedro run vs bare")
    parser.add_argument("--overhead-only", action="store_true", help="only the overhead check")
    parser.add_argument("--workdir", type=Path, help="keep the split here (default: temporary)")
    parser.add_argument(
        "--subset-sizes",
        type=int,
        nargs=3,
        metavar=("TRAIN", "VALIDATION", "TEST"),
        help="images per class of each subset, from the same start indices (default: "
        "the book's 1000 500 1000; --overhead's tiny run: 100 50 100)",
    )
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks/results/training_speed.json"
    )
    # Internal: one side in a child process, or the bare tiny run.
    parser.add_argument("--worker", choices=["book", "project"], help=argparse.SUPPRESS)
    parser.add_argument("--split-dir", help=argparse.SUPPRESS)
    parser.add_argument("--options", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--bare-tiny", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))  # noqa: T201 - the parent reads this line
        return
    if args.bare_tiny:
        bare_tiny_run(args.archive, Path.cwd(), args.subset_sizes)
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if not args.archive.is_file():
        parser.error(f"{args.archive} not found: pass --archive path/to/dogs-vs-cats/train.zip")
    if args.repeats < 1 or args.steps < 1 or args.warmup < 1:
        parser.error("--repeats, --steps and --warmup must be at least 1")
    temporary = None
    if args.workdir is None:
        temporary = tempfile.TemporaryDirectory(prefix="convnets-speed-")
        args.workdir = Path(temporary.name)
    args.workdir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "machine": {
            "processor": _cpu_name(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "flags": sorted(f for f in cpu_flags() if f.startswith(("avx", "amx", "fma"))),
            "precision_auto": dict(
                zip(("policy", "reason"), resolve_precision("auto"), strict=True)
            ),
        },
        "settings": {
            "repeats": args.repeats,
            "steps": args.steps,
            "warmup": args.warmup,
            "subset_sizes": args.subset_sizes,
        },
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
    }
    try:
        if not args.overhead_only:
            report.update(compare(args))
            print(report["table"])  # noqa: T201 - a benchmark's output
        if args.overhead or args.overhead_only:
            report["overhead"] = overhead(
                args.archive, args.workdir, args.repeats, args.subset_sizes
            )
            print(  # noqa: T201
                "Kedro + MLflow overhead: kedro run {kedro_run_s:.1f} s, bare script "
                "{bare_script_s:.1f} s, difference {overhead_s:.1f} s".format(**report["overhead"])
            )
    finally:
        if temporary is not None:
            temporary.cleanup()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n")
    logger.info("Wrote %s", args.output)


def _cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


if __name__ == "__main__":
    main()
