"""The shape of src/ (docs/design.md): layers imported only downwards, no import cycle,
and modules short enough to read."""

import subprocess
import sys
from pathlib import Path

from tests.conftest import PROJECT_ROOT

MAX_MODULE_LINES = 300


def test_the_import_contracts_hold():
    """import-linter's contracts of pyproject.toml: a module imports only from layers below
    its own, and no modules of one package import each other in a circle. Run
    ``lint-imports`` in the project root to see which import breaks them."""
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "2 kept, 0 broken" in result.stdout


def test_no_module_is_longer_than_it_takes_to_read():
    long = {
        str(path.relative_to(PROJECT_ROOT)): lines
        for path in (PROJECT_ROOT / "src").rglob("*.py")
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}
