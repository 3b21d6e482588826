"""The book_epoch pipeline: ``kedro run --pipelines=book_epoch``."""

from kedro.pipeline import Pipeline, node, pipeline

from convnets.pipelines.book_epoch import nodes


def create_pipeline(**kwargs) -> Pipeline:
    """The book's epoch time on this processor, logged with its flags as its own MLflow run.

    Not tagged ``training``: it trains no model to keep, and no training run reads it;
    the report joins the two by the processor flags.
    """
    return pipeline(
        [
            node(
                nodes.measure_book_epoch,
                inputs="params:book_epoch",
                outputs=["metrics", "processor_tags"],
                name="measure_book_epoch",
                tags="benchmark",
            )
        ],
        namespace="book_epoch",
        parameters={"params:book_epoch"},
    )
