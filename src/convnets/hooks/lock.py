"""One run at a time per project folder, and the clean-up that the lock makes safe."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import DataCatalog
from kedro.pipeline import Pipeline

from convnets.durability.lock import ProjectLock, remove_stale_staging
from convnets.durability.scratch import remove_abandoned_scratch


class ProjectLockCheck:
    """One run at a time per project folder (``project_lock``), and no stale staging.

    Killed runs' temporary folders outside the project (``scratch``) go at the start
    too. ``GuardHook`` takes the lock after the parameter check and before kedro-mlflow
    opens its run, so a refused run writes nothing, and releases it after every other
    hook of the run's end.
    """

    def __init__(self) -> None:
        self._lock: ProjectLock | None = None

    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog
    ) -> None:
        self._release()  # a run whose start failed after the lock was taken
        data_dir = Path(run_params.get("project_path") or ".") / "data"
        self._lock = ProjectLock(data_dir)
        self._lock.acquire(list(run_params.get("pipeline_names") or []))
        remove_stale_staging(data_dir)
        remove_abandoned_scratch()

    def after_pipeline_run(self) -> None:
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None
