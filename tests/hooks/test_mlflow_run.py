"""The tags the MLflow run hook sets on every run before its first node."""

from __future__ import annotations

import subprocess

from convnets.hooks.mlflow_run import GIT_COMMIT_TAG, GIT_DIRTY_TAG, code_tags


def _git(folder, *args):
    return subprocess.run(
        ["git", "-C", str(folder), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_a_run_records_the_commit_of_its_code_and_whether_it_had_changes(tmp_path):
    code = tmp_path / "checkout"
    code.mkdir()
    _git(code, "init", "-q")
    (code / "nodes.py").write_text("x = 1\n")
    _git(code, "add", "nodes.py")
    _git(code, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    commit = _git(code, "rev-parse", "HEAD")
    assert code_tags(code) == {GIT_COMMIT_TAG: commit, GIT_DIRTY_TAG: "false"}
    (code / "untracked.txt").write_text("not code\n")  # untracked files do not count
    assert code_tags(code)[GIT_DIRTY_TAG] == "false"
    (code / "nodes.py").write_text("x = 2\n")
    assert code_tags(code) == {GIT_COMMIT_TAG: commit, GIT_DIRTY_TAG: "true"}


def test_code_outside_a_git_checkout_gets_no_commit_tag(tmp_path):
    assert code_tags(tmp_path) == {}
