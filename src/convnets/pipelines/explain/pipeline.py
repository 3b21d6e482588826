"""The explain pipeline: ``kedro run --pipelines=explain``."""

from kedro.pipeline import Pipeline, node, pipeline

from convnets.pipelines.explain import nodes
from convnets.pipelines.predict.nodes import describe_model

PICTURES = ["split", "keras_model", "serving_config", "test_scores", "params:explain"]


def create_pipeline(**kwargs) -> Pipeline:
    """``predict_model`` explained on the test split of ``cats_vs_dogs_small``.

    ``prepare_model`` refuses a model it cannot explain before any other node runs:
    every other node reads its outputs.
    """
    return pipeline(
        [
            node(
                describe_model,
                inputs="model_description",
                outputs="model_tags",
                name="describe_model",
                tags="explanation",
            ),
            node(
                nodes.prepare_model,
                inputs=["model", "params:explain"],
                outputs=["keras_model", "serving_config"],
                name="prepare_model",
                tags="explanation",
            ),
            node(
                nodes.score_test_split,
                inputs=[
                    "split",
                    "keras_model",
                    "serving_config",
                    "params:cats_vs_dogs",
                    "params:explain",
                ],
                outputs="test_scores",
                name="score_test_split",
                tags="explanation",
            ),
            node(
                nodes.plot_activations_of_one_picture,
                inputs=PICTURES,
                outputs="activations_plot",
                name="plot_activations",
                tags="explanation",
            ),
            node(
                nodes.plot_filter_patterns_of_three_layers,
                inputs=["keras_model", "serving_config", "params:explain"],
                outputs="filter_patterns_plot",
                name="plot_filter_patterns",
                tags="explanation",
            ),
            node(
                nodes.plot_grad_cam,
                inputs=PICTURES,
                outputs="grad_cam_plot",
                name="plot_grad_cam",
                tags="explanation",
            ),
            node(
                nodes.plot_worst_mistakes,
                inputs=PICTURES,
                outputs="worst_mistakes_plot",
                name="plot_worst_mistakes",
                tags="explanation",
            ),
            node(
                nodes.evaluate_probabilities,
                inputs=["test_scores", "serving_config", "params:explain"],
                outputs=["metrics", "calibration", "roc_pr_plot", "reliability_plot"],
                name="evaluate_probabilities",
                tags="explanation",
            ),
        ],
        namespace="explain",
        inputs={
            "split": "cats_vs_dogs_small",
            "model": "predict_model",
            "model_description": "predict_model_description",
        },
        parameters={"params:explain", "params:cats_vs_dogs"},
    )
