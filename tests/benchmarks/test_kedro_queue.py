"""benchmarks/ablation/kedro_queue.sh with a stand-in for kedro: the queue's bookkeeping."""

from __future__ import annotations

import os
import subprocess

from tests.conftest import PROJECT_ROOT

QUEUE = PROJECT_ROOT / "benchmarks" / "ablation" / "kedro_queue.sh"
STAND_IN = """#!/bin/bash
echo "$PWD $*" >> "$CALLS"
case "$3" in --params=fails) exit 1 ;; --params=stopped) exit 130 ;; esac
"""


def _queue(tmp_path, lines, *options):
    copy, calls = tmp_path / "copy", tmp_path / "calls.txt"
    copy.mkdir(exist_ok=True)
    kedro = tmp_path / "kedro"
    kedro.write_text(STAND_IN)
    kedro.chmod(0o755)
    queue = tmp_path / "queue.txt"
    queue.write_text(lines)
    env = {**os.environ, "KEDRO": str(kedro), "CALLS": str(calls)}
    done = subprocess.run(
        ["bash", str(QUEUE), str(copy), str(queue), *options],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    run = calls.read_text().splitlines() if calls.exists() else []
    return done, run, copy / "data" / "ablation" / "kedro_logs"


def test_each_line_runs_once_in_the_copy_and_finished_runs_are_skipped_next_time(tmp_path):
    lines = "a --params=x=1\n# a comment\n  b --params=fails\r\nc --params=y=[1,2]"
    done, calls, logs = _queue(tmp_path, lines, "--", "--env=quick")
    assert done.returncode == 0, done.stderr
    copy = tmp_path / "copy"
    assert calls == [
        f"{copy} run --pipelines=catdog_fast --params=x=1 --env=quick",
        f"{copy} run --pipelines=catdog_fast --params=fails --env=quick",
        f"{copy} run --pipelines=catdog_fast --params=y=[1,2] --env=quick",  # not a glob
    ]
    assert "END b rc=1" in done.stdout
    assert sorted(path.name for path in logs.glob("*.done")) == ["a.done", "c.done"]
    again, calls, _ = _queue(tmp_path, lines)
    assert "DONE a (skipped)" in again.stdout and calls[-1].endswith("--params=fails")


def test_a_stopped_run_ends_the_queue_and_a_bad_copy_is_refused(tmp_path):
    done, calls, _ = _queue(tmp_path, "a --params=stopped\nb --params=x=1\n")
    assert done.returncode == 130 and len(calls) == 1 and "the queue ends" in done.stdout
    missing = subprocess.run(
        ["bash", str(QUEUE), str(tmp_path / "nowhere")], capture_output=True, text=True, check=False
    )
    assert missing.returncode == 2 and "usage:" in missing.stderr
