"""ImageFolderDataset: atomic writes, skipped when unchanged, never outside its folder,
checked against its manifest before it is called up to date or loaded."""

import hashlib
import json
import logging
import os

import pytest
from kedro.io import DatasetError

from convnets.datasets import ImageFolderDataset, LazyFile
from convnets.datasets.image_folder import MANIFEST_FILE
from convnets.errors import UserError


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


# ---------------------------------------------------------------- the manifest

FILES = {f"train/cat/cat.{i}.jpg": bytes([i]) * (100 + i) for i in range(5)}
PICTURE = "train/cat/cat.3.jpg"


def _lazy(files, reads):
    def loader(name, content):
        def load():
            reads.append(name)
            return content

        return load

    return {name: LazyFile(f"id:{name}", loader(name, content)) for name, content in files.items()}


def _delete(split):
    (split / PICTURE).unlink()
    return split / PICTURE


def _garble(split):  # random bytes over the picture: same size, other content
    path = split / PICTURE
    path.write_bytes(os.urandom(path.stat().st_size))
    return path


def _truncate(split):
    path = split / PICTURE
    path.write_bytes(path.read_bytes()[:10])
    return path


def _add(split):
    path = split / "train" / "cat" / "cat.99.jpg"
    path.write_bytes(b"stray")
    return path


def _garble_manifest(split):
    path = split / MANIFEST_FILE
    path.write_text('{"format": 1, "files": {"train/')
    return path


def test_the_manifest_records_each_files_size_and_sha256(tmp_path):
    ImageFolderDataset(path=str(tmp_path / "split")).save(FILES)
    manifest = json.loads((tmp_path / "split" / MANIFEST_FILE).read_text())
    assert manifest["files"][PICTURE] == {
        "size": len(FILES[PICTURE]),
        "sha256": hashlib.sha256(FILES[PICTURE]).hexdigest(),
    }
    assert set(manifest["files"]) == set(FILES)


@pytest.mark.parametrize("damage", [_delete, _garble, _truncate, _add, _garble_manifest])
def test_a_damaged_split_is_refused_then_set_aside_and_rewritten_from_the_source(
    tmp_path, caplog, damage
):
    dataset = ImageFolderDataset(path=str(tmp_path / "split"))
    reads = []
    dataset.save(_lazy(FILES, reads))
    damaged = damage(tmp_path / "split")

    # Loading (to decode or train) refuses it, naming the file and the command.
    with pytest.raises(UserError, match=rf"{damaged.name}.*--tags=ingestion"):
        dataset.load()

    reads.clear()
    with caplog.at_level(logging.INFO, logger="convnets.datasets.image_folder"):
        dataset.save(_lazy(FILES, reads))
    assert sorted(reads) == sorted(FILES)  # not "up to date": every picture read again
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(damaged) in warnings[0].getMessage()
    assert "up to date" not in caplog.text
    assert {p.relative_to(tmp_path / "split").as_posix() for p in _files(tmp_path)} == set(FILES)
    assert dataset.load().path == tmp_path / "split"  # verified again
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("split.damaged-")]
    assert len(aside) == 1 and (aside[0] / MANIFEST_FILE).is_file()  # kept, not deleted


def _files(tmp_path):
    return [
        p for p in (tmp_path / "split").rglob("*") if p.is_file() and not p.name.startswith(".")
    ]


def test_an_intact_split_is_up_to_date_after_its_check(tmp_path, caplog):
    dataset = ImageFolderDataset(path=str(tmp_path / "split"))
    dataset.save(_lazy(FILES, []))
    with caplog.at_level(logging.INFO, logger="convnets.datasets.image_folder"):
        dataset.save(_lazy(FILES, reads := []))
    assert reads == [] and "up to date (5 files)" in caplog.text


def test_a_split_written_before_manifests_is_rewritten_without_a_warning(tmp_path, caplog):
    dataset = ImageFolderDataset(path=str(tmp_path / "split"))
    dataset.save(_lazy(FILES, []))
    (tmp_path / "split" / MANIFEST_FILE).unlink()  # as an older version wrote it
    with pytest.raises(UserError, match="before splits had a manifest.*--tags=ingestion"):
        dataset.load()
    with caplog.at_level(logging.INFO, logger="convnets.datasets.image_folder"):
        dataset.save(_lazy(FILES, reads := []))
    assert sorted(reads) == sorted(FILES)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert (tmp_path / "split" / MANIFEST_FILE).is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["split"]


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


@pytest.mark.processes
def test_the_staging_folder_of_a_killed_write_is_marked_and_removed_by_the_next_run(tmp_path):
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from convnets.durability.lock import STAGING_MARK, remove_stale_staging  # noqa: PLC0415

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
    from convnets.durability.lock import STAGING_MARK, remove_stale_staging  # noqa: PLC0415

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
