"""The shared cats-vs-dogs data pipeline: archive to checked split (listing 8.6)."""

from kedro.pipeline import Pipeline, node, pipeline

from convnets.pipelines.cats_vs_dogs_data import nodes


def create_pipeline(**kwargs) -> Pipeline:
    """``cats_vs_dogs_raw`` to ``cats_vs_dogs_small``: one split on disk for every model."""
    return pipeline(
        [
            node(
                nodes.make_subset,
                inputs=["cats_vs_dogs_raw", "params:cats_vs_dogs", "cats_vs_dogs_image_checks"],
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
        ]
    )
