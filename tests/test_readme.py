"""The README's shell and Python blocks, run in the README's order on tiny data.

What a newcomer types after the install, as written: the quick tour, the main job (on
the tiny data of conf/local here), the model in Python and over HTTP, predict. A block
preceded by ``<!-- walkthrough: skip (why) -->`` is left out.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT, jpeg_bytes
from tests.test_cli import environment, tiny_conf

# It starts a model server (the README's serving block): CI's second step runs it.
pytestmark = [pytest.mark.slow, pytest.mark.server]

BLOCK = re.compile(
    r"(?P<skip><!-- walkthrough: skip[^\n]*-->\n)?```(?P<lang>bash|python)\n(?P<code>.*?)```",
    re.S,
)


def readme_blocks() -> list[tuple[str, str]]:
    text = (PROJECT_ROOT / "README.md").read_text()
    return [(m["lang"], m["code"]) for m in BLOCK.finditer(text) if not m["skip"]]


def test_the_readme_has_the_blocks_a_newcomer_runs():
    commands = "\n".join(code for _, code in readme_blocks())
    for expected in (
        "kedro run --pipelines=catdog --env=quick",
        "kedro run --pipelines=catdog\n",
        "python -m convnets.serve",
        "kedro run --pipelines=predict",
    ):
        assert expected in commands


def test_the_readme_runs_in_its_order(kedro_project, tmp_path):
    tiny_conf(kedro_project)
    local = kedro_project / "conf" / "local" / "parameters.yml"
    values = yaml.safe_load(local.read_text())
    values["catdog"]["training"] = {"epochs": 2}
    local.write_text(yaml.safe_dump(values))
    home = tmp_path / "home"
    (home / "my-pictures").mkdir(parents=True)
    for index in range(2):
        (home / "my-pictures" / f"cat.{900 + index}.jpg").write_bytes(jpeg_bytes(900 + index))
    (kedro_project / "cat.jpg").write_bytes(jpeg_bytes(7))
    env = {**environment(), "HOME": str(home)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for number, (language, code) in enumerate(readme_blocks(), start=1):
        command = ["bash", "-euo", "pipefail", "-c", code]
        if language == "python":
            command = [sys.executable, "-c", code]
        process = subprocess.Popen(
            command,
            cwd=kedro_project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # the block's background server goes with it
        )
        try:
            output = process.communicate(timeout=600)[0]
        finally:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        assert process.returncode == 0, f"README block {number}:\n{code}\n{output[-4000:]}"
        if "invocations" in code:
            assert '"predictions": [{"label": "' in output, output[-2000:]
        if language == "python":
            assert "label" in output and "probability_dog" in output, output[-2000:]
    predictions = kedro_project / "data" / "07_model_output" / "predictions.csv"
    assert predictions.read_text().count("cat.90") == 2
