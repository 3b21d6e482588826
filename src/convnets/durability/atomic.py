"""Writes that a crash or a full disk cannot leave half done: a temporary file beside the
target, fsynced, then renamed over it (a rename within a folder is atomic), and the folder
fsynced so that the rename itself survives a power cut."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def fsync_folder(folder: Path) -> None:
    """Make renames in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def write_json_atomically(path: Path, data: Any) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, rename it into place."""
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, sort_keys=True, allow_nan=False)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
    fsync_folder(path.parent)


def move_into_place(staged: Path | str, target: Path) -> None:
    """Rename the finished file ``staged`` (beside ``target``, on its disk) over ``target``,
    its content and the rename both made durable."""
    fsync_file(Path(staged))
    os.replace(staged, target)
    fsync_folder(target.parent)
