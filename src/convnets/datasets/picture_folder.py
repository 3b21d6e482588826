"""The folder of pictures ``predict`` classifies, read as a hostile folder could be.

Every entry of the folder (and of its sub-folders) becomes one loader; calling it
returns the file's bytes or raises the reason it is not read, which ``predict`` writes
as that entry's error row. What is read, and how:

- a regular file, opened with ``O_NOFOLLOW | O_NONBLOCK`` and checked again on the
  open descriptor (a file swapped for a FIFO or a link after the listing is not read),
  its size checked against ``max_image_bytes`` before any byte is read, then read a
  bounded chunk at a time, never more than ``max_image_bytes``;
- a symbolic link only when it resolves to a regular file inside the folder (the same
  checks then apply to that file); a link out of the folder, to a directory, a device,
  a FIFO, or to nothing is not followed;
- FIFOs, sockets, devices are never opened; sub-folders are walked (links to folders
  are not), and a directory named like a picture (``x.jpg``) gets its own row.

Names come as the operating system gives them: one that is not valid UTF-8 holds
surrogate escapes (``os.fsdecode``); ``printable_name`` writes it losslessly.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError
from PIL import Image

from convnets.errors import UserError

logger = logging.getLogger(__name__)

DEFAULT_MAX_IMAGE_BYTES = 50 * 2**20
READ_CHUNK = 2**20  # bytes read at a time
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)  # a link swapped in after the listing fails to open
    | getattr(os, "O_NONBLOCK", 0)  # a FIFO swapped in cannot block the open
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


class MissingPictures(UserError, DatasetError):
    """The pictures folder is missing or empty."""


class NotRead(ValueError):
    """An entry of the pictures folder that is not read: the reason is its row's error."""


class NotARegularFile(NotRead):
    """A FIFO, socket, device, directory, or a symbolic link that is not followed."""


class PictureTooLarge(NotRead):
    """A file larger than ``max_image_bytes``: refused before it is read."""


def printable_name(name: str) -> str:
    """``name`` as text that can be written anywhere, and read back to the same bytes.

    A byte that is not part of valid UTF-8 is written ``\\xNN`` (two hex digits) and a
    backslash is doubled, so ``bad_utf8_<0xff><0xfe>.jpg`` reads ``bad_utf8_\\xff\\xfe.jpg``.
    Every other name, the usual case, is written as it is.
    """
    raw = os.fsencode(name).replace(b"\\", b"\\\\")
    return raw.decode("utf-8", errors="backslashreplace")


def raw_name(printable: str) -> bytes:
    """The bytes of the name ``printable_name`` wrote as ``printable`` (its inverse)."""
    out, chars, index = bytearray(), printable, 0
    while index < len(chars):
        char = chars[index]
        after = chars[index + 1 : index + 2]
        if char == "\\" and after == "\\":
            out += b"\\"
            index += 2
        elif char == "\\" and after == "x":
            out.append(int(chars[index + 2 : index + 4], 16))
            index += 4
        else:
            out += char.encode("utf-8")
            index += 1
    return bytes(out)


def _kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISREG, "a regular file"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def read_bounded(path: str, max_bytes: int) -> bytes:
    """The bytes of the regular file ``path``, refused when larger than ``max_bytes``.

    ``path`` itself must not be a symbolic link (``O_NOFOLLOW``). The size is checked
    on the open descriptor before reading, and the read stops one byte past the limit
    whatever the file claims (a file that grows, a special file).
    """
    try:
        descriptor = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotARegularFile("became a symbolic link after it was listed: not read") from None
        raise type(exc)(exc.errno, exc.strerror) from None  # no path: the row names it
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise NotARegularFile(f"{_kind(info.st_mode)}, not a regular file: not read")
        if info.st_size > max_bytes:
            raise PictureTooLarge(
                f"{info.st_size:,} bytes, more than the {max_bytes:,} allowed: not read "
                "(max_image_bytes of predict_pictures in conf/base/catalog.yml)"
            )
        chunks, total = [], 0
        while total <= max_bytes:
            chunk = os.read(descriptor, min(READ_CHUNK, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > max_bytes:
            raise PictureTooLarge(
                f"grew past the {max_bytes:,} bytes allowed while it was read: not read"
            )
        return b"".join(chunks)
    finally:
        os.close(descriptor)


def _read_link(path: str, root: str, max_bytes: int) -> bytes:
    """A symbolic link's target when it is a regular file inside ``root``; else why not."""
    target = os.path.realpath(path)
    if os.path.commonpath([root, target]) != root:
        raise NotARegularFile(
            f"a symbolic link to {printable_name(target)}, outside the folder: not followed"
        )
    try:
        mode = os.stat(target, follow_symlinks=False).st_mode
    except FileNotFoundError:
        raise NotARegularFile("a symbolic link to nothing (dangling): not followed") from None
    if not stat.S_ISREG(mode):
        raise NotARegularFile(f"a symbolic link to {_kind(mode)}: not followed")
    return read_bounded(target, max_bytes)


def _refuse(reason: Exception) -> bytes:
    raise reason


def _picture_like(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in Image.registered_extensions()


def list_pictures(folder: str, max_bytes: int) -> dict[str, Callable[[], bytes]]:
    """A loader for every entry under ``folder``, by path relative to it (``/``-separated).

    Only ``lstat`` is called here: nothing is opened until a loader is called.
    """
    root = os.path.realpath(folder)
    loaders: dict[str, Callable[[], bytes]] = {}
    pending = [("", folder)]
    while pending:
        prefix, directory = pending.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError as exc:
            if not prefix:
                raise
            # An unreadable sub-folder is its row's error, not the run's.
            error = type(exc)(exc.errno, exc.strerror)
            loaders.setdefault(prefix[:-1], partial(_refuse, error))
            continue
        for entry in entries:
            name, path = prefix + entry.name, entry.path
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
            except FileNotFoundError:  # removed since the listing
                continue
            if stat.S_ISREG(mode):
                loaders[name] = partial(read_bounded, path, max_bytes)
            elif stat.S_ISLNK(mode):
                loaders[name] = partial(_read_link, path, root, max_bytes)
            elif stat.S_ISDIR(mode):
                pending.append((name + "/", path))
                if _picture_like(name):
                    reason = "a directory, not a picture (what it holds has rows of its own)"
                    loaders[name] = partial(_refuse, NotARegularFile(reason))
            else:
                reason = f"{_kind(mode)}, not a regular file: not opened"
                loaders[name] = partial(_refuse, NotARegularFile(reason))
    return loaders


class PictureFolderDataset(AbstractDataset[None, dict[str, Callable[[], bytes]]]):
    """Every entry of the folder ``path``, loaded lazily as bytes (see the module).

    A clear error, which tells the user what to do, when the folder is missing or empty.
    """

    def __init__(
        self,
        path: str,
        max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._path = path
        self._max_image_bytes = int(max_image_bytes)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"path": self._path, "max_image_bytes": self._max_image_bytes}

    def save(self, data: Any) -> None:
        raise DatasetError(f"{type(self).__name__} is read-only")

    def load(self) -> dict[str, Callable[[], bytes]]:
        folder = Path(self._path)
        where = "--params=predict_dir=<folder> (default data/01_raw/predict/)"
        if not folder.is_dir():
            raise MissingPictures(
                f"The pictures folder {folder} does not exist: create it and put pictures "
                f"in it, or name another with {where}."
            )
        loaders = list_pictures(str(folder), self._max_image_bytes)
        if not loaders:
            raise MissingPictures(
                f"The pictures folder {folder} is empty: put pictures in it (JPEG, PNG, any "
                f"format Pillow reads), or name another folder with {where}."
            )
        return loaders
