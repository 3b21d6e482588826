"""The report pipeline: ``kedro run --pipelines=report``."""

from kedro.pipeline import Pipeline, node, pipeline

from convnets.pipelines.report import nodes


def create_pipeline(**kwargs) -> Pipeline:
    """The latest finished run of each training pipeline, compared in a table and a chart."""
    return pipeline(
        [
            node(
                nodes.write_comparison,
                inputs=["mlflow_runs", "params:report"],
                outputs=["comparison", "comparison_plot"],
                name="write_comparison",
                tags="reporting",
            )
        ],
        namespace="report",
        inputs={"mlflow_runs"},
        parameters={"params:report"},
    )
