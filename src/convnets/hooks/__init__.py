"""Project hooks, registered in ``settings.HOOKS``.

- ``GuardHook``: the checks before a run writes anything (tracking store, parameters,
  project lock), in an order written in ``guard.py``.
- ``ProjectMlflowHook``: kedro-mlflow's hook, managing the MLflow run's life.
- ``TrainingStateHook``: resume states released once a run has persisted their
  results, on the node tag ``pipelines.RELEASES_TRAINING_STATE``.
"""

from convnets.hooks.guard import GuardHook
from convnets.hooks.mlflow_run import ProjectMlflowHook, end_active_run
from convnets.hooks.training_state import TrainingStateHook

__all__ = ["GuardHook", "ProjectMlflowHook", "TrainingStateHook", "end_active_run"]
