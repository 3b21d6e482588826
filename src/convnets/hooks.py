"""Project hooks: parameters checked before the first node; what the MLflow run records."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sqlite3
import stat
import warnings
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import mlflow
import psutil
from filelock import FileLock, Timeout
from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from kedro.io import DataCatalog
from kedro.pipeline import Pipeline
from kedro.pipeline.node import Node
from mlflow.entities import Experiment
from pydantic import BaseModel

with warnings.catch_warnings(record=True):
    # MLflow warns, once per process and past any filter, that kedro-mlflow's
    # KedroPipelineModel (defined on import; unused here) has no type hints.
    from kedro_mlflow.framework.hooks.mlflow_hook import MlflowHook

from convnets.errors import UserError
from convnets.parameters import (
    CatsVsDogsData,
    ImageInput,
    InvalidParameters,
    MnistTraining,
    ParameterError,
    check_parameter_keys,
    image_input_costs,
    mnist_costs,
)
from convnets.pipeline_registry import TRAINING_PIPELINES  # one MLflow run each
from convnets.project_lock import ProjectLock, remove_stale_staging
from convnets.scratch import remove_abandoned_scratch, remove_scratch, scratch_dir

logger = logging.getLogger(__name__)

PARAMS_PREFIX = "params:"


class ParameterHook:
    """Reports every parameter section of the run that Kedro could not parse.

    Kedro's parameter validation parses each ``params:`` input into the model its
    node declares; its error names the section and then pydantic's own report, with
    keys relative to the section and no fix. The models keep a failure as
    ``InvalidParameters`` instead (``convnets.parameters``), and this hook raises one
    ``ParameterError`` that names each bad key in full with a ``--params=`` that fixes
    it, before any node and before kedro-mlflow opens a run that the error would
    leave RUNNING. Before them: keys no pipeline reads (typos; the CLI checks them
    first, this covers sessions started otherwise); after them: sizes that the disk or
    the memory cannot hold, with what they would cost.
    """

    conf_source: str | None = None

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        self.conf_source = context.config_loader.conf_source

    @hook_impl(tryfirst=True)
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog
    ) -> None:
        pipelines = run_params.get("pipeline_names") or ["__default__"]
        env = run_params.get("env")
        env_option = f" --env={env}" if env and env != "local" else ""
        command = f"kedro run --pipelines={','.join(pipelines)}{env_option}"
        if self.conf_source and Path(self.conf_source).is_dir():
            check_parameter_keys(
                self.conf_source,
                env or "local",
                run_params.get("runtime_params"),
                lambda params: f"{command} --params={params}",
            )
        trained = [
            name for name in run_params.get("pipeline_names") or [] if name in TRAINING_PIPELINES
        ]
        if len(trained) > 1:
            # One MLflow run per kedro run: two models' metrics would share its names.
            raise ParameterError(
                f"Run one training pipeline at a time, not {', '.join(trained)}: they would "
                "log their metrics under the same names in one MLflow run."
            )
        sections = sorted(name for name in pipeline.inputs() if name.startswith(PARAMS_PREFIX))
        problems: list[str] = []
        for dataset in sections:
            value = catalog.load(dataset)
            if isinstance(value, InvalidParameters):
                problems.extend(value.explain(dataset.removeprefix(PARAMS_PREFIX)))
        if not problems:
            problems = self._costs(sections, catalog)
        if problems:
            raise ParameterError(
                "Invalid parameters, nothing was run:\n  "
                + "\n  ".join(problems)
                + "\nSet them in conf/<env>/parameters_*.yml or on the command line: "
                f"{command} --params=<key>=<value>"
            )

    @staticmethod
    def _costs(sections: list[str], catalog: DataCatalog) -> list[str]:
        """Image and batch sizes that the disk or the memory cannot hold."""
        values = {name.removeprefix(PARAMS_PREFIX): catalog.load(name) for name in sections}
        split = values.get("cats_vs_dogs")
        problems = []
        for key, value in values.items():
            if isinstance(value, ImageInput) and isinstance(split, CatsVsDogsData):
                namespace = key.removesuffix(".input")
                decoded = catalog.get(f"{namespace}.cats_vs_dogs_decoded")
                cache = getattr(decoded, "_path", None)
                problems += image_input_costs(key, value, split, cache)
            elif isinstance(value, MnistTraining):
                problems += mnist_costs(key, value)
        return problems


class ProjectLockHook:
    """One run at a time per project folder (``project_lock``), and no stale staging.

    Killed runs' temporary folders outside the project (``scratch``) go at the start too.

    Registered before ``ParameterHook`` in ``settings.HOOKS`` so that it runs after the
    parameter check and before kedro-mlflow opens its run: a refused run writes nothing.
    """

    def __init__(self) -> None:
        self._lock: ProjectLock | None = None

    @hook_impl(tryfirst=True)
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog
    ) -> None:
        self._release()  # a run whose start failed after the lock was taken
        data_dir = Path(run_params.get("project_path") or ".") / "data"
        self._lock = ProjectLock(data_dir)
        self._lock.acquire(list(run_params.get("pipeline_names") or []))
        remove_stale_staging(data_dir)
        remove_abandoned_scratch()

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._release()

    @hook_impl
    def on_pipeline_error(self) -> None:
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None


class TrainingStateHook:
    """Deletes a model's resume state once the run has persisted everything made from it.

    A namespace's state is released after a successful run that included its last
    write (the node ``<namespace>.register_servable_model``): the catalog's model
    files, metric histories, MLflow models and the registry are then written. Until
    then a re-run after a crash reuses the finished training instead of training again.
    """

    FINAL_NODE = "register_servable_model"

    @hook_impl
    def after_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog
    ) -> None:
        for node in pipeline.nodes:
            if node.namespace and node.name == f"{node.namespace}.{self.FINAL_NODE}":
                state = f"{node.namespace}.training_state"
                if catalog.exists(state):
                    catalog.load(state).release()
                    logger.info("Released the resume state of %s: the run is complete", state)


class ProjectMlflowHook(MlflowHook):
    """kedro-mlflow's hook, with additions; registered in ``settings.HOOKS`` in
    place of the plugin's own instance.

    - Typed parameters are logged by key, as dicts are: the plugin's ``before_node_run``
      flattens only dicts, so a parsed section would be one long string.
    - ``tracking.system_metrics: true`` in ``mlflow.yml`` records MLflow's system
      metrics (CPU, memory) on the run. The plugin's schema has no such key, so it is
      taken out before the plugin reads the file.
    - The run's log (this process's log records from the pipeline's start to its end)
      is attached to the MLflow run as ``logs/kedro_run.log``.
    - Each run is tagged with its process (host, pid, start time); a RUNNING run of
      this tracking store whose process on this host is gone (``kill -9``, power
      loss) is marked KILLED when the next run starts, with the reason as a tag.
    - Before MLflow is first touched, a sqlite store is opened under a lock of its own
      (``tracking_store_lock``) and checked (``check_tracking_store``,
      ``check_artifact_location``); MLflow's HTTP retries are bounded.
    """

    LOG_ARTIFACT = "logs"

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        loader = context.config_loader
        if "mlflow" not in loader.config_patterns:  # as the plugin registers it
            loader.config_patterns.update({"mlflow": ["mlflow*", "mlflow*/**", "**/mlflow*"]})
        try:
            conf = dict(loader["mlflow"])
        except Exception:  # noqa: BLE001 - no mlflow.yml: the plugin's defaults apply
            conf = {}
        server = dict(conf.get("server") or {})
        uri = absolute_tracking_uri(server.get("mlflow_tracking_uri") or "", context.project_path)
        if uri:
            server["mlflow_tracking_uri"] = uri
            conf["server"] = server
        tracking = dict(conf.get("tracking") or {})
        bound_mlflow_http_retries()
        # The first MLflow client on a new sqlite file runs MLflow's migrations: two
        # first runs at once would both create its tables and could leave it broken.
        with tracking_store_lock(uri):
            check_tracking_store(uri)
            if uri:
                # MLflow puts a new experiment's artifacts in ./mlruns of the working
                # directory: a session opened elsewhere (a notebook in notebooks/, a
                # test) would send them out of the project.
                with contextlib.chdir(context.project_path):
                    experiment = create_experiment_once(uri, tracking.get("experiment") or {})
                check_artifact_location(uri, experiment, context.project_path)
        self._system_metrics = bool(tracking.pop("system_metrics", False))
        if conf:
            loader["mlflow"] = {**conf, "tracking": tracking}  # the plugin reads this copy
        super().after_context_created(context)

    @hook_impl
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog
    ) -> None:
        self._log_handler = self._start_run_log()
        close_orphan_runs(mlflow.MlflowClient())
        if getattr(self, "_system_metrics", False):
            mlflow.enable_system_metrics_logging()  # read when the plugin starts its run
        try:
            super().before_pipeline_run(run_params=run_params, pipeline=pipeline, catalog=catalog)
        finally:
            if getattr(self, "_system_metrics", False):
                mlflow.disable_system_metrics_logging()  # the monitor already started stays
        if mlflow.active_run() is not None:
            mlflow.set_tags({**process_tags(), **command_tags(run_params)})
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


HOST_TAG, PID_TAG, STARTED_TAG = "process.host", "process.pid", "process.started"
# MLflow 3's UI opens an experiment of this kind on its runs, not on GenAI traces.
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"


def absolute_tracking_uri(uri: str, project_path: Path) -> str:
    """A relative ``sqlite:///mlflow.db`` made absolute against the project root.

    MLflow resolves it against the working directory, so a notebook kernel started in
    ``notebooks/`` (as Jupyter does) would open a new, empty ``notebooks/mlflow.db``.
    """
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or uri.startswith(prefix + "/"):
        return uri
    path = uri.removeprefix(prefix)
    if path in ("", ":memory:") or path.startswith(":"):
        return uri
    return prefix + str((Path(project_path) / path).resolve())


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


KILLED_REASON_TAG = "killed_reason"


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


def create_experiment_once(uri: str, experiment: dict[str, Any]) -> Experiment | None:
    """Create the experiment, tolerating another run that creates it at the same time;
    returns it.

    The plugin looks the experiment up and then creates it: two first runs on one
    store (a shared server) both try, and the second failed on the unique name.
    """
    name = experiment.get("name") or "Default"
    client = mlflow.MlflowClient(tracking_uri=uri)
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        kind = existing.tags.get(EXPERIMENT_KIND_TAG)
        if kind != EXPERIMENT_KIND and existing.lifecycle_stage == "active":
            try:
                client.set_experiment_tag(
                    existing.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND
                )
            except mlflow.exceptions.MlflowException as exc:  # a store we may not edit
                logger.warning("Could not tag experiment %s: %s", name, exc)
        return existing  # a deleted one is restored by kedro-mlflow
    options = experiment.get("create_experiment_kwargs") or {}
    tags = {**(options.get("tags") or {}), EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
    try:
        client.create_experiment(
            name, artifact_location=options.get("artifact_location"), tags=tags
        )
    except mlflow.exceptions.MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    return client.get_experiment_by_name(name)


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


def _sqlite_path(uri: str) -> Path | None:
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
    path = _sqlite_path(uri)
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
    path = _sqlite_path(uri)
    if path is None:
        return
    _check_writable(path)
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


def _check_writable(path: Path) -> None:
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


def check_artifact_location(uri: str, experiment: Experiment | None, project_path: Path) -> None:
    """Refuse a store copied (or moved) from another project folder.

    A sqlite store records each experiment's artifact location as an absolute path:
    in a copy of a project, runs would write their models into the original folder's
    ``mlruns/``.
    """
    import urllib.parse  # noqa: PLC0415

    path = _sqlite_path(uri)
    if path is None or experiment is None:
        return
    root = Path(project_path).resolve()
    if not path.resolve().is_relative_to(root):
        return  # a store outside the project is shared on purpose
    location = experiment.artifact_location or ""
    parsed = urllib.parse.urlparse(location)
    if parsed.scheme == "file":
        artifacts = Path(urllib.parse.unquote(parsed.path))
    elif parsed.scheme == "" or (len(parsed.scheme) == 1 and os.name == "nt"):
        artifacts = Path(location)
    else:
        return  # s3://, mlflow-artifacts:/ ...: not a folder of a project
    if not artifacts.is_absolute():
        return
    artifacts = artifacts.resolve()
    origin = artifacts.parent.parent
    default_of_origin = (
        artifacts.name == experiment.experiment_id and artifacts.parent.name == "mlruns"
    )
    if not default_of_origin or artifacts.is_relative_to(root):
        return
    database = path.resolve()
    raise TrackingStoreError(
        f"The MLflow tracking database {database} was made in another project folder, "
        f"{origin}: its experiment {experiment.name!r} keeps its artifacts in {artifacts}, "
        f"so the runs of this folder ({root}) would write their models there. This folder "
        f"is a copy (or a move) of {origin}. To give it a store of its own, move its "
        f"database aside (mv {database} {database}.from-{origin.name}): the next run starts "
        f"a new one. To keep one history, run from {origin} instead (copy your changes back)."
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
