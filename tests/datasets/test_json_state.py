"""JsonStateDataset: empty when missing, written atomically and only on change."""

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
