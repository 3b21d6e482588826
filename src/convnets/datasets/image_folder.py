"""A folder of image files written all at once, skipped when its content is unchanged.

Its save takes ``LazyFile`` values: images checked by an earlier run are read from the
archive again only when the folder must be rewritten, and that cost is logged here.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from convnets.project_lock import STAGING_MARK, make_staging_dir, mark_as_staging

logger = logging.getLogger(__name__)

FINGERPRINT_FILE = ".content.sha256"


@dataclass(frozen=True)
class LazyFile:
    """File content identified by ``key`` and produced by ``load`` only when written."""

    key: str
    load: Callable[[], bytes]


def _key(content: bytes | LazyFile) -> str:
    if isinstance(content, LazyFile):
        return content.key
    return "sha256:" + hashlib.sha256(content).hexdigest()


def content_fingerprint(files: Mapping[str, bytes | LazyFile]) -> str:
    """sha256 over every relative path and its content's key (a sha256 for bytes)."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}\0{_key(files[name])}\n".encode())
    return digest.hexdigest()


def folder_fingerprint(path: Path) -> str:
    """The content fingerprint an ``ImageFolderDataset`` recorded when it wrote ``path``."""
    return (path / FINGERPRINT_FILE).read_text().strip()


@dataclass(frozen=True)
class ImageFolder:
    """A written folder of ``<subset>/<label>/<file>`` images, as nodes see it."""

    path: Path
    fingerprint: str  # changes whenever any file name or content changes

    def files(self, subset: str, label: str) -> list[Path]:
        """The files of one subset and label, in name order."""
        folder = self.path / subset / label
        if not folder.is_dir():
            return []
        return sorted(path for path in folder.iterdir() if path.is_file())


def replace_folder(path: Path, write: Callable[[Path], None]) -> None:
    """Let ``write`` fill a temporary sibling of ``path``, then swap it into place.

    A crash or an exception leaves the old folder (or none) and no partial one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # Marked folders with names project_lock.remove_stale_staging recognises, should the
    # process be killed: the staging folder, and the old folder once renamed aside.
    made_by = f"convnets replace_folder for {path.name}"
    staging = make_staging_dir(path.parent, f".{path.name}-staging-", made_by)
    try:
        write(staging)
        retired = None
        if path.exists():
            retired = path.with_name(f".{path.name}-retired-{os.getpid()}")
            mark_as_staging(path, made_by)
            try:
                os.replace(path, retired)
            except BaseException:
                (path / STAGING_MARK).unlink(missing_ok=True)
                raise
        os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    # Unmarked only once in place: a kill before this leaves a marker in a folder whose
    # name is not a staging name, which is never removed.
    (path / STAGING_MARK).unlink(missing_ok=True)
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


class ImageFolderDataset(AbstractDataset[Mapping[str, "bytes | LazyFile"], ImageFolder]):
    """Saves ``{relative path: bytes or LazyFile}`` as a folder tree; loads an ``ImageFolder``.

    Saving writes into a temporary sibling folder and renames it into place, so a
    crash never leaves a half-written split, and stale files from an earlier split
    disappear. When the folder already holds exactly this content (same fingerprint)
    nothing is written, and a ``LazyFile`` is never loaded. ``PartitionedDataset``
    rewrites every file on each run and leaves stale ones behind, hence this class.
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}

    def _exists(self) -> bool:
        return (self._path / FINGERPRINT_FILE).is_file()

    def load(self) -> ImageFolder:
        if not self._exists():
            raise DatasetError(
                f"{self._path} has not been written yet: run the ingestion nodes first "
                "(kedro run --pipelines=catdog --tags=ingestion)."
            )
        return ImageFolder(self._path, folder_fingerprint(self._path))

    def save(self, data: Mapping[str, bytes | LazyFile]) -> None:
        fingerprint = content_fingerprint(data)
        if self._exists() and folder_fingerprint(self._path) == fingerprint:
            logger.info("%s is up to date (%d files): nothing written", self._path, len(data))
            return
        for name in data:
            relative = PurePosixPath(name)
            if relative.is_absolute() or ".." in relative.parts:
                raise DatasetError(f"Refusing to write {name!r} outside {self._path}")

        started = time.perf_counter()
        reread = sum(isinstance(content, LazyFile) for content in data.values())

        def write(staging: Path) -> None:
            for name, content in data.items():
                target = staging / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content.load() if isinstance(content, LazyFile) else content)
            (staging / FINGERPRINT_FILE).write_text(fingerprint + "\n")

        replace_folder(self._path, write)
        logger.info(
            "Wrote %d files to %s in %.1f s (%d read again from the source)",
            len(data),
            self._path,
            time.perf_counter() - started,
            reread,
        )
