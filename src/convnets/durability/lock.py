"""One run at a time per project folder: an exclusive lock on ``data/``.

Runs of one project share what they write under ``data/``: the split, the decoded
images, the resume state. Two of them at once would replace each other's files, so
a second run fails at once, naming the run that holds the folder. ``filelock`` uses
an OS lock (``flock``/``LockFileEx``) that dies with its process, so a killed run
never leaves the folder locked. Holding the lock also makes leftover staging
folders safe to delete: no live run is writing them. Only folders the project made
are deleted: each carries a ``STAGING_MARK`` file written when it was created, so a
user's ``.download-holiday/`` or ``.summer-staging-2024/`` is never touched.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
from filelock import FileLock, Timeout

from convnets.durability.atomic import write_json_atomically
from convnets.errors import UserError

logger = logging.getLogger(__name__)

LOCK_NAME = ".convnets-run.lock"
HOLDER_NAME = ".convnets-run.json"
# Temporary folders of the writes that swap a folder into place (replace_folder) and of
# downloads into a folder; their names start with one of these after the dot.
STAGING_MARKERS = ("-staging-", "-retired-")
STAGING_PREFIXES = (".download-",)
# The file that says the project made a folder; a folder is removed only if it holds it.
STAGING_MARK = ".convnets-staging"


def mark_as_staging(folder: Path, made_by: str) -> None:
    """Write ``STAGING_MARK`` into ``folder``: the next run may delete it if left behind."""
    (folder / STAGING_MARK).write_text(
        f"A temporary folder made by {made_by} (pid {os.getpid()} on {socket.gethostname()}). "
        "If it is still here after that run, the next kedro run deletes it.\n"
    )


def make_staging_dir(parent: Path, prefix: str, made_by: str) -> Path:
    """A new marked folder in ``parent`` whose name starts with ``prefix``.

    ``prefix`` must be a name ``remove_stale_staging`` recognises.
    """
    folder = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
    mark_as_staging(folder, made_by)
    return folder


@contextmanager
def staging_dir(parent: Path, prefix: str, made_by: str) -> Iterator[Path]:
    """``make_staging_dir``, removed with its content when the block ends."""
    folder = make_staging_dir(parent, prefix, made_by)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _is_stale_staging(folder: Path) -> bool:
    name = folder.name
    named = any(marker in name for marker in STAGING_MARKERS) or name.startswith(STAGING_PREFIXES)
    return (
        named and not folder.is_symlink() and folder.is_dir() and (folder / STAGING_MARK).is_file()
    )


class ProjectBusy(UserError, RuntimeError):
    """Another live run holds this project folder."""


class ProjectLock:
    """The exclusive lock on ``data_dir`` for one ``kedro run``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._lock = FileLock(data_dir / LOCK_NAME, timeout=0)
        self._holder = data_dir / HOLDER_NAME

    def acquire(self, pipelines: list[str]) -> None:
        """Take the lock or raise ``ProjectBusy`` naming the run that has it."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except Timeout:
            raise ProjectBusy(self._busy_message()) from None
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "pipelines": pipelines,
        }
        write_json_atomically(self._holder, holder)  # a reader sees the whole file or the old one

    def release(self) -> None:
        if self._lock.is_locked:
            self._holder.unlink(missing_ok=True)
            self._lock.release(force=True)

    def _busy_message(self, wait_s: float = 2.0) -> str:
        # The holder writes its details just after taking the lock: a run refused in
        # that instant waits for them rather than naming nobody.
        deadline = time.monotonic() + wait_s
        while True:
            try:
                holder = json.loads(self._holder.read_text())
                if holder["host"] == socket.gethostname() and not psutil.pid_exists(holder["pid"]):
                    raise ValueError("left by a killed run")  # the new holder's is coming
                who = (
                    f"pid {holder['pid']} on {holder['host']}, pipelines "
                    f"{', '.join(holder['pipelines']) or '__default__'}, "
                    f"started {holder['started']}"
                )
                break
            except (OSError, ValueError, KeyError):
                if time.monotonic() > deadline:
                    who = "its details are not written yet"
                    break
                time.sleep(0.05)
        return (
            f"Another run ({who}) holds {self.data_dir}/{LOCK_NAME}: runs of one project "
            "share data/, so only one runs at a time. Wait for it to finish, or run from "
            "another copy of the project."
        )


def remove_stale_staging(data_dir: Path) -> list[Path]:
    """Delete the staging folders that killed runs left under ``data_dir``.

    Only folders with a staging name that carry ``STAGING_MARK`` are the project's.
    Call it only while holding the ``ProjectLock``: then no live run is writing them.
    """
    removed: list[Path] = []
    # Listed before deleting: rglob would otherwise walk into folders being removed.
    for folder in sorted(data_dir.rglob(".*")):
        if any(folder.is_relative_to(gone) for gone in removed):
            continue
        if _is_stale_staging(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    if removed:
        logger.info(
            "Removed %d staging folder(s) left by interrupted runs: %s",
            len(removed),
            ", ".join(str(path.relative_to(data_dir)) for path in removed),
        )
    return removed
