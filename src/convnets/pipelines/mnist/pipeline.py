"""The MNIST pipeline: ingestion, preprocessing, training and evaluation of listing 8.1."""

from kedro.pipeline import Pipeline, node, pipeline

from convnets.pipelines import training_report
from convnets.pipelines.mnist import nodes


def create_pipeline(namespace: str = "mnist", raw_dataset: str = "mnist_raw") -> Pipeline:
    """MNIST digits under the ``mnist`` namespace; reuse it for another keras-format npz.

    ``raw_dataset`` names the catalog entry of the npz, so the same nodes serve
    Fashion-MNIST under another namespace.
    """
    template = pipeline(
        [
            node(
                nodes.split_arrays,
                inputs="raw_arrays",
                outputs=["x_train_raw", "y_train", "x_test_raw", "y_test"],
                name="split_arrays",
                tags="ingestion",
            ),
            node(
                nodes.scale_images,
                "x_train_raw",
                "x_train",
                name="scale_train_images",
                tags="preprocessing",
            ),
            node(
                nodes.scale_images,
                "x_test_raw",
                "x_test",
                name="scale_test_images",
                tags="preprocessing",
            ),
            node(
                nodes.train_model,
                inputs=["x_train", "y_train", "params:training", "training_state"],
                outputs=["model_keras", "best_checkpoint_keras", "history", "training_tags"],
                name="train_model",
                tags="training",
            ),
            node(
                nodes.evaluate_final_model,
                inputs=["model_keras", "x_test", "y_test", "params:class_names"],
                outputs=[
                    "final_model_test_metrics",
                    "confusion_matrix",
                    "per_class_metrics",
                    "confusion_matrix_plot",
                ],
                name="evaluate_final_model",
                tags="evaluation",
            ),
            node(
                nodes.evaluate_best_checkpoint,
                inputs=["best_checkpoint_keras", "x_test", "y_test"],
                outputs=["best_checkpoint_test_metrics", "best_checkpoint_test_accuracy"],
                name="evaluate_best_checkpoint",
                tags="evaluation",
            ),
            node(
                nodes.describe_serving,
                inputs=[
                    "x_test_raw",
                    "y_test",
                    "params:class_names",
                    "params:max_image_pixels",
                    "params:serving",
                ],
                outputs="serving_spec",
                name="describe_serving",
                tags="evaluation",
            ),
        ]
    )
    return pipeline(
        template + training_report.create_pipeline(),
        namespace=namespace,
        inputs={"raw_arrays": raw_dataset},
        parameters={"params:serving"},  # shared by every model
    )
