"""The reporting stage every model pipeline ends with."""

from kedro.pipeline import Pipeline, node, pipeline

from convnets.pipelines.training_report import nodes


def create_pipeline(**kwargs) -> Pipeline:
    """``history`` to the training curves; both saved models to MLflow.

    Added to a model pipeline before it is namespaced, so its dataset names
    (``history``, ``model_keras`` …) resolve inside that namespace.
    """
    return pipeline(
        [
            node(
                nodes.report_training,
                inputs=["history", "params:title"],
                outputs="training_curves_plot",
                name="report_training",
                tags="evaluation",
            ),
            node(
                nodes.log_models,
                inputs=["model_keras", "best_checkpoint_keras"],
                outputs=["mlflow_model", "mlflow_best_checkpoint"],
                name="log_mlflow_models",
                tags="evaluation",
            ),
        ]
    )
