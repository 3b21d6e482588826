"""Ingestion of the cats-vs-dogs split on tiny synthetic JPEGs in Kaggle's layout."""

import pytest

from convnets.datasets import ImageArchiveDataset, ImageFolderDataset
from convnets.parameters import CatsVsDogsData
from convnets.pipelines.cats_vs_dogs_data import nodes
from tests.conftest import jpeg_bytes, typed_parameters, write_kaggle_zip

SUBSETS = {
    "train": {"start": 0, "size": 10},
    "validation": {"start": 10, "size": 4},
    "test": {"start": 14, "size": 4},
}


def _data(non_rgb: str = "convert", **sizes) -> CatsVsDogsData:
    subsets = {
        name: {**subset, "size": sizes.get(name, subset["size"])}
        for name, subset in SUBSETS.items()
    }
    return typed_parameters(CatsVsDogsData, "cats_vs_dogs", subsets=subsets, non_rgb=non_rgb)


DATA = _data()


@pytest.fixture
def archive(kaggle_zip):
    return ImageArchiveDataset(filepath=str(kaggle_zip)).load()


def test_make_subset_follows_the_books_index_ranges(archive):
    manifest, files, skipped, _, _ = nodes.make_subset(archive, DATA, {})
    assert len(manifest) == 2 * 18 and skipped.empty
    test_cats = manifest[(manifest.split == "test") & (manifest.label == "cat")]
    assert list(test_cats.file) == [f"cat.{i}.jpg" for i in range(14, 18)]
    assert files["validation/dog/dog.10.jpg"].load() == jpeg_bytes(1010)
    assert set(manifest.columns) == {"file", "label", "split", "source"}


def test_make_subset_is_deterministic(archive):
    first = nodes.make_subset(archive, DATA, {})
    second = nodes.make_subset(archive, DATA, {})
    assert first[0].equals(second[0])
    assert {k: v.load() for k, v in first[1].items()} == {k: v.load() for k, v in second[1].items()}


def test_a_rerun_with_remembered_checks_reads_no_image(archive, tmp_path, monkeypatch):
    folder = ImageFolderDataset(path=str(tmp_path / "split"))
    manifest, files, report, _, checks = nodes.make_subset(archive, DATA, {})
    folder.save(files)
    assert len(checks) == 36
    written = (tmp_path / "split" / ".content.sha256").stat().st_mtime_ns

    monkeypatch.setattr(type(archive), "read", lambda *_: pytest.fail("read an image"))
    again = nodes.make_subset(archive, DATA, checks)
    folder.save(again[1])  # same fingerprint: nothing loaded, nothing written
    assert again[0].equals(manifest) and again[4] == checks
    assert (tmp_path / "split" / ".content.sha256").stat().st_mtime_ns == written


def test_remembered_checks_that_are_not_check_results_are_redone(archive):
    _, _, _, _, checks = nodes.make_subset(archive, DATA, {})
    key = next(iter(checks))
    garbled = {**checks, key: {"action": 5}}
    _, files, _, _, redone = nodes.make_subset(archive, DATA, garbled)
    assert redone == checks and all(content.load() for content in files.values())


def test_a_changed_policy_checks_the_images_again(archive):
    _, _, _, _, checks = nodes.make_subset(archive, DATA, {})
    _, _, _, _, rechecked = nodes.make_subset(archive, _data(non_rgb="skip"), checks)
    assert len(rechecked) == 2 * len(checks)


def test_unreadable_images_are_skipped_and_replaced_by_the_next_index(tmp_path):
    path = write_kaggle_zip(tmp_path / "train.zip", per_class=20)
    # Rewrite three cats: empty, truncated, not an image at all.
    broken = {
        "train/cat.2.jpg": b"",
        "train/cat.5.jpg": jpeg_bytes(5)[:60],
        "train/cat.12.jpg": b"<html>not found</html>",
    }
    rebuilt = tmp_path / "broken.zip"
    import zipfile  # noqa: PLC0415

    with zipfile.ZipFile(path) as source, zipfile.ZipFile(rebuilt, "w") as target:
        for name in source.namelist():
            target.writestr(name, broken.get(name, source.read(name)))
    archive = ImageArchiveDataset(filepath=str(rebuilt)).load()
    manifest, files, skipped, _, checks = nodes.make_subset(
        archive, _data(train=8, validation=4, test=4), {}
    )
    assert sorted(skipped.source) == sorted(broken)
    cats = manifest[manifest.label == "cat"]
    assert len(cats) == 16
    train = list(cats[cats.split == "train"].file)
    assert train == [f"cat.{i}.jpg" for i in (0, 1, 3, 4, 6, 7, 8, 9)]
    validation = list(cats[cats.split == "validation"].file)
    assert validation == [f"cat.{i}.jpg" for i in (10, 11, 13, 14)]
    assert not any("cat.12" in name for name in files)
    # Remembered: the skipped images are reported again without being read.
    again = nodes.make_subset(archive, _data(train=8, validation=4, test=4), checks)
    assert sorted(again[2].source) == sorted(broken)


def test_too_large_subsets_fail_before_any_image_is_read(archive, monkeypatch):
    monkeypatch.setattr(type(archive), "read", lambda *_: pytest.fail("read an image"))
    with pytest.raises(ValueError, match=r"train subset asks for 22 'cat' images.*only 20"):
        nodes.make_subset(archive, _data(train=22), {})


def test_too_large_subsets_are_a_mistake_shown_as_one_message_with_the_key_to_set(
    archive, monkeypatch
):
    from convnets.errors import UserError  # noqa: PLC0415

    monkeypatch.setattr(type(archive), "read", lambda *_: pytest.fail("read an image"))
    with pytest.raises(UserError, match=r"--params=cats_vs_dogs.subsets.train.size=<n>"):
        nodes.make_subset(archive, _data(train=22), {})


def test_a_start_past_the_archive_says_to_lower_the_start(archive, monkeypatch):
    monkeypatch.setattr(type(archive), "read", lambda *_: pytest.fail("read an image"))
    subsets = {**SUBSETS, "test": {"start": 100, "size": 4}}  # only the test subset is off
    data = typed_parameters(CatsVsDogsData, "cats_vs_dogs", subsets=subsets)
    with pytest.raises(
        ValueError, match=r"lower cats_vs_dogs.subsets.test.start \(its 'cat' images run from"
    ):
        nodes.make_subset(archive, data, {})


def test_a_corrupt_zip_entry_is_skipped_and_replaced_by_the_next_index(tmp_path):
    import zipfile  # noqa: PLC0415

    path = write_kaggle_zip(tmp_path / "train.zip")
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("train/cat.5.jpg")
    raw = bytearray(path.read_bytes())
    # Past the local header (30 bytes, the name, the extra field): one flipped data bit.
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    raw[start + 100] ^= 0x01
    path.write_bytes(bytes(raw))

    broken = ImageArchiveDataset(filepath=str(path)).load()
    manifest, _, skipped, _, _ = nodes.make_subset(broken, DATA, {})
    assert list(skipped.source) == ["train/cat.5.jpg"]
    assert skipped.action.tolist() == ["skipped"]
    assert "CRC" in skipped.reason[0]
    train_cats = manifest[(manifest.split == "train") & (manifest.label == "cat")]
    assert "cat.5.jpg" not in set(train_cats.file) and "cat.10.jpg" in set(train_cats.file)
    assert len(manifest) == 2 * 18
