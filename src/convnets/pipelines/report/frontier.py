"""The frontier: test accuracy against training cost, in book-epoch equivalents.

A run's cost is its median epoch time over the book's epoch time on the same processor
flags (the median of the ``book_epoch`` pipeline's runs there), times its epochs. Runs
from before the ``book_epoch`` pipeline logged ``book_epoch_equivalents`` themselves,
timed in the run; that figure is used as they logged it.
"""

from __future__ import annotations

import math

import pandas as pd
from matplotlib import pyplot as plt
from matplotlib.figure import Figure

from convnets.ml.hardware import PROCESSOR_FLAGS_TAG
from convnets.parameters import Report
from convnets.pipelines.report.runs import (
    HEADLINE,
    PIPELINE,
    RUN_NAME,
    short_commit,
    with_pipeline,
)

BOOK_EPOCH_PIPELINE = "book_epoch"
FLAGS = f"tags.{PROCESSOR_FLAGS_TAG}"
# Every run that trained on the cats-vs-dogs split logged its parameters.
CATS_VS_DOGS_PARAM = "params.cats_vs_dogs.decision_threshold"
COLUMNS = [
    "pipeline",
    "run_id",
    "started",
    "commit",
    HEADLINE,
    "book_epoch_equivalents",
    "cost_source",
    "epochs_run",
    "median_epoch_s",
    "processor_flags",
]
SHOWN_UNKNOWN = 6  # runs of unknown cost named under the figure; the table has them all


def _column(runs: pd.DataFrame, name: str) -> pd.Series:
    return runs[name] if name in runs else pd.Series(math.nan, index=runs.index, dtype=object)


def book_epoch_seconds(runs: pd.DataFrame) -> dict[str, tuple[float, int]]:
    """The median ``book_epoch_s`` of the finished ``book_epoch`` runs, and how many, by
    processor flags."""
    if runs.empty or RUN_NAME not in runs or FLAGS not in runs:
        return {}
    runs = with_pipeline(runs)
    seconds = _column(runs, "metrics.book_epoch_s")
    timed = runs[
        (runs[PIPELINE] == BOOK_EPOCH_PIPELINE)
        & (runs.status == "FINISHED")
        & seconds.notna()
        & runs[FLAGS].notna()
    ]
    grouped = seconds[timed.index].groupby(timed[FLAGS])
    return {flags: (float(values.median()), len(values)) for flags, values in grouped}


def cats_vs_dogs_runs(runs: pd.DataFrame, report: Report) -> pd.DataFrame:
    """Every finished training run that trained on the cats-vs-dogs split and scored its
    best checkpoint, oldest first."""
    if runs.empty or RUN_NAME not in runs or CATS_VS_DOGS_PARAM not in runs:
        return runs.iloc[0:0]
    runs = with_pipeline(runs)
    chosen = (
        runs[PIPELINE].isin(report.training_pipelines)
        & (runs.status == "FINISHED")
        & _column(runs, f"metrics.{HEADLINE}").notna()
        & runs[CATS_VS_DOGS_PARAM].notna()
    )
    return runs[chosen].sort_values("start_time")


def _cost(run: pd.Series, book: dict[str, tuple[float, int]]) -> tuple[float, str]:
    """A run's book-epoch equivalents and where they come from (why not, when unknown)."""
    flags, median = run.get(FLAGS), run.get("metrics.median_epoch_s")
    epochs, logged = run.get("metrics.epochs_run"), run.get("metrics.book_epoch_equivalents")
    timed = not pd.isna(median) and not pd.isna(epochs)
    if timed and isinstance(flags, str) and flags in book:
        seconds, count = book[flags]
        return float(median) / seconds * float(epochs), f"book_epoch runs ({count})"
    if not pd.isna(logged):
        return float(logged), "timed in the run"
    if timed and isinstance(flags, str):
        return math.nan, "no book_epoch run on these processor flags"
    return math.nan, "no training cost logged"


def frontier_points(runs: pd.DataFrame, report: Report) -> pd.DataFrame:
    """One row per finished cats-vs-dogs run: accuracy, cost (NaN: unknown) and its source."""
    book = book_epoch_seconds(runs)
    rows = []
    for _, run in cats_vs_dogs_runs(runs, report).iterrows():
        equivalents, source = _cost(run, book)
        rows.append(
            {
                "pipeline": run[PIPELINE],
                "run_id": run.run_id,
                "started": run.start_time,
                "commit": short_commit(run),
                HEADLINE: float(run[f"metrics.{HEADLINE}"]),
                "book_epoch_equivalents": equivalents,
                "cost_source": source,
                "epochs_run": run.get("metrics.epochs_run", math.nan),
                "median_epoch_s": run.get("metrics.median_epoch_s", math.nan),
                "processor_flags": run.get(FLAGS),
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def _book_marks(axis: plt.Axes, report: Report) -> None:
    """The book's printed figures: a star at the book's cost, else a line at its accuracy."""
    for name, cost in report.book_training_cost.items():
        accuracy = report.book_test_accuracy.get(name)
        if accuracy is None:
            continue
        if cost is None:
            axis.axhline(accuracy, color="grey", linestyle=":", linewidth=1)
            axis.annotate(
                f"book, {name}: {accuracy:.3f} (cost not known)",
                (0.01, accuracy),
                xycoords=("axes fraction", "data"),
                textcoords="offset points",
                xytext=(0, -9),
                fontsize=7,
                color="grey",
            )
        else:
            axis.scatter(cost, accuracy, marker="*", s=160, color="black", zorder=3)
            axis.annotate(
                f"book, {name}",
                (cost, accuracy),
                textcoords="offset points",
                xytext=(6, -10),
                fontsize=7,
            )


def plot_frontier(points: pd.DataFrame, report: Report) -> Figure:
    """Each run of known cost a point, coloured by pipeline, and the book's figures."""
    figure, axis = plt.subplots(figsize=(8, 5.5))
    known = points[points.book_epoch_equivalents.notna()]
    for name, runs in known.groupby(PIPELINE, sort=False):
        axis.scatter(runs.book_epoch_equivalents, runs[HEADLINE], label=name, alpha=0.8)
    _book_marks(axis, report)
    axis.margins(y=0.08)
    axis.set_xlim(left=0)
    axis.set_xlabel("training cost, book-epoch equivalents")
    axis.set_ylabel("test accuracy, best checkpoint")
    axis.set_title("Cats vs dogs: every finished run")
    if not known.empty:
        axis.legend(loc="lower right", fontsize=8)
    else:
        axis.text(
            0.5, 0.5, "No finished run of known cost yet", ha="center", transform=axis.transAxes
        )
    unknown = points[points.book_epoch_equivalents.isna()]
    if not unknown.empty:
        named = ", ".join(
            f"{row.pipeline} {row.run_id[:8]}" for row in unknown.head(SHOWN_UNKNOWN).itertuples()
        )
        more = len(unknown) - SHOWN_UNKNOWN
        figure.text(
            0.01,
            0.01,
            f"Not drawn, cost unknown ({len(unknown)}): {named}"
            + (f" and {more} more" if more > 0 else ""),
            fontsize=7,
        )
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    return figure
