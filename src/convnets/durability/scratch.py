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

try:
    import fcntl
except ImportError:  # Windows: the pid and create time alone tell
    fcntl = None

logger = logging.getLogger(__name__)

# Owner files this process holds an flock on while their folder lives: the lock dies
# with the process, so a live owner is told apart even after the clock moved (psutil
# derives create times from the boot time, which moves with the wall clock).
_HELD: dict[str, int] = {}

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
    owner = folder / OWNER_FILE
    owner.write_text(json.dumps(_owner()) + "\n")
    if fcntl is not None:
        descriptor = os.open(owner, os.O_RDONLY)  # not inherited by exec'd children
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _HELD[str(folder)] = descriptor


def _unmark(folder: Path) -> None:
    descriptor = _HELD.pop(str(folder), None)
    if descriptor is not None:
        os.close(descriptor)


def remove_scratch(folder: Path) -> None:
    """Remove a folder ``scratch_dir`` made, once this process is done with it."""
    _unmark(folder)
    shutil.rmtree(folder, ignore_errors=True)


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

    def cleanup(self) -> None:
        _unmark(Path(self.name))
        super().cleanup()


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


def _held(folder: Path) -> bool | None:
    """True while a live process holds the folder's owner file; None where unknown."""
    if fcntl is None:
        return None
    try:
        descriptor = os.open(folder / OWNER_FILE, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    finally:
        os.close(descriptor)  # and with it the probe's own lock
    return False


def _abandoned(folder: Path, host: str) -> bool:
    if _held(folder):
        return False
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
