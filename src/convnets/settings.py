"""Project settings: hooks, context, configuration loader."""

from importlib.metadata import version

from convnets import quiet

quiet.install()  # before Kedro builds its config loader and any pipeline imports TensorFlow

from convnets.config.context import ProjectContext  # noqa: E402
from convnets.config.loader import ProjectConfigLoader  # noqa: E402
from convnets.hooks import GuardHook, ProjectMlflowHook, TrainingStateHook  # noqa: E402


def installed_requirements(*packages: str) -> list[str]:
    """``name==version`` of installed ``packages``, for an MLflow model's requirements.

    Given explicitly, they spare ``mlflow.keras.log_model`` its requirement inference,
    which reloads the model in a subprocess.
    """
    return [f"{package}=={version(package)}" for package in packages]


# Their order does not matter: GuardHook's tryfirst / trylast markers place its checks
# (hooks/guard.py), TrainingStateHook's tryfirst its release (tests/hooks/test_guard.py).
HOOKS = (GuardHook(), ProjectMlflowHook(), TrainingStateHook())
# Its own instance is replaced by the subclass above, which logs typed parameters.
DISABLE_HOOKS_FOR_PLUGINS = ("kedro-mlflow", "kedro_mlflow")  # as its metadata spells it

# Keeps sections that do not parse for the parameter check's report (Kedro raises its own first).
CONTEXT_CLASS = ProjectContext
# OmegaConfigLoader, with the registry's training pipelines: conf/ lists none of them.
CONFIG_LOADER_CLASS = ProjectConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Deep-merge environments, so conf/quick/ overrides single keys such as
    # catdog.training.epochs instead of replacing whole top-level entries.
    "merge_strategy": {"parameters": "soft", "mlflow": "soft"},
    "custom_resolvers": {"installed_requirements": installed_requirements},
}
