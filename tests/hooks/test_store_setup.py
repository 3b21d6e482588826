"""The sqlite tracking store is created or upgraded as one rename: an interruption leaves
the store as it was, and a store left half-made is repaired or named with its fix."""

import sqlite3

import mlflow
import pytest
from alembic.script import ScriptDirectory
from mlflow.store.db.utils import _get_alembic_config

from convnets.hooks import store_setup
from convnets.hooks.store_setup import prepare_tracking_store
from convnets.hooks.tracking_store import TrackingStoreError, check_tracking_store
from tests.conftest import reset_mlflow


def _revision(path) -> str:
    with sqlite3.connect(path) as database:
        return database.execute("SELECT version_num FROM alembic_version").fetchone()[0]


def _head() -> str:
    return ScriptDirectory.from_config(_get_alembic_config("")).get_current_head()


def _set_back(path, steps: int = 3) -> None:
    """As a migration interrupted after its schema changes, before its revision was stamped."""
    revisions = [
        item.revision
        for item in ScriptDirectory.from_config(_get_alembic_config("")).walk_revisions()
    ]
    with sqlite3.connect(path) as database:
        database.execute("UPDATE alembic_version SET version_num = ?", (revisions[steps],))


def test_an_interrupted_creation_leaves_no_store_and_the_next_run_creates_it(tmp_path, monkeypatch):
    store = tmp_path / "mlflow.db"
    migrate = store_setup._build  # noqa: SLF001

    def interrupted(path, stage_name, *, copy):
        (path.with_name(stage_name)).write_bytes(b"SQLite format 3\x00 half made")
        raise KeyboardInterrupt  # Ctrl-C in the middle of MLflow's migrations

    monkeypatch.setattr(store_setup, "_build", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare_tracking_store(f"sqlite:///{store}")
    assert not store.exists() and (tmp_path / "mlflow.db.creating").exists()

    monkeypatch.setattr(store_setup, "_build", migrate)
    prepare_tracking_store(f"sqlite:///{store}")
    assert _revision(store) == _head()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mlflow.db"]  # no leftover
    check_tracking_store(f"sqlite:///{store}")


def test_a_half_migrated_store_without_runs_is_set_aside_and_made_again(tmp_path, caplog):
    store = tmp_path / "mlflow.db"
    prepare_tracking_store(f"sqlite:///{store}")
    _set_back(store)
    prepare_tracking_store(f"sqlite:///{store}")
    assert _revision(store) == _head()
    (aside,) = tmp_path.glob("mlflow.db.damaged-*")  # kept, never deleted
    assert aside.stat().st_size > 0 and "held no run" in caplog.text
    reset_mlflow()
    mlflow.set_tracking_uri(f"sqlite:///{store}")
    try:
        mlflow.MlflowClient().create_run("0")  # MLflow uses it as it is
    finally:
        reset_mlflow()


def test_a_half_migrated_store_with_runs_is_named_with_the_fix_and_left_alone(tmp_path):
    store = tmp_path / "mlflow.db"
    prepare_tracking_store(f"sqlite:///{store}")
    reset_mlflow()
    mlflow.set_tracking_uri(f"sqlite:///{store}")
    try:
        mlflow.MlflowClient().create_run("0")
    finally:
        reset_mlflow()
    _set_back(store)
    before = store.read_bytes()
    with pytest.raises(TrackingStoreError, match=rf"{store} is half-created.*mv {store} "):
        prepare_tracking_store(f"sqlite:///{store}")
    assert store.read_bytes() == before  # its runs untouched
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mlflow.db"]


def test_a_store_at_mlflows_schema_is_not_touched(tmp_path):
    store = tmp_path / "mlflow.db"
    prepare_tracking_store(f"sqlite:///{store}")
    modified = store.stat().st_mtime_ns
    prepare_tracking_store(f"sqlite:///{store}")
    assert store.stat().st_mtime_ns == modified
