"""JsonStateDataset: empty when missing or garbled, written atomically and only on change."""

import logging

import pytest

from convnets.datasets import JsonStateDataset


def test_missing_file_loads_as_empty(tmp_path):
    assert JsonStateDataset(filepath=str(tmp_path / "state.json")).load() == {}


def test_round_trip_and_no_rewrite_when_unchanged(tmp_path):
    dataset = JsonStateDataset(filepath=str(tmp_path / "a" / "state.json"))
    dataset.save({"k": {"action": "kept", "reason": ""}})
    written = (tmp_path / "a" / "state.json").stat().st_mtime_ns
    assert dataset.load() == {"k": {"action": "kept", "reason": ""}}
    dataset.save({"k": {"action": "kept", "reason": ""}})
    assert (tmp_path / "a" / "state.json").stat().st_mtime_ns == written
    dataset.save({"k": {"action": "skipped", "reason": "empty file"}})
    assert dataset.load()["k"]["action"] == "skipped"
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["state.json"]


@pytest.mark.parametrize("garbled", [b'{"k": {"action": "ke', b"\xff\xfe\x00garbage", b"[1, 2]"])
def test_a_garbled_file_is_set_aside_with_one_warning_and_loads_as_empty(tmp_path, caplog, garbled):
    path = tmp_path / "checks.json"
    path.write_bytes(garbled)
    # The two catalog entries on one file, as the image checks use them.
    state, updated = (JsonStateDataset(filepath=str(path)) for _ in range(2))
    with caplog.at_level(logging.WARNING, logger="convnets.datasets.json_state"):
        assert state.load() == {}
        updated.save({"k": {"action": "kept", "reason": ""}})
    assert len(caplog.records) == 1 and str(path) in caplog.records[0].getMessage()
    assert state.load() == {"k": {"action": "kept", "reason": ""}}
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("checks.json.damaged-")]
    assert len(aside) == 1 and aside[0].read_bytes() == garbled  # kept, not deleted
