"""A sqlite tracking store created or upgraded as one step, so that no interruption can
leave it half-made.

MLflow creates a new store's tables, then migrates them revision by revision, on the
file itself: a run stopped during that (Ctrl-C, ``kill -9``) left ``mlflow.db`` at an
intermediate revision with part of the next one applied, and every later start failed
in SQLAlchemy ("table guardrails already exists"). Here MLflow's own schema code runs on
a copy beside the store (``mlflow.db.creating``: a new store; ``mlflow.db.upgrading``: an
older one), which replaces the store only once complete. A store that is half-made
already (an earlier version of the project, or MLflow's own ``mlflow db upgrade``
interrupted) is set aside and made again when it holds no run or registered model, and
named with the command that fixes it when it does. Called under ``tracking_store_lock``.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

from convnets.durability.atomic import move_into_place
from convnets.durability.integrity import set_aside
from convnets.hooks.tracking_store import TrackingStoreError, check_writable, sqlite_path

logger = logging.getLogger(__name__)

STAGES = (".creating", ".upgrading")  # the copies this module makes beside the store
SQLITE_SIDE_FILES = ("", "-journal", "-wal", "-shm")


def prepare_tracking_store(uri: str) -> None:
    """Create a missing sqlite store, or bring an existing one to MLflow's schema, each as
    one rename; a no-op for a store at MLflow's head revision and for servers."""
    path = sqlite_path(uri)
    if path is None:
        return
    try:
        check_writable(path)
    except TrackingStoreError:
        return  # check_tracking_store says what to do
    _remove_stages(path)  # what an interrupted creation or upgrade left: ours, incomplete
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _build(path, f"{path.name}.creating", copy=False)
        return
    state = _schema_state(path)
    if state is None:
        return  # not readable as SQLite, or locked: check_tracking_store names it
    revision, leftovers = state
    if revision == _head_revision() and not leftovers:
        return
    try:
        _build(path, f"{path.name}.upgrading", copy=True)
        logger.info("Upgraded the MLflow tracking database %s to MLflow's schema", path)
    except Exception as exc:  # noqa: BLE001 - whatever MLflow's migration raised
        _remove_stages(path)
        if _holds_data(path):
            raise TrackingStoreError(
                f"The MLflow tracking database {path.resolve()} is half-created or "
                f"half-upgraded (revision {revision or 'none'}, {exc.__class__.__name__}: "
                f"{str(exc).splitlines()[0][:160]}), and MLflow cannot use it. Move it "
                f"aside to start a new one (mv {path.resolve()} {path.resolve()}.broken); "
                "its runs stay readable there with sqlite3."
            ) from exc
        aside = set_aside(path)
        logger.warning(
            "The MLflow tracking database %s was half-made (an interrupted creation or "
            "upgrade) and held no run: set aside as %s and created again",
            path,
            aside.name,
        )
        _build(path, f"{path.name}.creating", copy=False)


def _build(path: Path, stage_name: str, *, copy: bool) -> None:
    """MLflow's schema code on ``stage_name`` beside ``path`` (a copy of it if ``copy``),
    then the stage renamed over ``path``."""
    import sqlalchemy  # noqa: PLC0415
    from mlflow.store.db.utils import _initialize_tables  # noqa: PLC0415 - MLflow's own

    stage = path.with_name(stage_name)
    if copy:
        shutil.copyfile(path, stage)
    engine = sqlalchemy.create_engine(f"sqlite:///{stage}")
    try:
        _initialize_tables(engine)  # what MLflow's store runs on a file it finds incomplete
    finally:
        engine.dispose()
    move_into_place(stage, path)


def _remove_stages(path: Path) -> None:
    for stage in STAGES:
        for side in SQLITE_SIDE_FILES:
            path.with_name(f"{path.name}{stage}{side}").unlink(missing_ok=True)


def _schema_state(path: Path) -> tuple[str | None, list[str]] | None:
    """The alembic revision ``path`` records and leftover tables of a migration; None when
    it cannot be read."""
    try:
        with closing(sqlite3.connect(path, timeout=5.0)) as database:
            tables = [row[0] for row in database.execute("SELECT name FROM sqlite_master")]
            leftovers = [name for name in tables if name.startswith("_alembic_tmp_")]
            if "alembic_version" not in tables:
                return None, leftovers
            row = database.execute("SELECT version_num FROM alembic_version").fetchone()
            return (row[0] if row else None), leftovers
    except sqlite3.DatabaseError:
        return None


def _head_revision() -> str:
    from mlflow.store.db.utils import _get_latest_schema_revision  # noqa: PLC0415

    return _get_latest_schema_revision()


def _holds_data(path: Path) -> bool:
    """Whether ``path`` has a run or a registered model that setting it aside would hide."""
    with closing(sqlite3.connect(path, timeout=5.0)) as database:
        for table in ("runs", "registered_models"):
            try:
                if database.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone():  # noqa: S608
                    return True
            except sqlite3.DatabaseError:
                continue  # a table the half-made store never got
    return False
