"""The report pipeline: ``kedro run --pipelines=report``."""

from kedro.pipeline import Pipeline, node, pipeline

from convnets.pipelines.report import nodes


def create_pipeline(**kwargs) -> Pipeline:
    """The latest finished run of each training pipeline, compared in a table and a chart;
    every finished cats-vs-dogs run drawn by accuracy and cost (the frontier)."""
    return pipeline(
        [
            node(
                nodes.write_comparison,
                inputs=["mlflow_runs", "params:report"],
                outputs=["comparison", "comparison_plot"],
                name="write_comparison",
                tags="reporting",
            ),
            node(
                nodes.draw_frontier,
                inputs=["mlflow_runs", "params:report"],
                outputs=["frontier", "frontier_plot"],
                name="draw_frontier",
                tags="reporting",
            ),
        ],
        namespace="report",
        inputs={"mlflow_runs"},
        parameters={"params:report"},
    )
