"""Nodes of the report pipeline: the latest training runs compared, and the frontier."""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from convnets.parameters import Report
from convnets.pipelines.report import frontier
from convnets.pipelines.report.runs import HEADLINE, PIPELINE, RUN_NAME, short_commit, with_pipeline

logger = logging.getLogger(__name__)


def _duration(seconds: float) -> str:
    if math.isnan(seconds):
        return "–"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {secs} s"


def _value(row: pd.Series, column: str) -> float:
    value = row.get(column)
    return float(value) if value is not None and not pd.isna(value) else math.nan


def latest_runs(runs: pd.DataFrame, report: Report) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The latest FINISHED run of each training pipeline, and the unfinished runs apart.

    Runs of other pipelines (``predict``, ``report``) are not training runs, nor are
    filtered runs that scored no model (``--tags=ingestion``).
    """
    if runs.empty or RUN_NAME not in runs:
        return pd.DataFrame(), pd.DataFrame()
    runs = with_pipeline(runs)
    training = runs[runs[PIPELINE].isin(report.training_pipelines)].sort_values(
        "start_time", ascending=False
    )
    scored = training.get(f"metrics.{HEADLINE}", pd.Series(index=training.index)).notna()
    finished = training[(training.status == "FINISHED") & scored].drop_duplicates(PIPELINE)
    order = {name: index for index, name in enumerate(report.training_pipelines)}
    finished = finished.sort_values(PIPELINE, key=lambda names: names.map(order))
    unfinished = training[training.status != "FINISHED"]
    rows = []
    for _, run in finished.iterrows():
        name = run[PIPELINE]
        peak = _value(run, "metrics.peak_rss_mb")
        rows.append(
            {
                "pipeline": name,
                "best_checkpoint_test_accuracy": _value(
                    run, "metrics.best_checkpoint_test_accuracy"
                ),
                "final_model_test_accuracy": _value(run, "metrics.final_model_test_accuracy"),
                "book_test_accuracy": report.book_test_accuracy.get(name),
                "epochs": run.get(f"params.{name}.training.epochs") or "–",
                "wall_time_s": (run.end_time - run.start_time).total_seconds(),
                "peak_rss_gb": peak / 1024 if not math.isnan(peak) else math.nan,
                "started": run.start_time,
                "commit": short_commit(run),
                "run_id": run.run_id,
            }
        )
    return pd.DataFrame(rows), unfinished


def write_comparison(runs: pd.DataFrame, report: Report) -> tuple[str, Figure]:
    """Reporting: the comparison as Markdown, and a chart of the test accuracies."""
    latest, unfinished = latest_runs(runs, report)
    store, experiment = runs.attrs.get("tracking_uri", "?"), runs.attrs.get("experiment", "?")
    lines = [
        "# Latest training runs",
        "",
        f"Tracking store `{store}`, experiment `{experiment}`: the latest FINISHED run of "
        "each training pipeline. Written by `kedro run --pipelines=report`.",
        "",
    ]
    if latest.empty:
        first, env = report.training_pipelines[0], report.env_option
        lines.append(
            f"No finished training run in experiment `{experiment}` yet: run one first, for "
            f"example `kedro run --pipelines={first}{env}`, then "
            f"`kedro run --pipelines=report{env}`."
        )
        logger.warning("No finished training run to compare in experiment %s", experiment)
    else:
        lines += [
            "| pipeline | test accuracy, best checkpoint | test accuracy, final model | book "
            "| epochs | wall time | peak RSS | started | commit | run |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for row in latest.itertuples():
            book = "–" if pd.isna(row.book_test_accuracy) else f"{row.book_test_accuracy:.3f}"
            peak = "–" if math.isnan(row.peak_rss_gb) else f"{row.peak_rss_gb:.2f} GB"
            lines.append(
                f"| `{row.pipeline}` | {row.best_checkpoint_test_accuracy:.4f} | "
                f"{row.final_model_test_accuracy:.4f} | {book} | {row.epochs} | "
                f"{_duration(row.wall_time_s)} | {peak} | {row.started:%Y-%m-%d %H:%M} | "
                f"{row.commit} | `{row.run_id}` |"
            )
    if not unfinished.empty:
        lines += [
            "",
            "Not finished (not in the table or the chart):",
            "",
            "| pipeline | status | started | run |",
            "| --- | --- | --- | --- |",
        ]
        lines += [
            f"| `{run[PIPELINE]}` | {run.status} | {run.start_time:%Y-%m-%d %H:%M} | "
            f"`{run.run_id}` |"
            for _, run in unfinished.iterrows()
        ]
    return "\n".join(lines) + "\n", _accuracy_chart(latest)


def _accuracy_chart(latest: pd.DataFrame) -> Figure:
    figure, axis = plt.subplots(figsize=(8, 1.2 + 0.6 * max(1, len(latest))))
    if latest.empty:
        axis.text(0.5, 0.5, "No finished training run yet", ha="center", va="center")
        axis.axis("off")
        return figure
    positions = np.arange(len(latest))
    axis.barh(positions - 0.2, latest.best_checkpoint_test_accuracy, 0.4, label="best checkpoint")
    axis.barh(positions + 0.2, latest.final_model_test_accuracy, 0.4, label="final model")
    book = latest.book_test_accuracy.astype(float)
    axis.scatter(book, positions, marker="|", s=400, color="black", label="the book", zorder=3)
    axis.set_yticks(positions, latest.pipeline)
    axis.invert_yaxis()
    axis.set_xlim(0.0, 1.0)  # a model at chance (0.5) still shows its bar
    axis.set_xlabel("test accuracy")
    axis.legend(loc="lower right", fontsize=8)
    axis.set_title("Latest finished run of each training pipeline")
    figure.tight_layout()
    return figure


def draw_frontier(runs: pd.DataFrame, report: Report) -> tuple[pd.DataFrame, Figure]:
    """Reporting: test accuracy against training cost in book-epoch equivalents, for every
    finished cats-vs-dogs run, beside the book's printed figures.

    The table lists every run, those of unknown cost too (``book_epoch_equivalents``
    empty, ``cost_source`` saying why); only runs of known cost are drawn.
    """
    points = frontier.frontier_points(runs, report)
    unknown = points[points.book_epoch_equivalents.isna()]
    if not unknown.empty:
        logger.warning(
            "Not on the frontier, cost unknown: %s",
            ", ".join(
                f"{row.pipeline} {row.run_id} ({row.cost_source})" for row in unknown.itertuples()
            ),
        )
    return points, frontier.plot_frontier(points, report)
