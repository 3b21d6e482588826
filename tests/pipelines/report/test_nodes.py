"""The comparison of the latest runs, from a table shaped like mlflow.search_runs'."""

import pandas as pd

from convnets.parameters import Report
from convnets.pipelines.report import nodes
from tests.conftest import typed_parameters

REPORT = typed_parameters(Report, "report")


def _run(name, status, start, accuracy=0.8, run_id=None, **metrics):
    started = pd.Timestamp(start, tz="UTC")
    return {
        "run_id": run_id or f"{name}-{start}",
        "status": status,
        "start_time": started,
        "end_time": started + pd.Timedelta(minutes=90),
        "tags.mlflow.runName": name,
        "metrics.best_checkpoint_test_accuracy": accuracy,
        "metrics.final_model_test_accuracy": accuracy - 0.01,
        f"params.{name}.training.epochs": "30",
        **{f"metrics.{key}": value for key, value in metrics.items()},
    }


def _runs(*rows):
    runs = pd.DataFrame(list(rows))
    runs.attrs.update(tracking_uri="sqlite:///mlflow.db", experiment="convnets")
    return runs


def test_the_latest_finished_run_of_each_training_pipeline_is_compared():
    runs = _runs(
        _run("catdog", "FINISHED", "2026-11-28 07:00", 0.809, run_id="old"),
        _run("catdog", "FINISHED", "2026-11-30 07:00", 0.812, run_id="new"),
        _run("catdog", "KILLED", "2026-12-01 07:00", 0.5, run_id="killed"),
        {
            **_run("mnist", "FINISHED", "2026-11-29 07:00", 0.991, peak_rss_mb=1638.4),
            "tags.mlflow.source.git.commit": "0123456789abcdef",
            "tags.git_dirty": "true",
        },
        _run("predict", "FINISHED", "2026-12-01 08:00", 0.7),
    )
    latest, unfinished = nodes.latest_runs(runs, REPORT)
    assert list(latest.pipeline) == ["mnist", "catdog"]  # the parameters' order
    assert latest.set_index("pipeline").loc["catdog", "run_id"] == "new"
    assert list(unfinished.run_id) == ["killed"]

    markdown, figure = nodes.write_comparison(runs, REPORT)
    assert (
        "| `mnist` | 0.9910 | 0.9810 | 0.991 | 30 | 1 h 30 min | 1.60 GB | 2026-11-29 07:00 "
        "| 0123456+ |" in markdown
    )  # the commit, "+": tracked files had changes
    assert (
        "| `catdog` | 0.8120 | 0.8020 | 0.835 | 30 | 1 h 30 min | – | 2026-11-30 07:00 | – |"
        in (markdown)
    )  # a run from before the commit tag
    assert "| `catdog` | KILLED |" in markdown and "predict" not in markdown
    assert "sqlite:///mlflow.db" in markdown and figure.axes


def test_no_runs_yet_says_which_run_to_do_first():
    for runs in (_runs(), _runs(_run("catdog", "RUNNING", "2026-12-01 07:00"))):
        markdown, figure = nodes.write_comparison(runs, REPORT)
        assert "run one first, for example `kedro run --pipelines=mnist`," in markdown
        assert figure.axes


def test_the_hint_names_the_environment_it_looked_in():
    quick = REPORT.model_copy(update={"env_option": " --env=quick"})
    markdown, _ = nodes.write_comparison(_runs(), quick)
    assert "`kedro run --pipelines=mnist --env=quick`" in markdown
    assert "`kedro run --pipelines=report --env=quick`" in markdown


def test_a_resumed_run_counts_for_its_pipeline_and_a_model_at_chance_has_a_bar():
    resumed = _run("catdog (resumed after epoch 5)", "FINISHED", "2026-12-01 07:00", 0.5)
    resumed["tags.pipeline"] = "catdog"
    latest, _ = nodes.latest_runs(_runs(resumed), REPORT)
    assert list(latest.pipeline) == ["catdog"]
    _, figure = nodes.write_comparison(_runs(resumed), REPORT)
    assert figure.axes[0].get_xlim()[0] == 0.0


def test_a_filtered_run_that_scored_no_model_is_not_a_training_run():
    ingestion = _run("catdog", "FINISHED", "2026-12-01 09:00", run_id="ingestion")
    del ingestion["metrics.best_checkpoint_test_accuracy"]
    runs = _runs(_run("catdog", "FINISHED", "2026-11-30 07:00", run_id="trained"), ingestion)
    runs.loc[runs.run_id == "ingestion", "metrics.final_model_test_accuracy"] = float("nan")
    latest, _ = nodes.latest_runs(runs, REPORT)
    assert list(latest.run_id) == ["trained"]


def test_the_report_compares_the_registrys_training_pipelines_beside_the_books_figures():
    from convnets.pipeline_registry import TRAINING_PIPELINES  # noqa: PLC0415

    assert REPORT.training_pipelines == TRAINING_PIPELINES  # in the registry's order
    assert set(REPORT.book_test_accuracy) <= set(TRAINING_PIPELINES)  # no typo'd name
