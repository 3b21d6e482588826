"""The docs name what exists: every test a row of docs/reliability.md gives as its proof."""

import re

from tests.conftest import PROJECT_ROOT

TEST_REFERENCE = re.compile(r"`(tests/[\w/]+\.py)(?:::([\w-]+)[^`]*)?`|`::([\w-]+)[^`]*`")


def test_every_test_named_by_the_reliability_table_exists():
    missing = []
    for row in (PROJECT_ROOT / "docs" / "reliability.md").read_text().splitlines():
        if not row.startswith("|"):
            continue
        current = None  # a bare ``::name`` is a test of the file named before it
        for match in TEST_REFERENCE.finditer(row):
            path, name = match.group(1), match.group(2) or match.group(3)
            if path:
                current = PROJECT_ROOT / path
                if not current.is_file():
                    missing.append(path)
                    continue
            if name and current is not None and f"def {name}(" not in current.read_text():
                missing.append(f"{current.relative_to(PROJECT_ROOT)}::{name}")
    assert missing == []
