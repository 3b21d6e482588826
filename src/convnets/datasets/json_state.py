"""A small JSON dictionary kept between runs: empty when missing, written only on change."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset


class JsonStateDataset(AbstractDataset[dict, dict]):
    """State a node reads at the start of a run and hands back updated at the end.

    ``load`` returns ``{}`` when the file does not exist yet (kedro-datasets'
    JSONDataset raises), and ``save`` leaves the file untouched when the content is
    unchanged, so a re-run with unchanged inputs writes nothing. Writes are atomic.
    Use two catalog entries on the same file: one as the node's input, one as its
    output (Kedro does not let a node read and write the same dataset).
    """

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = Path(filepath)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def load(self) -> dict:
        if not self._filepath.is_file():
            return {}
        return json.loads(self._filepath.read_text())

    def save(self, data: dict) -> None:
        if self.load() == data:
            return
        self._filepath.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", dir=self._filepath.parent, suffix=".part", delete=False
        ) as handle:
            json.dump(data, handle, indent=0, sort_keys=True)
        os.replace(handle.name, self._filepath)
