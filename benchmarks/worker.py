"""Run one side of a side-by-side benchmark in a fresh process and read its JSON result."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any


def run_worker(command: list[str]) -> dict[str, Any]:
    """Run ``command`` (a benchmark's own ``--worker`` mode); its last stdout line is JSON.

    A worker that fails ends the benchmark with the end of its error output.
    """
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    if done.returncode:
        raise RuntimeError(
            f"{' '.join(command)} failed (exit status {done.returncode}):\n{done.stderr[-3000:]}"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])
