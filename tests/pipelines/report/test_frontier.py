"""The frontier drawn from a throw-away MLflow store holding a few synthetic runs."""

import math

import mlflow
import pandas as pd
import pytest

from convnets.datasets import MlflowRunsDataset
from convnets.parameters import Report
from convnets.pipelines.report import frontier, nodes
from tests.conftest import reset_mlflow, typed_parameters

REPORT = typed_parameters(Report, "report")
FAST_FLAGS, OTHER_FLAGS = "avx avx2 fma", "avx avx2 avx512_bf16 fma"


def _log(name, metrics, tags=None, cats_vs_dogs=True, status="FINISHED"):
    with mlflow.start_run(run_name=name) as run:
        mlflow.set_tags({"pipeline": name, **(tags or {})})
        if cats_vs_dogs:
            mlflow.log_param("cats_vs_dogs.decision_threshold", 0.5)
        mlflow.log_metrics(metrics)
    if status != "FINISHED":
        mlflow.MlflowClient().set_terminated(run.info.run_id, status)
    return run.info.run_id


@pytest.fixture
def runs(tmp_path):
    reset_mlflow()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    mlflow.set_experiment("frontier")
    book = {"cats_vs_dogs": False}
    ids = {
        "book_a": _log(
            "book_epoch", {"book_epoch_s": 100.0}, {"processor_flags": FAST_FLAGS}, **book
        ),
        "book_b": _log(
            "book_epoch", {"book_epoch_s": 120.0}, {"processor_flags": FAST_FLAGS}, **book
        ),
        "book_c": _log(
            "book_epoch", {"book_epoch_s": 200.0}, {"processor_flags": FAST_FLAGS}, **book
        ),
        "fast": _log(
            "catdog_fast",
            {"best_checkpoint_test_accuracy": 0.89, "median_epoch_s": 60.0, "epochs_run": 30},
            {"processor_flags": FAST_FLAGS},
        ),
        "fast_seed_1": _log(
            "catdog_fast",
            {"best_checkpoint_test_accuracy": 0.88, "median_epoch_s": 48.0, "epochs_run": 30},
            {"processor_flags": FAST_FLAGS},
        ),
        "other_machine": _log(
            "catdog_xception",
            {"best_checkpoint_test_accuracy": 0.9, "median_epoch_s": 90.0, "epochs_run": 100},
            {"processor_flags": OTHER_FLAGS},
        ),
        "timed_in_run": _log(
            "catdog_fast",
            {"best_checkpoint_test_accuracy": 0.885, "book_epoch_equivalents": 49.5},
        ),
        "no_cost": _log("catdog", {"best_checkpoint_test_accuracy": 0.81}),
        "killed": _log(
            "catdog_fast",
            {"best_checkpoint_test_accuracy": 0.5, "median_epoch_s": 60.0, "epochs_run": 3},
            {"processor_flags": FAST_FLAGS},
            status="KILLED",
        ),
        "mnist": _log("mnist", {"best_checkpoint_test_accuracy": 0.99}, cats_vs_dogs=False),
    }
    table = MlflowRunsDataset(experiment_name="frontier").load()
    yield table, ids
    reset_mlflow()


def test_every_finished_cats_vs_dogs_run_is_a_point_at_its_cost(runs):
    table, ids = runs
    points, figure = nodes.draw_frontier(table, REPORT)
    by_run = points.set_index("run_id")
    assert set(by_run.index) == {
        ids[name] for name in ("fast", "fast_seed_1", "other_machine", "timed_in_run", "no_cost")
    }
    # The book's epoch on the same flags: the median of three runs, 120 s.
    assert by_run.loc[ids["fast"], "book_epoch_equivalents"] == pytest.approx(60 / 120 * 30)
    assert by_run.loc[ids["fast_seed_1"], "book_epoch_equivalents"] == pytest.approx(12.0)
    assert by_run.loc[ids["fast"], "cost_source"] == "book_epoch runs (3)"
    assert by_run.loc[ids["timed_in_run"], "book_epoch_equivalents"] == 49.5
    assert by_run.loc[ids["timed_in_run"], "cost_source"] == "timed in the run"
    # Unknown costs are listed, not drawn.
    assert math.isnan(by_run.loc[ids["other_machine"], "book_epoch_equivalents"])
    assert by_run.loc[ids["other_machine"], "cost_source"] == (
        "no book_epoch run on these processor flags"
    )
    assert by_run.loc[ids["no_cost"], "cost_source"] == "no training cost logged"

    axis = figure.axes[0]
    drawn = {
        collection.get_label(): sorted(map(tuple, collection.get_offsets().tolist()))
        for collection in axis.collections
        if not collection.get_label().startswith("_")
    }
    assert drawn == {"catdog_fast": [(12.0, 0.88), (15.0, 0.89), (49.5, 0.885)]}
    assert "Not drawn, cost unknown (2)" in figure.texts[0].get_text()


def test_the_books_figures_are_marks_at_the_books_cost_or_a_line(runs):
    table, _ = runs
    _, figure = nodes.draw_frontier(table, REPORT)
    axis = figure.axes[0]
    stars = sorted(
        tuple(offset)
        for collection in axis.collections
        if collection.get_label().startswith("_")
        for offset in collection.get_offsets().tolist()
    )
    assert stars == [(30.0, 0.695), (100.0, 0.835)]
    lines = [line.get_ydata()[0] for line in axis.lines]
    assert lines == [0.908]  # catdog_xception: the book prints no cost


def test_no_run_yet_draws_an_empty_frontier():
    empty = pd.DataFrame(columns=["run_id", "status", "start_time", "end_time"])
    points, figure = nodes.draw_frontier(empty, REPORT)
    assert points.empty and list(points.columns) == frontier.COLUMNS
    assert figure.axes
