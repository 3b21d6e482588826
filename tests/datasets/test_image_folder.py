"""ImageFolderDataset: atomic writes, skipped when unchanged, never outside its folder."""

import pytest
from kedro.io import DatasetError

from convnets.datasets import ImageFolderDataset


def test_writes_the_tree_and_loads_its_path(tmp_path):
    dataset = ImageFolderDataset(path=str(tmp_path / "split"))
    dataset.save({"train/cat/cat.0.jpg": b"a", "test/dog/dog.1.jpg": b"b"})
    assert (tmp_path / "split" / "train" / "cat" / "cat.0.jpg").read_bytes() == b"a"
    loaded = dataset.load()
    assert loaded.path == tmp_path / "split"
    assert loaded.fingerprint == (tmp_path / "split" / ".content.sha256").read_text().strip()
    assert [p.name for p in tmp_path.iterdir()] == ["split"]  # no staging left behind


def test_unchanged_content_is_not_rewritten(tmp_path):
    dataset = ImageFolderDataset(path=str(tmp_path / "split"))
    files = {"train/cat/cat.0.jpg": b"a"}
    dataset.save(files)
    written = tmp_path / "split" / "train" / "cat" / "cat.0.jpg"
    before = written.stat().st_mtime_ns
    dataset.save(dict(files))
    assert written.stat().st_mtime_ns == before


def test_changed_content_replaces_the_whole_folder(tmp_path):
    dataset = ImageFolderDataset(path=str(tmp_path / "split"))
    dataset.save({"train/cat/cat.0.jpg": b"a", "train/cat/cat.1.jpg": b"b"})
    dataset.save({"train/cat/cat.2.jpg": b"c"})
    names = sorted(p.name for p in (tmp_path / "split" / "train" / "cat").iterdir())
    assert names == ["cat.2.jpg"]


def test_a_failed_write_keeps_the_previous_split(tmp_path):
    dataset = ImageFolderDataset(path=str(tmp_path / "split"))
    dataset.save({"train/cat/cat.0.jpg": b"a"})

    class Exploding(dict):
        def items(self):
            yield "train/cat/cat.9.jpg", b"z"
            raise OSError("disk full")

    with pytest.raises(DatasetError, match="disk full"):
        dataset.save(Exploding({"train/cat/cat.9.jpg": b"z"}))
    assert (tmp_path / "split" / "train" / "cat" / "cat.0.jpg").read_bytes() == b"a"
    assert [p.name for p in tmp_path.iterdir()] == ["split"]


@pytest.mark.parametrize("name", ["../escape.jpg", "/etc/escape.jpg", "train/../../x.jpg"])
def test_paths_outside_the_folder_are_refused(tmp_path, name):
    with pytest.raises(DatasetError, match="outside"):
        ImageFolderDataset(path=str(tmp_path / "split")).save({name: b"x"})
    assert not (tmp_path / "escape.jpg").exists()


def test_loading_before_any_save_tells_what_to_run(tmp_path):
    with pytest.raises(DatasetError, match="ingestion"):
        ImageFolderDataset(path=str(tmp_path / "split")).load()
