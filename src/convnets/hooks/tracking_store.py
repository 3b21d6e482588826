"""The MLflow tracking store checked before MLflow first touches it: one message naming
the file or server and what to do, instead of SQLAlchemy's or the HTTP client's errors."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from convnets.errors import UserError

logger = logging.getLogger(__name__)


class TrackingStoreError(UserError, RuntimeError):
    """The MLflow tracking database cannot be used; the message says what to do."""


# MLflow's own defaults retry each HTTP call 7 times with a backoff factor of 2 and a
# 120 s timeout: minutes per call when the tracking server is down. A user's own
# environment values win.
MLFLOW_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}
STORE_LOCK_TIMEOUT_S = 300.0


def bound_mlflow_http_retries() -> None:
    """Bound how long one MLflow call to a tracking server retries (``MLFLOW_HTTP_DEFAULTS``).

    MLflow reads them at each call (its cached HTTP session is keyed by their values).
    """
    for name, value in MLFLOW_HTTP_DEFAULTS.items():
        os.environ.setdefault(name, value)


def sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    path = uri.removeprefix("sqlite:///").partition("?")[0]
    if path in ("", ":memory:") or path.startswith(":"):
        return None
    return Path(path)  # relative to the working directory


@contextmanager
def tracking_store_lock(uri: str, timeout_s: float = STORE_LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold ``<database>.lock`` next to a sqlite tracking store while it is created or
    upgraded: one process at a time runs MLflow's migrations on it."""
    path = sqlite_path(uri)
    if path is None or not os.access(path.parent, os.W_OK):
        yield  # a read-only folder: check_tracking_store says so
        return
    lock = FileLock(f"{path}.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        logger.info(
            "Waiting (up to %.0f s) for another process that opens the MLflow tracking "
            "database %s (it holds %s.lock)",
            timeout_s,
            path.resolve(),
            path.name,
        )
        try:
            lock.acquire(timeout=timeout_s)
        except Timeout:
            raise TrackingStoreError(
                f"Another process held {path.resolve()}.lock for {timeout_s:.0f} s while "
                f"creating or upgrading the MLflow tracking database {path.resolve()}. Wait "
                "for it to finish (another kedro run, mlflow ui), then run again."
            ) from None
    try:
        yield
    finally:
        lock.release()


def check_tracking_store(uri: str, timeout_s: float = 5.0) -> None:
    """Fail early, naming it, when the tracking store cannot be used.

    A sqlite file that is damaged, half-migrated, read-only or locked: MLflow's own
    error ("file is not a database", "table _alembic_tmp_... already exists", "attempt
    to write a readonly database") comes from deep in SQLAlchemy without the file's
    name. A tracking server that does not answer: MLflow's HTTP client would retry
    before the first node.
    """
    if uri.startswith(("http://", "https://")):
        _check_tracking_server(uri, timeout_s)
        return
    path = sqlite_path(uri)
    if path is None:
        return
    check_writable(path)
    if not path.is_file():
        return  # MLflow creates it
    try:
        with closing(sqlite3.connect(path, timeout=timeout_s)) as database:
            database.execute("PRAGMA schema_version").fetchone()
            tables = {
                name
                for (name,) in database.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            _check_migrated(path, tables)
            database.execute("BEGIN IMMEDIATE")  # a run must be able to write
            database.rollback()
    except sqlite3.OperationalError as exc:
        if "readonly" in str(exc):
            raise _read_only_store(path, path) from exc
        if "locked" not in str(exc):
            raise _unreadable_store(path, exc) from exc
        raise TrackingStoreError(
            f"The MLflow tracking database {path.resolve()} is locked by another process "
            f"({exc}) and stayed so for {timeout_s:.0f} s. Wait for that process (another "
            "run, a script writing to MLflow) to finish, or stop it, then run again."
        ) from exc
    except sqlite3.DatabaseError as exc:
        raise _unreadable_store(path, exc) from exc


def check_writable(path: Path) -> None:
    """A read-only file or folder: sqlite writes the file and a journal beside it.

    The file's own mode bits count too: root may write a file whatever its mode, but a
    file made read-only was meant to stay unchanged.
    """
    folder = path.parent
    if path.is_file():
        mode = path.stat().st_mode
        if not os.access(path, os.W_OK) or not mode & stat.S_IWUSR:
            raise _read_only_store(path, path)
    if folder.is_dir() and not os.access(folder, os.W_OK):
        raise _read_only_store(path, folder)


def _read_only_store(path: Path, read_only: Path) -> TrackingStoreError:
    if read_only == path:
        fix = f"make it writable (chmod u+w {path.resolve()})"
    else:
        fix = (
            f"its folder {read_only.resolve()} is read-only (a read-only mount or "
            f"permissions): make it writable (chmod u+w {read_only.resolve()}) or move the "
            "project to a writable folder"
        )
    return TrackingStoreError(
        f"The MLflow tracking database {path.resolve()} cannot be written: {fix}, then run "
        "again; or point server.mlflow_tracking_uri in conf/<env>/mlflow.yml at another store."
    )


def _check_migrated(path: Path, tables: set[str]) -> None:
    """MLflow's schema migrations stopped half-way (a process killed while creating or
    upgrading the store): MLflow fails on it at every start."""
    leftovers = sorted(name for name in tables if name.startswith("_alembic_tmp_"))
    if not leftovers and (not tables or "alembic_version" in tables):
        return
    what = f"table {leftovers[0]}" if leftovers else "no alembic_version table"
    raise TrackingStoreError(
        f"The MLflow tracking database {path.resolve()} is half-created or half-upgraded "
        f"({what}: MLflow's schema migration was interrupted), and MLflow cannot use it. "
        f"Move it aside to start a new one (mv {path.resolve()} {path.resolve()}.broken); "
        "its runs stay readable there with sqlite3."
    )


def _unreadable_store(path: Path, exc: Exception) -> TrackingStoreError:
    return TrackingStoreError(
        f"The MLflow tracking database {path.resolve()} cannot be read ({exc}): it is not "
        f"an SQLite database or it is damaged. Move it aside to start a new one (mv {path} "
        f"{path}.broken), or point server.mlflow_tracking_uri in conf/<env>/mlflow.yml "
        "at another store."
    )


def _check_tracking_server(uri: str, timeout_s: float) -> None:
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s):
            return
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingStoreError(
            f"The MLflow tracking server {uri} does not answer ({reason}). Start it "
            "(scripts/mlflow-server.sh start, docs/scaling.md), or run without --env=server "
            "to track to the project's mlflow.db."
        ) from None
