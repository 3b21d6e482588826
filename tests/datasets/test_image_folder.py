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


KILLED_MID_WRITE = """
import sys, time
from pathlib import Path
from convnets.datasets.image_folder import replace_folder

def write(staging):
    (staging / "cat.0.jpg").write_bytes(b"new")
    print(staging, flush=True)
    time.sleep(60)

replace_folder(Path(sys.argv[1]), write)
"""


def test_the_staging_folder_of_a_killed_write_is_marked_and_removed_by_the_next_run(tmp_path):
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from convnets.project_lock import STAGING_MARK, remove_stale_staging  # noqa: PLC0415

    split = tmp_path / "split"
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_MID_WRITE, str(split)], stdout=subprocess.PIPE, text=True
    )
    try:
        staging = Path(process.stdout.readline().strip())
    finally:
        process.kill()
        process.wait()
        process.stdout.close()
    assert staging.parent == tmp_path
    assert (staging / STAGING_MARK).is_file()
    assert remove_stale_staging(tmp_path) == [staging]
    assert list(tmp_path.iterdir()) == []


def test_the_old_folder_renamed_aside_is_marked_and_the_written_one_is_not(tmp_path, monkeypatch):
    import os  # noqa: PLC0415

    from convnets.datasets.image_folder import replace_folder  # noqa: PLC0415
    from convnets.project_lock import STAGING_MARK, remove_stale_staging  # noqa: PLC0415

    split = tmp_path / "split"
    replace_folder(split, lambda staging: (staging / "cat.0.jpg").write_bytes(b"old"))
    assert sorted(p.name for p in split.iterdir()) == ["cat.0.jpg"]  # no marker kept

    real_replace, calls = os.replace, []

    def crash_after_retiring(source, target):
        calls.append(target)
        if len(calls) == 2:  # noqa: PLR2004 - the staging folder's swap into place
            raise KeyboardInterrupt  # stands for a kill between the two renames
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", crash_after_retiring)
    with pytest.raises(KeyboardInterrupt):
        replace_folder(split, lambda staging: (staging / "cat.1.jpg").write_bytes(b"new"))
    monkeypatch.undo()
    retired = calls[0]
    assert "-retired-" in retired.name
    assert (retired / STAGING_MARK).is_file()
    assert remove_stale_staging(tmp_path) == [retired]
