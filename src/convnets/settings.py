"""Project settings. kedro-mlflow registers its hook through its entry point."""

from kedro.config import OmegaConfigLoader

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Deep-merge environments, so conf/quick/ overrides single keys such as
    # catdog.training.epochs instead of replacing whole top-level entries.
    "merge_strategy": {"parameters": "soft", "mlflow": "soft"},
}
