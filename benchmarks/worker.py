"""Run one side of a side-by-side benchmark in a fresh process and read its JSON result."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any


def run_worker(command: list[str]) -> dict[str, Any]:
    """Run ``command`` (a benchmark's own ``--worker`` mode); its last stdout line is JSON."""
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    return json.loads(done.stdout.strip().splitlines()[-1])
