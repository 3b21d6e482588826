"""Nodes every model pipeline ends with: metric histories, curves, MLflow models."""

from kedro.pipeline import Pipeline, node, pipeline

from convnets.reporting import report_training
from convnets.training import log_models


def create_pipeline(**kwargs) -> Pipeline:
    """``history`` to MLflow metric histories and curves; both saved models to MLflow.

    Added to a model pipeline before it is namespaced, so its dataset names
    (``history``, ``model_keras`` …) resolve inside that namespace.
    """
    return pipeline(
        [
            node(
                report_training,
                inputs=["history", "params:title"],
                outputs=["training_history", "training_curves_plot"],
                name="report_training",
                tags="evaluation",
            ),
            node(
                log_models,
                inputs=["model_keras", "best_checkpoint_keras"],
                outputs=["mlflow_model", "mlflow_best_checkpoint"],
                name="log_mlflow_models",
                tags="evaluation",
            ),
        ]
    )
