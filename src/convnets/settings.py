"""Project settings. kedro-mlflow registers its hook through its entry point."""

from importlib.metadata import version

from kedro.config import OmegaConfigLoader


def installed_requirements(*packages: str) -> list[str]:
    """``name==version`` of installed ``packages``, for an MLflow model's requirements.

    Given explicitly, they spare ``mlflow.keras.log_model`` its requirement inference,
    which reloads the model in a subprocess (about 15 s a model here).
    """
    return [f"{package}=={version(package)}" for package in packages]


CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Deep-merge environments, so conf/quick/ overrides single keys such as
    # catdog.training.epochs instead of replacing whole top-level entries.
    "merge_strategy": {"parameters": "soft", "mlflow": "soft"},
    "custom_resolvers": {"installed_requirements": installed_requirements},
}
