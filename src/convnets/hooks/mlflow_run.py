"""The MLflow run's life: kedro-mlflow's hook, with the run's process tags, its log,
and the runs that killed processes left RUNNING.

Metrics, parameters, artifacts, tags and models of the run's content go through the
catalog (kedro-mlflow's datasets and ``convnets.datasets``); this module writes to
MLflow only what belongs to the run itself: who runs it, how it ends, and its log.
"""

from __future__ import annotations

import logging
import os
import socket
import warnings
from pathlib import Path
from typing import Any

import mlflow
import psutil
from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from kedro.io import DataCatalog
from kedro.pipeline import Pipeline
from kedro.pipeline.node import Node
from pydantic import BaseModel

with warnings.catch_warnings(record=True):
    # MLflow warns, once per process and past any filter, that kedro-mlflow's
    # KedroPipelineModel (defined on import; unused here) has no type hints.
    from kedro_mlflow.framework.hooks.mlflow_hook import MlflowHook

from convnets.durability.scratch import remove_scratch, scratch_dir
from convnets.hooks.experiment import mlflow_conf

logger = logging.getLogger(__name__)

HOST_TAG, PID_TAG, STARTED_TAG = "process.host", "process.pid", "process.started"
GIT_COMMIT_TAG, GIT_DIRTY_TAG = "mlflow.source.git.commit", "git_dirty"
KILLED_REASON_TAG = "killed_reason"


class ProjectMlflowHook(MlflowHook):
    """kedro-mlflow's hook, with additions; registered in ``settings.HOOKS`` in
    place of the plugin's own instance. ``GuardHook`` checks the tracking store
    before this hook first touches MLflow.

    - A relative ``sqlite:///`` tracking URI is made absolute against the project
      (``absolute_tracking_uri``) in the copy of ``mlflow.yml`` the plugin reads.
    - Typed parameters are logged by key, as dicts are: the plugin's ``before_node_run``
      flattens only dicts, so a parsed section would be one long string.
    - The run's log (this process's log records from the pipeline's start to its end)
      is attached to the MLflow run as ``logs/kedro_run.log``.
    - Each run is tagged with its process (host, pid, start time); a RUNNING run of
      this tracking store whose process on this host is gone (``kill -9``, power
      loss) is marked KILLED when the next run starts, with the reason as a tag.

    MLflow's system metrics are MLflow's own switch:
    ``MLFLOW_ENABLE_SYSTEM_METRICS_LOGGING=true`` in the environment of ``kedro run``.
    """

    LOG_ARTIFACT = "logs"

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        conf, uri = mlflow_conf(context)
        server = dict(conf.get("server") or {})
        if uri and uri != server.get("mlflow_tracking_uri"):
            # kedro-mlflow would resolve a relative sqlite path against the working directory.
            context.config_loader["mlflow"] = {
                **conf,
                "server": {**server, "mlflow_tracking_uri": uri},
            }
        super().after_context_created(context)

    @hook_impl
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog
    ) -> None:
        self._log_handler = self._start_run_log()
        close_orphan_runs(mlflow.MlflowClient())
        super().before_pipeline_run(run_params=run_params, pipeline=pipeline, catalog=catalog)
        if mlflow.active_run() is not None:
            # Set here, not by a node: they must be on the run before its first node
            # (close_orphan_runs reads them while it runs), and they replace the
            # plugin's own runner and kedro_command tags of the run's start.
            mlflow.set_tags({**process_tags(), **command_tags(run_params), **code_tags()})
            run = mlflow.active_run().info
            # How a task of an orchestrator, or a later --nodes run, joins this run.
            logger.info(
                "MLflow run %s (to log into it from another process: MLFLOW_RUN_ID=%s); "
                "in the UI (kedro mlflow ui): "
                "#/experiments/%s/runs/%s?workflowType=machine_learning",
                run.run_id,
                run.run_id,
                run.experiment_id,
                run.run_id,
            )

    @hook_impl
    def before_node_run(
        self, node: Node, catalog: DataCatalog, inputs: dict[str, Any], is_async: bool
    ) -> None:
        as_dicts = {
            name: value.model_dump(mode="json") if isinstance(value, BaseModel) else value
            for name, value in inputs.items()
        }
        super().before_node_run(node=node, catalog=catalog, inputs=as_dicts, is_async=is_async)

    @hook_impl
    def after_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog
    ) -> None:
        self._attach_run_log()
        super().after_pipeline_run(run_params=run_params, pipeline=pipeline, catalog=catalog)

    @hook_impl
    def on_pipeline_error(
        self,
        error: Exception,
        run_params: dict[str, Any],
        pipeline: Pipeline,
        catalog: DataCatalog,
    ) -> None:
        self._attach_run_log()
        super().on_pipeline_error(
            error=error, run_params=run_params, pipeline=pipeline, catalog=catalog
        )

    def _start_run_log(self) -> logging.FileHandler:
        folder = scratch_dir("convnets-run-log-")
        handler = logging.FileHandler(folder / "kedro_run.log", encoding="utf-8")
        handler.setLevel(logging.INFO)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(handler)
        return handler

    def _attach_run_log(self) -> None:
        """Attach the run's log, from the hook: it holds the records up to the
        pipeline's end, after the last node that could have saved it."""
        handler = getattr(self, "_log_handler", None)
        if handler is None:
            return
        self._log_handler = None
        logging.getLogger().removeHandler(handler)
        handler.close()
        path = Path(handler.baseFilename)
        try:
            if mlflow.active_run() is not None:
                mlflow.log_artifact(str(path), self.LOG_ARTIFACT)
        except Exception as exc:  # noqa: BLE001 - a log that cannot be attached is not fatal
            logger.warning("Could not attach the run log to MLflow: %s", exc)
        finally:
            remove_scratch(path.parent)  # the log and its owner file


def command_tags(run_params: dict[str, Any]) -> dict[str, str]:
    """The command as the user typed it, and the runner by name.

    kedro-mlflow rebuilds the command from the run's parameters (``--pipeline=`` for
    ``--pipelines=``) and records the runner object's repr.
    """
    import shlex  # noqa: PLC0415
    import sys  # noqa: PLC0415

    runner = str(run_params.get("runner") or "SequentialRunner")  # "<kedro...Runner object at>"
    tags = {
        "runner": runner.partition(" object at ")[0].lstrip("<").rsplit(".", 1)[-1],
        # What the report groups runs by: the name changes when a run resumes another.
        "pipeline": ",".join(sorted(run_params.get("pipeline_names") or ["__default__"])),
    }
    program = Path(sys.argv[0])
    if program.stem == "kedro" and "run" in sys.argv[1:]:
        tags["kedro_command"] = "kedro " + shlex.join(sys.argv[1:])
    elif program.name == "__main__.py" and program.parent.name == "convnets":
        tags["kedro_command"] = "python -m convnets " + shlex.join(sys.argv[1:])
    return tags


def code_tags(package_dir: Path | None = None) -> dict[str, str]:
    """The git commit of the code that runs (MLflow's own tag name, shown in its UI) and
    whether its tracked files had changes; nothing outside a git checkout.

    Read from the package's folder, not the project's: with ``PYTHONPATH`` pointing at
    another checkout, that checkout's code is what runs.
    """
    import subprocess  # noqa: PLC0415

    folder = package_dir or Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        command = ["git", "-C", str(folder), *args]
        return subprocess.run(
            command, capture_output=True, text=True, timeout=10, check=True
        ).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        changed = bool(git("status", "--porcelain", "--untracked-files=no").strip())
    except (OSError, subprocess.SubprocessError):  # no git, or not a checkout
        return {}
    return {GIT_COMMIT_TAG: commit, GIT_DIRTY_TAG: str(changed).lower()}


def process_tags() -> dict[str, str]:
    """Who runs this MLflow run: enough to tell later whether that process is alive."""
    return {
        HOST_TAG: socket.gethostname(),
        PID_TAG: str(os.getpid()),
        STARTED_TAG: f"{psutil.Process().create_time():.2f}",
    }


def _process_alive(pid: int, started: str) -> bool:
    try:
        process = psutil.Process(pid)
        return f"{process.create_time():.2f}" == started  # not a reused pid
    except (psutil.NoSuchProcess, ValueError):
        return False


def close_orphan_runs(client: mlflow.MlflowClient) -> list[str]:
    """Mark KILLED the RUNNING runs started on this host by processes that are gone."""
    host = socket.gethostname()
    try:
        experiments = [e.experiment_id for e in client.search_experiments()]
        running = client.search_runs(
            experiments,
            filter_string=f"attributes.status = 'RUNNING' and tags.`{HOST_TAG}` = '{host}'",
            max_results=1000,
        )
    except Exception as exc:  # noqa: BLE001 - the plugin reports an unusable store itself
        logger.debug("Could not look for orphan MLflow runs: %s", exc)
        return []
    closed = []
    for run in running:
        pid, started = run.data.tags.get(PID_TAG, ""), run.data.tags.get(STARTED_TAG, "")
        if not pid.isdigit() or _process_alive(int(pid), started):
            continue
        reason = f"its process (pid {pid} on {host}) ended without closing the run"
        client.set_tag(run.info.run_id, KILLED_REASON_TAG, reason)
        client.set_terminated(run.info.run_id, status="KILLED")
        logger.warning("MLflow run %s marked KILLED: %s", run.info.run_id, reason)
        closed.append(run.info.run_id)
    return closed


def end_active_run(status: str, killed_reason: str | None = None) -> str | None:
    """End the MLflow run this process left open (kedro-mlflow's) with ``status``;
    returns its id. kedro-mlflow ends its run itself after a node error, not after a
    signal or an error in a hook."""
    run = mlflow.active_run()
    if run is None:
        return None
    try:
        if killed_reason:
            mlflow.set_tag(KILLED_REASON_TAG, killed_reason)
        # kedro-mlflow re-opens its run in each node: the run can be on the stack twice,
        # and MLflow's exit handler would end what is left as FINISHED.
        while mlflow.active_run() is not None:
            mlflow.end_run(status=status)
    except Exception as exc:  # noqa: BLE001 - the next run marks it KILLED anyway
        logger.warning("Could not mark MLflow run %s %s: %s", run.info.run_id, status, exc)
    return run.info.run_id
