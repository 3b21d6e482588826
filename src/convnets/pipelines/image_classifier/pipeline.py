"""One cats-vs-dogs model, from the shared split to its evaluation, under its namespace."""

from kedro.pipeline import Pipeline, node, pipeline

from convnets.pipelines import training_report
from convnets.pipelines.image_classifier import nodes

# Shared by every model namespace: the split on disk and its parameters.
SHARED_INPUTS = {"cats_vs_dogs_small"}
SHARED_PARAMETERS = {"params:cats_vs_dogs", "params:serving"}


def create_pipeline(namespace: str, augmentation_figure: bool = False) -> Pipeline:
    """The model ``params:<namespace>`` describes: its input size, architecture, training.

    Every model logs its training cost (``report_training_cost``); the report expresses it
    in book-epoch equivalents, from the ``book_epoch`` pipeline's runs.
    """
    nodes_list = [
        node(
            nodes.decode_images,
            inputs=["cats_vs_dogs_small", "params:cats_vs_dogs", "params:input"],
            outputs="cats_vs_dogs_decoded",
            name="decode_images",
            tags="preprocessing",
        ),
        node(
            nodes.make_datasets,
            inputs=["cats_vs_dogs_decoded", "params:input"],
            outputs=["cats_vs_dogs_train", "cats_vs_dogs_validation", "cats_vs_dogs_test"],
            name="make_datasets",
            tags="preprocessing",
        ),
        node(
            nodes.train_model,
            inputs=[
                "cats_vs_dogs_train",
                "cats_vs_dogs_validation",
                "params:architecture",
                "params:training",
                "training_state",
            ],
            outputs=["model_keras", "best_checkpoint_keras", "history", "training_tags"],
            name="train_model",
            tags="training",
        ),
        node(
            nodes.evaluate_best_checkpoint,
            inputs=["best_checkpoint_keras", "cats_vs_dogs_test", "params:cats_vs_dogs"],
            outputs=[
                "best_checkpoint_test_metrics",
                "best_checkpoint_test_accuracy",
                "confusion_matrix",
                "per_class_metrics",
                "confusion_matrix_plot",
            ],
            name="evaluate_best_checkpoint",
            tags="evaluation",
        ),
        node(
            nodes.describe_serving,
            inputs=["cats_vs_dogs_small", "params:cats_vs_dogs", "params:input", "params:serving"],
            outputs="serving_spec",
            name="describe_serving",
            tags="evaluation",
        ),
        node(
            nodes.evaluate_final_model,
            inputs=["model_keras", "cats_vs_dogs_test", "params:cats_vs_dogs"],
            outputs="final_model_test_metrics",
            name="evaluate_final_model",
            tags="evaluation",
        ),
        node(
            nodes.report_training_cost,
            inputs="history",
            outputs=["training_cost_metrics", "training_cost_tags"],
            name="report_training_cost",
            tags="evaluation",
        ),
    ]
    if augmentation_figure:
        nodes_list.append(
            node(
                nodes.plot_augmented_images,
                inputs=["cats_vs_dogs_train", "params:architecture"],
                outputs="augmentation_samples_plot",
                name="plot_augmented_images",
                tags="evaluation",
            )
        )
    return pipeline(
        pipeline(nodes_list) + training_report.create_pipeline(),
        namespace=namespace,
        inputs=SHARED_INPUTS,
        parameters=SHARED_PARAMETERS,
    )
