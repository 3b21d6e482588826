"""The checks a run must pass before it writes anything, called in one explicit order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from kedro.io import DataCatalog
from kedro.pipeline import Pipeline

from convnets import stopping
from convnets.config.check import ParameterCheck
from convnets.hooks.experiment import open_tracking_store
from convnets.hooks.lock import ProjectLockCheck

PipelineCheck = Callable[[dict[str, Any], Pipeline, DataCatalog], None]


class GuardHook:
    """Runs the project's checks in the order written here, before the other hooks.

    - ``after_context_created`` (``tryfirst``): the tracking store is checked, and its
      experiment created, before kedro-mlflow's own ``after_context_created`` first
      touches MLflow (``experiment.open_tracking_store``).
    - ``before_pipeline_run`` (``tryfirst``): ``PIPELINE_CHECKS`` in order: the
      parameters (a refused run takes no lock), then the project lock (a second run
      is refused before kedro-mlflow opens a run it would leave RUNNING).
    - ``before_node_run`` (``tryfirst``): a stop asked for by a signal is honoured.
    - ``after_pipeline_run`` / ``on_pipeline_error`` (``trylast``): the lock is
      released after every other hook, so the run's end (resume states, the MLflow
      run) is written under it.

    The order between hooks comes from ``tryfirst`` / ``trylast`` alone, not from
    the order of ``settings.HOOKS`` (pluggy calls the rest last-registered first).
    """

    PIPELINE_CHECKS = ("parameters", "project_lock")

    def __init__(self) -> None:
        self.parameters = ParameterCheck()
        self.project_lock = ProjectLockCheck()

    def pipeline_checks(self) -> list[PipelineCheck]:
        """``before_pipeline_run``'s checks, in ``PIPELINE_CHECKS`` order."""
        return [getattr(self, name).before_pipeline_run for name in self.PIPELINE_CHECKS]

    @hook_impl(tryfirst=True)
    def after_context_created(self, context: KedroContext) -> None:
        self.parameters.after_context_created(context)
        open_tracking_store(context)

    @hook_impl(tryfirst=True)
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog
    ) -> None:
        for check in self.pipeline_checks():
            check(run_params, pipeline, catalog)

    @hook_impl(tryfirst=True)
    def before_node_run(self) -> None:
        """A node's start is a safe point to honour Ctrl-C or SIGTERM (``convnets.stopping``)."""
        stopping.check()

    @hook_impl(trylast=True)
    def after_pipeline_run(self) -> None:
        self.project_lock.after_pipeline_run()

    @hook_impl(trylast=True)
    def on_pipeline_error(self) -> None:
        self.project_lock.after_pipeline_run()
