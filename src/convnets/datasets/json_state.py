"""A small JSON dictionary kept between runs: empty when missing, written only on change."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset

from convnets.durability.atomic import write_json_atomically
from convnets.durability.integrity import set_aside

logger = logging.getLogger(__name__)


class JsonStateDataset(AbstractDataset[dict, dict]):
    """State a node reads at the start of a run and hands back updated at the end.

    ``load`` returns ``{}`` when the file does not exist yet (kedro-datasets'
    JSONDataset raises), and ``save`` leaves the file untouched when the content is
    unchanged, so a re-run with unchanged inputs writes nothing. Writes are atomic.
    A file that is not a JSON object is set aside (``<name>.damaged-<time>``, one
    warning) and loads as ``{}``: the state is only a memory of work that can be redone.
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
        try:
            state = json.loads(self._filepath.read_bytes())
            if isinstance(state, dict):
                return state
            reason = f"a JSON {type(state).__name__}, not an object"
        except ValueError as exc:  # UnicodeDecodeError is a ValueError
            reason = f"not valid JSON: {exc}"
        # Set aside, so that the next load (the other catalog entry's) does not warn again.
        aside = set_aside(self._filepath)
        logger.warning(
            "%s is %s: set aside as %s; starting from an empty state (its work is redone)",
            self._filepath,
            reason,
            aside,
        )
        return {}

    def save(self, data: dict) -> None:
        if self.load() == data:
            return
        self._filepath.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomically(self._filepath, data)
