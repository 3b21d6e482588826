"""The MNIST pipeline: ingestion, preprocessing, training and evaluation of listing 8.1."""

from kedro.pipeline import Pipeline, node, pipeline

from convnets.pipelines import training_report
from convnets.pipelines.mnist import nodes


def create_pipeline(**kwargs) -> Pipeline:
    """MNIST digits under the ``mnist`` namespace; reuse it for another keras-format npz.

    ``raw_dataset`` names the catalog entry of the npz (``mnist_raw`` by default), so
    the same nodes serve Fashion-MNIST under another namespace.
    """
    namespace = kwargs.get("namespace", "mnist")
    raw_dataset = kwargs.get("raw_dataset", "mnist_raw")
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
                inputs=["x_train", "y_train", "params:training"],
                outputs=["model_keras", "best_checkpoint_keras", "history"],
                name="train_model",
                tags="training",
            ),
            node(
                nodes.evaluate_model,
                inputs=["model_keras", "x_test", "y_test", "params:class_names"],
                outputs=[
                    "test_metrics",
                    "confusion_matrix",
                    "per_class_metrics",
                    "confusion_matrix_plot",
                ],
                name="evaluate_model",
                tags="evaluation",
            ),
        ]
    )
    return pipeline(
        template + training_report.create_pipeline(),
        namespace=namespace,
        inputs={"raw_arrays": raw_dataset},
    )
