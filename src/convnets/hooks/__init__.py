"""Project hooks, registered in ``settings.HOOKS``.

- ``GuardHook``: the checks before a run writes anything (tracking store, parameters,
  project lock), in an order written in ``guard.py``.
- ``ProjectMlflowHook``: kedro-mlflow's hook, managing the MLflow run's life.
- ``TrainingStateHook``: resume states released once a run has persisted their
  results, on the node tag ``node_tags.RELEASES_TRAINING_STATE``.
"""

from convnets.hooks.experiment import (
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    absolute_tracking_uri,
    check_artifact_location,
    create_experiment_once,
)
from convnets.hooks.guard import GuardHook
from convnets.hooks.lock import ProjectLockCheck
from convnets.hooks.mlflow_run import (
    HOST_TAG,
    KILLED_REASON_TAG,
    PID_TAG,
    STARTED_TAG,
    ProjectMlflowHook,
    close_orphan_runs,
    command_tags,
    end_active_run,
    process_tags,
)
from convnets.hooks.parameter_check import PARAMS_PREFIX, TRAINING_PIPELINES, ParameterCheck
from convnets.hooks.tracking_store import (
    MLFLOW_HTTP_DEFAULTS,
    STORE_LOCK_TIMEOUT_S,
    TrackingStoreError,
    bound_mlflow_http_retries,
    check_tracking_store,
    tracking_store_lock,
)
from convnets.hooks.training_state import TrainingStateHook

__all__ = [
    "EXPERIMENT_KIND",
    "EXPERIMENT_KIND_TAG",
    "HOST_TAG",
    "KILLED_REASON_TAG",
    "MLFLOW_HTTP_DEFAULTS",
    "PARAMS_PREFIX",
    "PID_TAG",
    "STARTED_TAG",
    "STORE_LOCK_TIMEOUT_S",
    "TRAINING_PIPELINES",
    "GuardHook",
    "ParameterCheck",
    "ProjectLockCheck",
    "ProjectMlflowHook",
    "TrackingStoreError",
    "TrainingStateHook",
    "absolute_tracking_uri",
    "bound_mlflow_http_retries",
    "check_artifact_location",
    "check_tracking_store",
    "close_orphan_runs",
    "command_tags",
    "create_experiment_once",
    "end_active_run",
    "process_tags",
    "tracking_store_lock",
]
