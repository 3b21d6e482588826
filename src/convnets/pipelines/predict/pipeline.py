"""The predict pipeline: ``kedro run --pipelines=predict``."""

from kedro.pipeline import Pipeline, node, pipeline

from convnets.pipelines.predict import nodes


def create_pipeline(**kwargs) -> Pipeline:
    """Classify every picture of ``predict_pictures`` with ``predict_model``."""
    return pipeline(
        [
            node(
                nodes.describe_model,
                inputs="model_description",
                outputs="model_tags",
                name="describe_model",
                tags="prediction",
            ),
            node(
                nodes.predict_images,
                inputs=["pictures", "model", "params:predict"],
                outputs=["predictions", "metrics", "predictions_plot"],
                name="predict_images",
                tags="prediction",
            ),
        ],
        namespace="predict",
        inputs={
            "pictures": "predict_pictures",
            "model": "predict_model",
            "model_description": "predict_model_description",
        },
        parameters={"params:predict"},
    )
