"""Temporary folders of killed runs are removed; a live run's and the user's are kept."""

import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from convnets.durability.scratch import (
    OWNER_FILE,
    ScratchDirectory,
    remove_abandoned_scratch,
    scratch_dir,
)

MAKES_A_FOLDER_AND_WAITS = """
import time
from convnets.durability.scratch import scratch_dir

print(scratch_dir("convnets-run-log-"), flush=True)
time.sleep(60)
"""


@pytest.fixture
def temp_dir(tmp_path, monkeypatch):
    """A temp dir of the test's own, for this process and the children it starts."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    return tmp_path


def _child_folder() -> tuple[subprocess.Popen, Path]:
    process = subprocess.Popen(
        [sys.executable, "-c", MAKES_A_FOLDER_AND_WAITS], stdout=subprocess.PIPE, text=True
    )
    return process, Path(process.stdout.readline().strip())


def test_a_killed_process_folder_goes_a_live_one_and_the_users_stay(temp_dir, caplog):
    killed, killed_folder = _child_folder()
    live, live_folder = _child_folder()
    try:
        (killed_folder / "kedro_run.log").write_text("a log")
        killed.kill()  # SIGKILL: nothing of the process runs after it
        killed.wait()
        users = temp_dir / "convnets-run-log-x"
        users.mkdir()
        (users / "photo.jpg").write_bytes(b"a photo")
        mine = scratch_dir("convnets-servable-")
        assert killed_folder.parent == temp_dir

        with caplog.at_level(logging.INFO, logger="convnets.durability.scratch"):
            assert remove_abandoned_scratch() == [killed_folder]
        assert not killed_folder.exists()
        assert live_folder.is_dir()
        assert mine.is_dir()
        assert (users / "photo.jpg").read_bytes() == b"a photo"
        assert [r.getMessage() for r in caplog.records] == [
            f"Removed 1 temporary folder(s) left by killed runs: {killed_folder}"
        ]
    finally:
        live.kill()
        live.wait()
        for process in (killed, live):
            process.stdout.close()


def test_a_folder_whose_pid_was_reused_goes_and_another_hosts_stays(temp_dir):
    from convnets.durability import scratch  # noqa: PLC0415

    reused = scratch_dir("convnets-run-log-")
    owner = json.loads((reused / OWNER_FILE).read_text())
    # This process's pid with another create time, and no lock on it: the owner died
    # and the pid came back.
    (reused / OWNER_FILE).write_text(json.dumps({**owner, "create_time": 1.0}))
    scratch._unmark(reused)
    elsewhere = scratch_dir("convnets-run-log-")
    (elsewhere / OWNER_FILE).write_text(json.dumps({**owner, "pid": 1, "host": "other-host"}))
    assert remove_abandoned_scratch() == [reused]
    assert elsewhere.is_dir()


def test_scratch_directory_is_a_marked_temporary_directory(temp_dir):
    with ScratchDirectory(prefix="convnets-training-") as name:
        owner = json.loads((Path(name) / OWNER_FILE).read_text())
        assert owner["pid"] == os.getpid()
        assert remove_abandoned_scratch() == []
    assert list(temp_dir.iterdir()) == []


def test_a_live_owner_keeps_its_folder_after_the_clock_moved(temp_dir):
    """psutil's create times move with the wall clock: the owner's lock tells instead."""
    live = scratch_dir("convnets-servable-")
    owner = json.loads((live / OWNER_FILE).read_text())
    (live / OWNER_FILE).write_text(json.dumps({**owner, "create_time": owner["create_time"] + 30}))
    assert remove_abandoned_scratch() == []
    assert live.is_dir()
