"""The columns of ``mlflow.search_runs`` the report reads, and the pipeline of each run."""

from __future__ import annotations

import pandas as pd

RUN_NAME = "tags.mlflow.runName"
# The pipeline a run ran (hooks.command_tags); older runs have only their name, which
# a resumed run changes ("catdog (resumed after epoch 5)").
PIPELINE_TAG = "tags.pipeline"
PIPELINE = "pipeline"
# The code a run ran (hooks.code_tags): its git commit, and whether tracked files changed.
GIT_COMMIT_TAG = "tags.mlflow.source.git.commit"
GIT_DIRTY_TAG = "tags.git_dirty"
HEADLINE = "best_checkpoint_test_accuracy"


def with_pipeline(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with a ``pipeline`` column: the pipeline tag, else the run's name."""
    pipelines = runs[RUN_NAME]
    if PIPELINE_TAG in runs:
        pipelines = runs[PIPELINE_TAG].where(runs[PIPELINE_TAG].notna(), pipelines)
    return runs.assign(**{PIPELINE: pipelines})


def short_commit(run: pd.Series) -> str:
    """The run's code: the short git commit, ``+`` when tracked files had changes."""
    commit = run.get(GIT_COMMIT_TAG)
    if not isinstance(commit, str) or not commit:
        return "–"  # a run from before the tag, or from outside a git checkout
    return commit[:7] + ("+" if run.get(GIT_DIRTY_TAG) == "true" else "")
