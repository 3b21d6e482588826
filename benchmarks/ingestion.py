"""Measure the cats-vs-dogs split on a real archive, and check it on a damaged copy.

    python benchmarks/ingestion.py --archive ../shared/data/dogs-vs-cats/train.zip
    python benchmarks/ingestion.py --archive ../shared/data/dogs-vs-cats/train.zip --damage

Runs the project's ingestion (ImageArchiveDataset -> make_subset -> ImageFolderDataset)
with the parameters of conf/base/parameters_cats_vs_dogs_data.yml in a temporary folder,
twice (the second run must write nothing), and prints wall time and peak memory.
With --damage it first writes a damaged copy of the archive (truncated, empty,
non-JPEG, grayscale, CMYK and PNG images, zip-slip, absolute and symlink entries)
and checks that the split is still complete, the report lists the damage, and no
file appears outside the temporary project's data/ folder.

``--subset-sizes TRAIN VALIDATION TEST`` (images per class, from the same start
indices) replaces conf/base's 1000 500 1000, for an archive smaller than Kaggle's.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import yaml
from PIL import Image

from convnets.datasets import ImageArchiveDataset, ImageFolderDataset, JsonStateDataset
from convnets.ml.training import peak_rss_mb
from convnets.parameters import SUBSET_NAMES, CatsVsDogsData, parse
from convnets.pipelines.cats_vs_dogs_data.nodes import make_subset

ROOT = Path(__file__).resolve().parents[1]
logger = logging.getLogger("benchmarks.ingestion")


def _reencode(content: bytes, mode: str, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(content)).convert(mode).save(buffer, format=fmt)
    return buffer.getvalue()


def damage(source: Path, target: Path) -> dict[str, str]:
    """Copy ``source`` with damaged members; returns {member: what was done}."""
    changes = {
        "train/cat.3.jpg": "truncated",
        "train/cat.1200.jpg": "truncated",
        "train/dog.7.jpg": "empty",
        "train/dog.1600.jpg": "text",
        "train/cat.10.jpg": "png",
        "train/dog.5.jpg": "cmyk",
        "train/dog.11.jpg": "grayscale",
    }
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as damaged:
        for info in original.infolist():
            content = original.read(info)
            change = changes.get(info.filename)
            if change == "truncated":
                content = content[: len(content) // 3]
            elif change == "empty":
                content = b""
            elif change == "text":
                content = b"<html><body>404 Not Found</body></html>"
            elif change == "png":
                content = _reencode(content, "RGB", "PNG")
            elif change == "cmyk":
                content = _reencode(content, "CMYK", "JPEG")
            elif change == "grayscale":
                content = _reencode(content, "L", "JPEG")
            damaged.writestr(info, content)
        damaged.writestr("../../outside-the-project.jpg", b"zip slip")
        damaged.writestr("train/../../../cat.2.jpg", b"zip slip")
        damaged.writestr("/tmp/absolute-cat.1.jpg", b"absolute")
        link = zipfile.ZipInfo("train/dog.12.jpg.lnk")
        link.external_attr = 0o120777 << 16
        damaged.writestr(link, "/etc/passwd")
    return changes


def run_split(archive_path: Path, data_dir: Path, split: CatsVsDogsData) -> dict:
    started = time.perf_counter()
    archive = ImageArchiveDataset(filepath=str(archive_path)).load()
    checks = JsonStateDataset(filepath=str(data_dir / "02_intermediate" / "checks.json"))
    manifest, files, report, metrics, updated = make_subset(archive, split, checks.load())
    ImageFolderDataset(path=str(data_dir / "02_intermediate" / "cats_vs_dogs_small")).save(files)
    checks.save(updated)
    (data_dir / "08_reporting").mkdir(parents=True, exist_ok=True)
    report.to_csv(data_dir / "08_reporting" / "cats_vs_dogs_image_report.csv", index=False)
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "images": len(manifest),
        "report": report,
        "metrics": {key: int(value["value"]) for key, value in metrics.items()},
    }


def _all_files(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*") if path.is_file() or path.is_symlink()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, required=True)
    parser.add_argument("--damage", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--subset-sizes",
        type=int,
        nargs=3,
        metavar=("TRAIN", "VALIDATION", "TEST"),
        help="images per class of each subset (default: conf/base's, 1000 500 1000)",
    )
    args = parser.parse_args()
    if args.json:
        args.json = args.json.resolve()  # the run below changes the working directory
    logging.basicConfig(level=logging.WARNING)
    conf = yaml.safe_load((ROOT / "conf/base/parameters_cats_vs_dogs_data.yml").read_text())
    sizes = args.subset_sizes
    for name, size in zip(SUBSET_NAMES, sizes, strict=True) if sizes else ():
        conf["cats_vs_dogs"]["subsets"][name]["size"] = size
    split = parse(CatsVsDogsData, "cats_vs_dogs", conf["cats_vs_dogs"])
    expected_images = len(split.classes) * sum(
        getattr(split.subsets, name).size for name in SUBSET_NAMES
    )

    with tempfile.TemporaryDirectory(prefix="convnets-ingestion-") as tmp:
        sandbox = Path(tmp)
        project = sandbox / "project"
        data_dir = project / "data"
        archive = args.archive.resolve()
        changes = {}
        if args.damage:
            archive = sandbox / "damaged" / "train.zip"
            archive.parent.mkdir()
            changes = damage(args.archive, archive)
        before = _all_files(sandbox)
        os.chdir(sandbox)  # a zip-slip entry, if ever written, would land here or above
        split_dir = data_dir / "02_intermediate" / "cats_vs_dogs_small"
        first = run_split(archive, data_dir, split)
        written = split_dir.joinpath(".content.sha256").stat().st_mtime_ns
        second = run_split(archive, data_dir, split)
        new_files = _all_files(sandbox) - before
        outside = sorted(str(p) for p in new_files if data_dir not in p.parents)
        results = {
            "archive": str(args.archive),
            "damaged": args.damage,
            "first_run_seconds": first["seconds"],
            "second_run_seconds": second["seconds"],
            "second_run_wrote_nothing": split_dir.joinpath(".content.sha256").stat().st_mtime_ns
            == written,
            "images_in_split": first["images"],
            "peak_rss_mib": round(peak_rss_mb()),
            "report_counts": first["metrics"],
            "files_written_outside_data": outside,
        }
        print(json.dumps(results, indent=2))
        if args.damage:
            print(first["report"].to_string(index=False))
            reported = set(first["report"]["source"])
            missing = [
                m
                for m, c in changes.items()
                if c in ("truncated", "empty", "text") and m not in reported
            ]
            ok = not outside and not missing and first["images"] == expected_images
            print(
                "damaged copy:",
                "clean split, damage reported, nothing outside data/"
                if ok
                else f"FAILED (outside={outside}, unreported={missing}, "
                f"images={first['images']} of {expected_images})",
            )
            if not ok:
                return 1
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
