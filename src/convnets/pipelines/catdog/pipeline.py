"""Cats vs dogs: one shared data pipeline, one model pipeline reused under namespaces."""

from kedro.pipeline import Pipeline, node, pipeline

from convnets.pipelines import training_report
from convnets.pipelines.catdog import nodes

# Datasets made by the shared data pipeline and read by every model namespace.
SHARED_INPUTS = {"cats_vs_dogs_train", "cats_vs_dogs_validation", "cats_vs_dogs_test"}


def create_data_pipeline(**kwargs) -> Pipeline:
    """Ingestion and preprocessing, shared by ``catdog`` and ``catdog_baseline``."""
    return pipeline(
        [
            node(
                nodes.make_subset,
                inputs=["dogs_vs_cats_raw", "params:dogs_vs_cats", "cats_vs_dogs_image_checks"],
                outputs=[
                    "cats_vs_dogs_manifest",
                    "cats_vs_dogs_small",
                    "cats_vs_dogs_image_report",
                    "cats_vs_dogs_ingestion_metrics",
                    "cats_vs_dogs_image_checks_updated",
                ],
                name="make_subset",
                tags="ingestion",
            ),
            node(
                nodes.decode_images,
                inputs=["cats_vs_dogs_small", "params:dogs_vs_cats"],
                outputs="cats_vs_dogs_decoded",
                name="decode_images",
                tags="preprocessing",
            ),
            node(
                nodes.make_datasets,
                inputs=["cats_vs_dogs_decoded", "params:dogs_vs_cats"],
                outputs=["cats_vs_dogs_train", "cats_vs_dogs_validation", "cats_vs_dogs_test"],
                name="make_datasets",
                tags="preprocessing",
            ),
        ]
    )


def create_model_pipeline(namespace: str, augmentation_figure: bool = False) -> Pipeline:
    """Training and evaluation of the model described by ``params:<namespace>``."""
    nodes_list = [
        node(
            nodes.train_model,
            inputs=[
                "cats_vs_dogs_train",
                "cats_vs_dogs_validation",
                "params:architecture",
                "params:training",
            ],
            outputs=["model_keras", "best_checkpoint_keras", "history"],
            name="train_model",
            tags="training",
        ),
        node(
            nodes.evaluate_model,
            inputs=["best_checkpoint_keras", "cats_vs_dogs_test", "params:dogs_vs_cats.classes"],
            outputs=[
                "test_metrics",
                "confusion_matrix",
                "per_class_metrics",
                "confusion_matrix_plot",
            ],
            name="evaluate_model",
            tags="evaluation",
        ),
        node(
            nodes.evaluate_final_model,
            inputs=["model_keras", "cats_vs_dogs_test"],
            outputs="final_model_test_metrics",
            name="evaluate_final_model",
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
        parameters={"params:dogs_vs_cats.classes"},
    )
