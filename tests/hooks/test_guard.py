"""The hooks' order is written in code: the guard's checks run in PIPELINE_CHECKS order,
and pluggy calls the project's hooks in one order whatever settings.HOOKS lists first."""

import pytest
from kedro.framework.hooks.manager import _create_hook_manager, _register_hooks

from convnets import settings
from convnets.hooks.guard import GuardHook
from convnets.hooks.mlflow_run import ProjectMlflowHook
from convnets.hooks.training_state import TrainingStateHook
from convnets.parameters import ParameterError

# What each hook of a run's life calls, first to last, among the project's hooks.
CALL_ORDER = {
    "after_context_created": [GuardHook, ProjectMlflowHook],
    "before_pipeline_run": [GuardHook, ProjectMlflowHook],
    "after_pipeline_run": [TrainingStateHook, ProjectMlflowHook, GuardHook],
    "on_pipeline_error": [ProjectMlflowHook, GuardHook],
}


def _call_order(hooks) -> dict[str, list[type]]:
    manager = _create_hook_manager()
    _register_hooks(manager, hooks)
    order = {}
    for name in CALL_ORDER:
        # pluggy calls a hook's implementations from the end of this list to its start.
        implementations = reversed(getattr(manager.hook, name).get_hookimpls())
        order[name] = [type(impl.plugin) for impl in implementations]
    return order


@pytest.mark.parametrize("reverse", [False, True], ids=["as_listed", "reversed"])
def test_the_project_hooks_run_in_one_order_whatever_their_registration_order(reverse):
    hooks = tuple(reversed(settings.HOOKS)) if reverse else settings.HOOKS
    assert {type(hook) for hook in hooks} == {GuardHook, ProjectMlflowHook, TrainingStateHook}
    assert _call_order(hooks) == CALL_ORDER


def test_the_guard_checks_parameters_then_takes_the_lock():
    assert GuardHook.PIPELINE_CHECKS == ("parameters", "project_lock")
    guard, calls = GuardHook(), []
    guard.parameters.before_pipeline_run = lambda *args: calls.append("parameters")
    guard.project_lock.before_pipeline_run = lambda *args: calls.append("project_lock")
    guard.before_pipeline_run(run_params={}, pipeline=None, catalog=None)
    assert calls == ["parameters", "project_lock"]


def test_a_run_refused_for_its_parameters_takes_no_lock(tmp_path):
    guard = GuardHook()
    run_params = {"project_path": str(tmp_path), "pipeline_names": ["catdog", "catdog_fast"]}
    with pytest.raises(ParameterError, match="one training pipeline at a time"):
        guard.before_pipeline_run(run_params=run_params, pipeline=None, catalog=None)
    assert guard.project_lock._lock is None  # noqa: SLF001
    assert not (tmp_path / "data").exists()
