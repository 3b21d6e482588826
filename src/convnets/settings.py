"""Project settings: hooks, configuration loader."""

from importlib.metadata import version

from convnets import quiet

quiet.install()  # before Kedro builds its config loader and any pipeline imports TensorFlow

from convnets.config_loader import ProjectConfigLoader  # noqa: E402
from convnets.hooks import (  # noqa: E402
    ParameterHook,
    ProjectLockHook,
    ProjectMlflowHook,
    TrainingStateHook,
)


def installed_requirements(*packages: str) -> list[str]:
    """``name==version`` of installed ``packages``, for an MLflow model's requirements.

    Given explicitly, they spare ``mlflow.keras.log_model`` its requirement inference,
    which reloads the model in a subprocess.
    """
    return [f"{package}=={version(package)}" for package in packages]


# Pluggy calls the tryfirst hooks last-registered first: parameters, then the lock.
HOOKS = (ProjectLockHook(), ParameterHook(), ProjectMlflowHook(), TrainingStateHook())
# Its own instance is replaced by the subclass above, which logs typed parameters.
DISABLE_HOOKS_FOR_PLUGINS = ("kedro-mlflow", "kedro_mlflow")  # as its metadata spells it

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
