"""The tracking store's URI and experiment as this project's runs need them."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any

import mlflow
from kedro.framework.context import KedroContext
from mlflow.entities import Experiment

from convnets.hooks.store_setup import prepare_tracking_store
from convnets.hooks.tracking_store import (
    TrackingStoreError,
    bound_mlflow_http_retries,
    check_tracking_store,
    sqlite_path,
    tracking_store_lock,
)

logger = logging.getLogger(__name__)

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


def mlflow_conf(context: KedroContext) -> tuple[dict[str, Any], str]:
    """``mlflow.yml`` as the session reads it, and its tracking URI made absolute.

    Registers the ``mlflow`` config pattern as kedro-mlflow does, for a session in
    which this project's hooks read it first.
    """
    loader = context.config_loader
    if "mlflow" not in loader.config_patterns:  # as the plugin registers it
        loader.config_patterns.update({"mlflow": ["mlflow*", "mlflow*/**", "**/mlflow*"]})
    try:
        conf = dict(loader["mlflow"])
    except Exception:  # noqa: BLE001 - no mlflow.yml: the plugin's defaults apply
        conf = {}
    server = dict(conf.get("server") or {})
    uri = absolute_tracking_uri(server.get("mlflow_tracking_uri") or "", context.project_path)
    return conf, uri


def open_tracking_store(context: KedroContext) -> None:
    """Check the session's tracking store and create its experiment, before kedro-mlflow
    first touches MLflow (``TrackingStoreError`` says what is wrong)."""
    conf, uri = mlflow_conf(context)
    bound_mlflow_http_retries()
    # The first MLflow client on a new sqlite file runs MLflow's migrations: two
    # first runs at once would both create its tables and could leave it broken.
    with tracking_store_lock(uri):
        prepare_tracking_store(uri)  # created or upgraded as one rename
        check_tracking_store(uri)
        if uri:
            # MLflow puts a new experiment's artifacts in ./mlruns of the working
            # directory: a session opened elsewhere (a notebook in notebooks/, a
            # test) would send them out of the project.
            with contextlib.chdir(context.project_path):
                tracking = dict(conf.get("tracking") or {})
                experiment = create_experiment_once(uri, tracking.get("experiment") or {})
            check_artifact_location(uri, experiment, context.project_path)


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


def check_artifact_location(uri: str, experiment: Experiment | None, project_path: Path) -> None:
    """Refuse a store copied (or moved) from another project folder.

    A sqlite store records each experiment's artifact location as an absolute path:
    in a copy of a project, runs would write their models into the original folder's
    ``mlruns/``.
    """
    import urllib.parse  # noqa: PLC0415

    path = sqlite_path(uri)
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
