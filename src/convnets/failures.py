"""Faults of the machine, not of the project, recognised by their types anywhere in an
error's chain, each as one message that says what to do: a full disk, a tracking
database made read-only, a tracking server that does not answer. ``cli.py`` shows them
instead of a traceback."""

from __future__ import annotations

import sys
from pathlib import Path


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and every exception it was raised from or while handling."""
    found: list[BaseException] = []
    pending = [error]
    while pending:
        link = pending.pop(0)
        if link is None or any(link is seen for seen in found):
            continue
        found.append(link)
        pending += [link.__cause__, link.__context__]
    return found


def _tracking_uri() -> str:
    # Read only, to name the store in an error message; MLflow is written by the hooks.
    if "mlflow" not in sys.modules:
        return ""
    import mlflow  # noqa: PLC0415

    return mlflow.get_tracking_uri() or ""


def _data_root(project_path: Path, env: str | None) -> str:
    """``data_root`` of the environment's globals, as the catalog reads it."""
    from convnets.config.loader import ProjectConfigLoader  # noqa: PLC0415

    loader = ProjectConfigLoader(
        str(project_path / "conf"), env=env, base_env="base", default_run_env="local"
    )
    try:
        return str(loader["globals"]["data_root"])
    except Exception:  # noqa: BLE001 - only to name a folder in a message
        return "data"


def _unreachable_server(link: BaseException, server: str) -> bool:
    """A request to the tracking server that got no answer once MLflow's retries were
    spent: requests' error, which MLflow's ``MlflowException`` is raised from or while
    handling (so it is in the chain)."""
    requests = sys.modules.get("requests")
    if requests is None:
        return False
    errors = requests.exceptions
    if not isinstance(link, errors.ConnectionError | errors.Timeout | errors.RetryError):
        return False
    url = getattr(getattr(link, "request", None), "url", None) or ""
    return not url or url.startswith(server)


def _disk_full(link: BaseException) -> bool:
    """An ``OSError`` ENOSPC, or SQLite's SQLITE_FULL (the tracking database's disk), which
    SQLAlchemy's and MLflow's errors are raised from."""
    import errno  # noqa: PLC0415
    import sqlite3  # noqa: PLC0415

    if isinstance(link, OSError) and link.errno == errno.ENOSPC:
        return True
    return getattr(link, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


def _read_only_store(link: BaseException) -> bool:
    """SQLite's SQLITE_READONLY: the tracking database cannot be written any more."""
    import sqlite3  # noqa: PLC0415

    return getattr(link, "sqlite_errorcode", None) == sqlite3.SQLITE_READONLY


def environment_failure(
    error: BaseException,
    project_path: Path,
    pipelines: list[str],
    env: str | None,
    command: str,
) -> str | None:
    """One message for a fault of the machine, not of the project, anywhere in
    ``error``'s chain: a full disk, a tracking server that does not answer."""
    chain = _chain(error)
    tracking = _tracking_uri()
    if any(map(_read_only_store, chain)):
        store = tracking.removeprefix("sqlite:///") if "sqlite:" in tracking else "the store"
        return (
            f"The MLflow tracking database {store} became read-only during the run, so its "
            f"results could not be logged. Make it writable (chmod u+w {store}, or remount "
            "its disk read-write), then run the same command again: the trained models are "
            "kept in the resume state and are logged without training again."
        )
    for link in filter(_disk_full, chain):
        if isinstance(link, OSError):
            where = link.filename
        else:  # the tracking database's disk
            where = tracking.removeprefix("sqlite:///") if "sqlite:" in tracking else None
        return (
            f"No space left on device{f' ({where})' if where else ''}: free space and "
            "run the same command again; the run resumes where it stopped."
        )
    server = tracking.rstrip("/")
    if server.startswith(("http://", "https://")) and any(
        _unreachable_server(link, server) for link in chain
    ):
        root = _data_root(project_path, env)
        states = ", ".join(
            f"{root}/06_models/{name}/training_state" for name in pipelines or ["<pipeline>"]
        )
        return (
            f"The MLflow tracking server {server} did not answer (after MLflow's retries), "
            f"so the run stopped. The trained models are kept in the resume state "
            f"({states}): once the server is back (scripts/mlflow-server.sh start), run "
            f"the same command again to log them: {command}"
        )
    return None
