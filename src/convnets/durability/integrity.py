"""What the project wrote earlier, checked before use: sizes and sha256 recorded when written.

A folder that no longer matches its record is set aside (renamed ``<name>.damaged-<time>``
next to it, never deleted) so that it can be made again from what is still good.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

from kedro.io import DatasetError

from convnets.errors import UserError

# sha256: OpenSSL's is the fastest hashlib offers on CPUs with SHA extensions, and
# checking a whole cache with it costs little beside decoding or one training epoch.
HASH = "sha256"


class DamagedData(UserError, DatasetError):
    """Files the project wrote no longer match what it recorded when writing them."""


class HashingWriter:
    """A binary file handle that counts and hashes what is written through it."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self._digest = hashlib.new(HASH)
        self.size = 0

    def write(self, data: bytes | memoryview) -> int:
        self._digest.update(data)
        self.size += len(data)
        return self._handle.write(data)

    def record(self) -> dict[str, Any]:
        """``{"size": ..., "sha256": ...}`` of everything written."""
        return {"size": self.size, HASH: self._digest.hexdigest()}


def record_of(content: bytes) -> dict[str, Any]:
    """The size and sha256 of ``content``, as ``check_files`` expects them."""
    return {"size": len(content), HASH: hashlib.new(HASH, content).hexdigest()}


def file_hash(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, HASH).hexdigest()


def check_files(folder: Path, records: Mapping[str, Any]) -> list[str]:
    """What is wrong with the files ``records`` lists under ``folder`` (empty: nothing).

    Sizes are compared first (a stat), then contents by sha256.
    """
    problems = []
    for name, record in records.items():
        path = folder / name
        try:
            if not isinstance(record, Mapping):
                raise TypeError
            expected_size, expected_hash = int(record["size"]), str(record[HASH])
        except (KeyError, TypeError, ValueError):
            problems.append(f"{path}: its record in the index is unreadable")
            continue
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            problems.append(f"{path} is missing")
            continue
        if size != expected_size:
            problems.append(f"{path} has {size} bytes, {expected_size} when written")
        elif file_hash(path) != expected_hash:
            problems.append(f"{path} has changed since it was written (another {HASH})")
    return problems


def summary(problems: list[str], shown: int = 3) -> str:
    """The first few problems, and how many more, on one line."""
    more = len(problems) - shown
    return "; ".join(problems[:shown]) + (f"; and {more} more" if more > 0 else "")


def set_aside(path: Path) -> Path:
    """Rename ``path`` to ``<name>.damaged-<time>`` in the same folder; returns the new path."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    number = 1
    while target.exists():
        number += 1
        target = path.with_name(f"{path.name}.damaged-{stamp}-{number}")
    os.replace(path, target)
    return target
