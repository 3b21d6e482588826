"""Temporary folders outside the project that a killed run's successor removes.

A run removes its own temporary folders when it ends, but a killed one (SIGKILL, out
of memory, a closed terminal) cannot. Each folder made here carries ``OWNER_FILE``:
the pid, the process's create time and the host. ``remove_abandoned_scratch``
deletes only the folders that carry it and whose process is gone (a pid reused by a
newer process has another create time), so neither a live run's folder nor one the
project did not make is ever touched.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import tempfile
from pathlib import Path

import psutil

logger = logging.getLogger(__name__)

PREFIX = "convnets-"
OWNER_FILE = ".convnets-scratch-owner.json"
# psutil reports create times to the clock tick; a rounding is not another process.
CREATE_TIME_TOLERANCE = 0.01


def _owner() -> dict[str, object]:
    return {
        "pid": os.getpid(),
        "create_time": psutil.Process().create_time(),
        "host": socket.gethostname(),
    }


def _mark(folder: Path) -> None:
    (folder / OWNER_FILE).write_text(json.dumps(_owner()) + "\n")


def _check_prefix(prefix: str) -> None:
    if not prefix.startswith(PREFIX):
        raise ValueError(f"Scratch folder prefixes start with {PREFIX!r}, not {prefix!r}")


def scratch_dir(prefix: str) -> Path:
    """A new folder in ``tempfile.gettempdir()`` named ``<prefix>…``, marked as this process's."""
    _check_prefix(prefix)
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    _mark(folder)
    return folder


class ScratchDirectory(tempfile.TemporaryDirectory):
    """``tempfile.TemporaryDirectory`` whose folder ``scratch_dir`` would have made."""

    def __init__(self, prefix: str) -> None:
        _check_prefix(prefix)
        super().__init__(prefix=prefix)
        _mark(Path(self.name))


def _recorded_owner(folder: Path) -> dict | None:
    """The owner a folder of ours records; None for anything else."""
    try:
        if folder.is_symlink() or not folder.is_dir():
            return None
        if hasattr(os, "getuid") and folder.stat().st_uid != os.getuid():
            return None  # another user's: not ours to judge, nor to delete
        owner = json.loads((folder / OWNER_FILE).read_text())
        return {
            "pid": int(owner["pid"]),
            "create_time": float(owner["create_time"]),
            "host": str(owner["host"]),
        }
    except (OSError, ValueError, KeyError, TypeError):
        return None  # no owner file (not made here) or one being written


def _process_gone(pid: int, create_time: float) -> bool:
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return True
        # A different create time is a newer process that reuses the pid.
        return abs(process.create_time() - create_time) > CREATE_TIME_TOLERANCE
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False  # cannot tell: keep its folder


def _abandoned(folder: Path, host: str) -> bool:
    owner = _recorded_owner(folder)
    # On a temp dir shared between hosts another host's process cannot be checked here.
    return (
        owner is not None
        and owner["host"] == host
        and _process_gone(owner["pid"], owner["create_time"])
    )


def remove_abandoned_scratch() -> list[Path]:
    """Delete the scratch folders of processes on this host that are gone."""
    host = socket.gethostname()
    removed = []
    for folder in sorted(Path(tempfile.gettempdir()).glob(PREFIX + "*")):
        if _abandoned(folder, host):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    if removed:
        logger.info(
            "Removed %d temporary folder(s) left by killed runs: %s",
            len(removed),
            ", ".join(str(path) for path in removed),
        )
    return removed
