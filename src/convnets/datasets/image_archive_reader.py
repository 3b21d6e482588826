"""Labelled images in a zip file or a folder, read as untrusted input.

Layouts: Kaggle's ``train.zip`` (``train/cat.0.jpg``), Kaggle's competition zip
``dogs-vs-cats.zip`` (holding ``train.zip``), Microsoft's PetImages zip
(``PetImages/Cat/0.jpg``, mapped to ``cat.0``), or any of these extracted. Entries with
unsafe names or over the size limits are refused; nothing is unpacked by its own name.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from kedro.io import DatasetError

from convnets.durability.atomic import move_into_place

logger = logging.getLogger(__name__)

# Kaggle: ``train/cat.0.jpg``. PetImages: ``PetImages/Cat/0.jpg``.
KAGGLE_NAME = re.compile(r"^(?P<label>[a-z]+)\.(?P<index>\d+)\.jpe?g$", re.IGNORECASE)
PETIMAGES_NAME = re.compile(r"^(?P<label>cat|dog)/(?P<index>\d+)\.jpe?g$", re.IGNORECASE)
INNER_ARCHIVE = "train.zip"
OUTER_ARCHIVE = "dogs-vs-cats.zip"
PETIMAGES_ARCHIVE = "kagglecatsanddogs_5340.zip"
DEFAULT_LIMITS = {
    # Per image and in total for what a split reads; ratio = uncompressed / compressed.
    "max_image_bytes": 50 * 2**20,
    "max_compression_ratio": 100,
    "max_total_bytes": 4 * 2**30,
}
HOW_TO_GET = (
    "Put Kaggle's train.zip (or the whole dogs-vs-cats.zip, or the extracted train/ "
    "folder) at {where}: kaggle competitions download -c dogs-vs-cats. Or let it be "
    "downloaded: source 'microsoft' (public, about 786 MB) or 'kaggle' (needs credentials)."
)


class UnreadableEntry(DatasetError):
    """One zip entry that cannot be read (bad CRC, local header or compressed data):
    that image is skipped, as an unreadable picture is."""


class ArchiveLimitError(DatasetError):
    """An archive that exceeds the configured size or compression limits."""


@dataclass
class ImageArchive:
    """Labelled images in a zip file or a folder, indexed as ``label -> index -> member``.

    ``refused`` lists the entries that were not indexed because they are unsafe
    (absolute paths, ``..`` components, symlinks) or exceed the limits, with the reason.
    """

    source: Path
    images: dict[str, dict[int, str]]
    refused: list[tuple[str, str]] = field(default_factory=list)
    limits: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    _zip: zipfile.ZipFile | None = field(default=None, repr=False)
    _bytes_read: int = field(default=0, repr=False)

    def read(self, member: str) -> bytes:
        """The bytes of one image; stops the run when the total read exceeds the limit."""
        if self._zip is not None:
            info = self._zip.getinfo(member)
            size = info.file_size
            try:
                with self._zip.open(info) as handle:
                    # Never trust the header: read at most one byte past what it declares.
                    content = handle.read(self.limits["max_image_bytes"] + 1)
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
                raise UnreadableEntry(
                    f"unreadable zip entry ({type(exc).__name__}: {exc})"
                ) from exc
        else:
            path = self.source / member
            size = path.stat().st_size
            content = path.read_bytes() if size <= self.limits["max_image_bytes"] else b""
        if max(size, len(content)) > self.limits["max_image_bytes"]:
            raise ArchiveLimitError(
                f"{member} in {self.source} is larger than max_image_bytes "
                f"({self.limits['max_image_bytes']:,}); the archive is not what it claims."
            )
        self._bytes_read += len(content)
        if self._bytes_read > self.limits["max_total_bytes"]:
            raise ArchiveLimitError(
                f"Reading {self.source} passed max_total_bytes "
                f"({self.limits['max_total_bytes']:,}); stopped before filling the disk or memory."
            )
        return content

    def identity(self, member: str) -> str:
        """A cheap stand-in for the member's content, read without reading the member.

        For a zip: CRC-32 and size from the central directory; for a folder: size and
        modification time. Used to remember image checks between runs.
        """
        if self._zip is not None:
            info = self._zip.getinfo(member)
            return f"crc32:{info.CRC:08x}:{info.file_size}"
        status = (self.source / member).stat()
        return f"stat:{status.st_size}:{status.st_mtime_ns}"

    def count(self, label: str) -> int:
        """How many images carry ``label``."""
        return len(self.images.get(label, {}))


def _unsafe(name: str) -> str | None:
    """Why an archive entry name must not be used, or None."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or re.match(r"^[a-zA-Z]:", name):
        return "absolute path"
    if ".." in path.parts:
        return "'..' path component"
    return None


def _match(name: str) -> tuple[str, int] | None:
    path = PurePosixPath(name)
    match = KAGGLE_NAME.match(path.name)
    if match is None and len(path.parts) >= 2:  # noqa: PLR2004
        match = PETIMAGES_NAME.match("/".join(path.parts[-2:]))
    if match is None:
        return None
    return match["label"].lower(), int(match["index"])


def _index_names(names: list[str], source: Path) -> dict[str, dict[int, str]]:
    images: dict[str, dict[int, str]] = {}
    for name in names:
        found = _match(name)
        if found is None:
            continue
        label, index = found
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
            f"{source} has no images named like Kaggle's train/cat.0.jpg or PetImages/Cat/0.jpg "
            f"(found: {sample}). Point the catalog entry at Kaggle's train.zip, the outer "
            "dogs-vs-cats.zip, Microsoft's PetImages zip, or an extracted folder of them."
        )
    return images


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DatasetError(
            f"{path} is not a readable zip archive ({exc}). Download it again."
        ) from exc


def _zip_entry_problem(info: zipfile.ZipInfo, limits: dict[str, int]) -> str | None:
    reason = _unsafe(info.filename)
    if reason:
        return reason
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link"
    if info.file_size > limits["max_image_bytes"]:
        return f"declares {info.file_size:,} bytes, over max_image_bytes"
    ratio = info.file_size / max(info.compress_size, 1)
    if ratio > limits["max_compression_ratio"]:
        return f"compression ratio {ratio:,.0f} over max_compression_ratio"
    return None


def _indexed_archive(
    path: Path,
    names: list[str],
    refused: list[tuple[str, str]],
    limits: dict[str, int],
    archive: zipfile.ZipFile | None = None,
) -> ImageArchive:
    """Log the refused entries and index the accepted ones."""
    for name, problem in refused:
        logger.warning("Refusing %s in %s: %s", name, path, problem)
    return ImageArchive(path, _index_names(names, path), refused, limits, archive)


def _open_zip_archive(path: Path, limits: dict[str, int]) -> ImageArchive:
    archive = _open_zip(path)
    names, refused = [], []
    for info in archive.infolist():
        if info.is_dir():
            continue
        problem = _zip_entry_problem(info, limits)
        if problem:
            refused.append((info.filename, problem))
        else:
            names.append(info.filename)
    return _indexed_archive(path, names, refused, limits, archive)


def _open_folder(path: Path, limits: dict[str, int]) -> ImageArchive:
    names, refused = [], []
    for root, _dirs, files in os.walk(path):  # os.walk does not follow symlinked folders
        for file_name in files:
            full = Path(root) / file_name
            relative = str(full.relative_to(path))
            if full.is_symlink():
                refused.append((relative, "symbolic link"))
                continue
            names.append(relative)
    return _indexed_archive(path, sorted(names), refused, limits)


def _extract_inner_archive(outer: Path, target: Path, limits: dict[str, int]) -> None:
    """Copy ``train.zip`` out of Kaggle's competition zip, once, atomically."""
    with _open_zip(outer) as archive:
        inner = [i for i in archive.infolist() if PurePosixPath(i.filename).name == INNER_ARCHIVE]
        if not inner:
            raise DatasetError(
                f"{outer} does not contain {INNER_ARCHIVE}; it is not Kaggle's dogs-vs-cats.zip."
            )
        info = inner[0]
        if info.file_size > limits["max_total_bytes"]:
            raise ArchiveLimitError(
                f"{INNER_ARCHIVE} in {outer} declares {info.file_size:,} bytes, over "
                "max_total_bytes"
            )
        logger.info("Extracting %s from %s to %s (once)", info.filename, outer, target)
        try:
            tmp = tempfile.NamedTemporaryFile(dir=target.parent, delete=False, suffix=".part")
        except OSError as exc:
            raise DatasetError(
                f"Cannot write {INNER_ARCHIVE} next to {outer} ({exc.strerror}): Kaggle's "
                f"competition zip holds {INNER_ARCHIVE}, which is extracted there once. Make "
                f"{target.parent} writable, or extract it yourself: unzip -j {outer} "
                f"{info.filename} -d {target.parent}"
            ) from exc
        with tmp:
            try:
                with archive.open(info) as member:
                    shutil.copyfileobj(member, tmp, 1 << 20)
            except BaseException:
                Path(tmp.name).unlink(missing_ok=True)
                raise
        move_into_place(tmp.name, target)


def open_image_archive(location: Path, limits: dict[str, int] | None = None) -> ImageArchive:
    """Open whichever supported layout is at ``location`` (a zip file or a folder)."""
    limits = {**DEFAULT_LIMITS, **(limits or {})}
    candidates = [location]
    if location.is_dir():
        candidates = [
            location / INNER_ARCHIVE,
            location / OUTER_ARCHIVE,
            location / PETIMAGES_ARCHIVE,
            location / "train",
            location / "PetImages",
            location,
        ]
    for candidate in candidates:
        if candidate.is_file() and candidate.name == OUTER_ARCHIVE:
            inner = candidate.with_name(INNER_ARCHIVE)
            if not inner.exists():
                _extract_inner_archive(candidate, inner, limits)
            candidate = inner  # noqa: PLW2901
        if candidate.is_file():
            return _open_zip_archive(candidate, limits)
        if candidate.is_dir() and any(
            _match(str(p.relative_to(candidate))) for p in candidate.rglob("*.[jJ][pP]*[gG]")
        ):
            return _open_folder(candidate, limits)
    raise DatasetError(
        f"No dogs-vs-cats images at {location}. " + HOW_TO_GET.format(where=location)
    )


def has_local_copy(location: Path) -> bool:
    """A file, or a folder holding one of the known archives or extracted folders."""
    if location.is_file():
        return True
    known = (INNER_ARCHIVE, OUTER_ARCHIVE, PETIMAGES_ARCHIVE, "train", "PetImages")
    return location.is_dir() and any((location / name).exists() for name in known)
