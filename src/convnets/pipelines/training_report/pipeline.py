"""The reporting stage every model pipeline ends with."""

from kedro.pipeline import Pipeline, node, pipeline

from convnets.pipelines import RELEASES_TRAINING_STATE
from convnets.pipelines.training_report import nodes


def create_pipeline(**kwargs) -> Pipeline:
    """``history`` to the training curves; both saved models to MLflow, the best
    checkpoint as a servable, registered model (``serving_spec`` comes from the model
    pipeline).

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
                nodes.log_final_model,
                inputs="model_keras",
                outputs="mlflow_model",
                name="log_final_model",
                tags="evaluation",
            ),
            node(
                nodes.package_servable_model,
                inputs=["best_checkpoint_keras", "best_checkpoint_test_accuracy", "serving_spec"],
                outputs="servable_model",
                name="register_servable_model",
                # The last write made from the training: its resume state can go.
                tags=["evaluation", RELEASES_TRAINING_STATE],
            ),
        ]
    )
