"""Read-only access to the Kaggle dogs-vs-cats training images, wherever the user put them."""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io import AbstractDataset, DatasetError

logger = logging.getLogger(__name__)

# Kaggle names its training images ``train/cat.0.jpg`` ... ``train/dog.12499.jpg``.
IMAGE_NAME = re.compile(r"^(?P<label>[a-z]+)\.(?P<index>\d+)\.jpe?g$", re.IGNORECASE)
INNER_ARCHIVE = "train.zip"
OUTER_ARCHIVE = "dogs-vs-cats.zip"
HOW_TO_GET = (
    "Download the 'Dogs vs. Cats' data from Kaggle "
    "(kaggle competitions download -c dogs-vs-cats) and put train.zip (or the whole "
    "dogs-vs-cats.zip, or the extracted train/ folder) at {where}."
)


@dataclass
class ImageArchive:
    """Labelled images in a zip file or a folder, indexed as ``label -> index -> member``."""

    source: Path
    images: dict[str, dict[int, str]]
    _zip: zipfile.ZipFile | None = field(default=None, repr=False)

    def read(self, member: str) -> bytes:
        """The raw bytes of one image, by the member name found in ``images``."""
        if self._zip is not None:
            return self._zip.read(member)
        return (self.source / member).read_bytes()

    def count(self, label: str) -> int:
        """How many images carry ``label``."""
        return len(self.images.get(label, {}))


def _index_names(names: list[str], source: Path) -> dict[str, dict[int, str]]:
    images: dict[str, dict[int, str]] = {}
    for name in names:
        match = IMAGE_NAME.match(PurePosixPath(name).name)
        if not match:
            continue
        label, index = match["label"].lower(), int(match["index"])
        by_index = images.setdefault(label, {})
        if index in by_index:
            raise DatasetError(
                f"{source} holds two images named {label}.{index}: {by_index[index]} and {name}. "
                "Keep one Kaggle train/ folder in it."
            )
        by_index[index] = name
    if not images:
        sample = ", ".join(names[:5]) or "nothing"
        raise DatasetError(
            f"{source} has no images named like Kaggle's train/cat.0.jpg or train/dog.0.jpg "
            f"(found: {sample}). Point the catalog entry at Kaggle's train.zip, the outer "
            "dogs-vs-cats.zip, or the extracted train/ folder."
        )
    return images


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DatasetError(
            f"{path} is not a readable zip archive ({exc}). Download it again."
        ) from exc


def _extract_inner_archive(outer: Path, target: Path) -> None:
    """Copy ``train.zip`` out of Kaggle's competition zip, once, atomically."""
    with _open_zip(outer) as archive:
        inner = [n for n in archive.namelist() if PurePosixPath(n).name == INNER_ARCHIVE]
        if not inner:
            raise DatasetError(
                f"{outer} does not contain {INNER_ARCHIVE}; it is not Kaggle's dogs-vs-cats.zip."
            )
        logger.info("Extracting %s from %s to %s (once)", inner[0], outer, target)
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, suffix=".part") as tmp:
            with archive.open(inner[0]) as member:
                shutil.copyfileobj(member, tmp, 1 << 20)
        os.replace(tmp.name, target)


def open_image_archive(location: Path) -> ImageArchive:
    """Open Kaggle's train.zip, its outer dogs-vs-cats.zip, or an extracted folder."""
    candidates = [location]
    if location.is_dir():
        candidates = [
            location / INNER_ARCHIVE,
            location / OUTER_ARCHIVE,
            location / "train",
            location,
        ]
    for candidate in candidates:
        if candidate.is_file() and candidate.name == OUTER_ARCHIVE:
            inner = candidate.with_name(INNER_ARCHIVE)
            if not inner.exists():
                _extract_inner_archive(candidate, inner)
            candidate = inner  # noqa: PLW2901
        if candidate.is_file():
            archive = _open_zip(candidate)
            names = [info.filename for info in archive.infolist() if not info.is_dir()]
            images = _index_names(names, candidate)
            return ImageArchive(candidate, images, archive)
        if candidate.is_dir():
            names = sorted(
                str(path.relative_to(candidate)) for path in candidate.rglob("*") if path.is_file()
            )
            if not any(IMAGE_NAME.match(Path(name).name) for name in names):
                continue
            images = _index_names(names, candidate)
            return ImageArchive(candidate, images)
    raise DatasetError(
        f"No dogs-vs-cats images at {location}. " + HOW_TO_GET.format(where=location)
    )


class ImageArchiveDataset(AbstractDataset[None, ImageArchive]):
    """The raw dogs-vs-cats images, as a zip or folder, opened lazily.

    ``filepath`` may be Kaggle's ``train.zip``, the competition's ``dogs-vs-cats.zip``
    (its inner ``train.zip`` is extracted beside it once), an extracted ``train/``
    folder, or a folder holding any of these. Only an index of member names is read
    on load; image bytes are read on demand. kedro-datasets has no dataset for a zip
    of labelled images, hence this class.
    """

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = Path(filepath)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}

    def _exists(self) -> bool:
        return self._filepath.exists()

    def save(self, data: None) -> None:
        raise DatasetError(f"{type(self).__name__} is read-only: raw data is never overwritten")

    def load(self) -> ImageArchive:
        if not self._filepath.exists():
            raise DatasetError(
                f"The dogs-vs-cats archive is missing: {self._filepath} does not exist. "
                + HOW_TO_GET.format(where=self._filepath)
            )
        return open_image_archive(self._filepath)
