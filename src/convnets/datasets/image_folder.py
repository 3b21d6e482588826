"""A folder of image files written all at once, skipped when its content is unchanged.

Its save takes ``LazyFile`` values: images checked by an earlier run are read from the
archive again only when the folder must be rewritten, and that cost is logged here.
Every file's size and sha256 are recorded in the folder's manifest as it is written,
and checked before the folder is called up to date and before it is loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from convnets import stopping
from convnets.durability.integrity import DamagedData, check_files, record_of, set_aside, summary
from convnets.durability.lock import STAGING_MARK, make_staging_dir, mark_as_staging

logger = logging.getLogger(__name__)

FINGERPRINT_FILE = ".content.sha256"
# {"format": 1, "fingerprint": ..., "files": {relative path: {"size": ..., "sha256": ...}}}
MANIFEST_FILE = ".manifest.json"
MANIFEST_FORMAT = 1
REWRITE_SPLIT = "kedro run --pipelines=catdog --tags=ingestion (or the pipeline you run)"


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


def _recorded_fingerprint(path: Path) -> str | None:
    """The recorded fingerprint, or None when the file is missing or unreadable."""
    try:
        return folder_fingerprint(path)
    except (OSError, UnicodeDecodeError):
        return None


def split_problems(path: Path) -> list[str] | None:
    """What is wrong with the folder at ``path`` against its manifest (empty: nothing).

    None when it has no manifest: written before manifests were, it cannot be checked.
    Every file is hashed: a changed picture keeps its size as often as not.
    """
    manifest_path = path / MANIFEST_FILE
    try:
        manifest = json.loads(manifest_path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        return [f"{manifest_path} is unreadable ({exc})"]
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        return [f"{manifest_path} is not a manifest of this project"]
    if manifest.get("format") != MANIFEST_FORMAT:
        return None  # another format: written by another version, rewrite it
    records = manifest["files"]
    problems = []
    if manifest.get("fingerprint") != _recorded_fingerprint(path):
        problems.append(f"{path / FINGERPRINT_FILE} does not match {manifest_path}")
    for file in sorted(path.rglob("*")):
        relative = file.relative_to(path).as_posix()
        # Files at the top whose name starts with a dot are the folder's own records.
        if file.is_dir() or relative in records or "/" not in relative and relative[0] == ".":
            continue
        problems.append(f"{file} is not in {manifest_path}")
    return problems + check_files(path, records)


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
    and every file still matches the manifest, nothing is written, and a ``LazyFile``
    is never loaded. A folder that does not match is set aside (``<name>.damaged-<time>``)
    and written again; one without a manifest (an older version's) is written again.
    Loading refuses a folder that does not match its manifest. Not ``PartitionedDataset``:
    with ``overwrite: true`` it deletes the folder and writes in place (a crash leaves half
    of one), rewrites every file on each run, and checks nothing it loads.
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
        problems = split_problems(self._path)
        if problems is None:
            raise DamagedData(
                f"{self._path} was written before splits had a manifest ({MANIFEST_FILE}), "
                f"so its pictures cannot be checked: write it again with {REWRITE_SPLIT}."
            )
        if problems:
            raise DamagedData(
                f"{self._path} does not match its manifest: {summary(problems)}. Nothing "
                f"is decoded or trained from it; write it again from the archive with "
                f"{REWRITE_SPLIT}."
            )
        return ImageFolder(self._path, folder_fingerprint(self._path))

    def save(self, data: Mapping[str, bytes | LazyFile]) -> None:
        for name in data:
            relative = PurePosixPath(name)
            if relative.is_absolute() or ".." in relative.parts:
                raise DatasetError(f"Refusing to write {name!r} outside {self._path}")
        fingerprint = content_fingerprint(data)
        # An unreadable fingerprint is checked too: the manifest tells damage from change.
        if self._exists() and _recorded_fingerprint(self._path) in (fingerprint, None):
            problems = split_problems(self._path)
            if problems is None:
                logger.info(
                    "%s has no %s (an older version wrote it): writing it again",
                    self._path,
                    MANIFEST_FILE,
                )
            elif not problems:
                logger.info("%s is up to date (%d files): nothing written", self._path, len(data))
                return
            else:
                aside = set_aside(self._path)
                logger.warning(
                    "%s does not match its manifest (%s): set aside as %s; writing the "
                    "split again from the source",
                    self._path,
                    summary(problems),
                    aside,
                )

        started = time.perf_counter()
        reread = sum(isinstance(content, LazyFile) for content in data.values())

        def write(staging: Path) -> None:
            records = {}
            for name, content in data.items():
                stopping.check()  # a staging folder: the next run removes what is left
                target = staging / name
                target.parent.mkdir(parents=True, exist_ok=True)
                body = content.load() if isinstance(content, LazyFile) else content
                target.write_bytes(body)
                records[name] = record_of(body)
            manifest = {"format": MANIFEST_FORMAT, "fingerprint": fingerprint, "files": records}
            (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=0, sort_keys=True))
            (staging / FINGERPRINT_FILE).write_text(fingerprint + "\n")

        replace_folder(self._path, write)
        logger.info(
            "Wrote %d files to %s in %.1f s (%d read again from the source)",
            len(data),
            self._path,
            time.perf_counter() - started,
            reread,
        )
