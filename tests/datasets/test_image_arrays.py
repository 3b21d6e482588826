"""ImageArrayDataset: chunked atomic writes, skipped when unchanged, rows read back exactly,
checked against the sizes and hashes of its index before use."""

import hashlib
import json
import logging
import os

import numpy as np
import pytest
from kedro.io import DatasetError

from convnets.datasets import DecodedImages, ImageArrayDataset
from convnets.errors import UserError

SHAPE = (4, 5, 3)


def _images(count: int, key: str = "k", chunk: int = 3, fail_after: int | None = None):
    pixels = np.arange(count * np.prod(SHAPE), dtype=np.int64).reshape(count, *SHAPE) % 251

    def chunks():
        for start in range(0, count, chunk):
            if fail_after is not None and start >= fail_after:
                raise OSError("decoder crashed")
            yield pixels[start : start + chunk].astype(np.uint8)

    labels = (np.arange(count) % 2).astype(np.int32)
    return DecodedImages(key=key, labels=labels, shape=SHAPE, chunks=chunks), pixels


def test_round_trip_reads_any_rows_in_the_asked_order(tmp_path):
    images, pixels = _images(10)
    dataset = ImageArrayDataset(path=str(tmp_path / "decoded"))
    dataset.save({"train": images})
    loaded = dataset.load().subsets((4, 5))["train"]
    assert len(loaded) == 10 and loaded.shape == SHAPE
    np.testing.assert_array_equal(loaded.read([7, 2, 9]), pixels[[7, 2, 9]])
    np.testing.assert_array_equal(loaded.labels, images.labels)
    assert np.load(tmp_path / "decoded" / "4x5" / "train.npy").shape == (10, *SHAPE)


def test_the_same_keys_write_nothing_and_decode_nothing(tmp_path):
    dataset = ImageArrayDataset(path=str(tmp_path / "decoded"))
    images, _ = _images(4)
    dataset.save({"train": images})
    before = (tmp_path / "decoded" / "4x5" / "train.npy").stat().st_mtime_ns
    untouchable, _ = _images(4, fail_after=0)
    dataset.save({"train": untouchable})
    assert (tmp_path / "decoded" / "4x5" / "train.npy").stat().st_mtime_ns == before


def test_a_crash_while_decoding_keeps_the_previous_cache_and_no_partial_one(tmp_path):
    dataset = ImageArrayDataset(path=str(tmp_path / "decoded"))
    images, pixels = _images(4)
    dataset.save({"train": images})
    broken, _ = _images(9, key="other", fail_after=3)
    with pytest.raises(DatasetError, match="decoder crashed"):
        dataset.save({"train": broken})
    np.testing.assert_array_equal(dataset.load().subsets((4, 5))["train"].read([3]), pixels[[3]])
    assert [p.name for p in tmp_path.iterdir()] == ["decoded"]
    assert [p.name for p in (tmp_path / "decoded").iterdir()] == ["4x5"]


def test_fewer_images_than_labels_is_an_error(tmp_path):
    images, _ = _images(6)
    short = DecodedImages(
        key="k", labels=np.zeros(8, dtype=np.int32), shape=SHAPE, chunks=images.chunks
    )
    with pytest.raises(DatasetError, match="6 images decoded for 8 labels"):
        ImageArrayDataset(path=str(tmp_path / "decoded")).save({"train": short})
    assert not (tmp_path / "decoded" / "4x5").exists()


def test_loading_before_the_preprocessing_ran_says_what_to_run(tmp_path):
    with pytest.raises(DatasetError, match="4x5 has not been written yet: run the preprocessing"):
        ImageArrayDataset(path=str(tmp_path / "missing")).load().subsets((4, 5))


# ---------------------------------------------------------------- checked before use


def _overwrite(folder):  # random bytes over the pixels: same size, other content
    path = folder / "train.npy"
    with path.open("r+b") as handle:
        handle.seek(128)
        handle.write(os.urandom(path.stat().st_size - 128))
    return path


def _truncate(folder):
    path = folder / "train.npy"
    os.truncate(path, path.stat().st_size - 7)
    return path


def _garble_index(folder):
    path = folder / "index.json"
    path.write_bytes(path.read_bytes()[:25])
    return path


def _delete_labels(folder):
    path = folder / "train.labels.npy"
    path.unlink()
    return path


def test_the_index_records_each_files_size_and_sha256(tmp_path):
    images, _ = _images(6)
    ImageArrayDataset(path=str(tmp_path / "decoded")).save({"train": images})
    folder = tmp_path / "decoded" / "4x5"
    index = json.loads((folder / "index.json").read_text())
    assert index["keys"] == {"train": "k"}
    for name in ("train.npy", "train.labels.npy"):
        content = (folder / name).read_bytes()
        assert index["files"][name] == {
            "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
        }


@pytest.mark.parametrize("damage", [_overwrite, _truncate, _garble_index, _delete_labels])
def test_a_damaged_copy_is_refused_then_set_aside_and_decoded_again(tmp_path, caplog, damage):
    dataset = ImageArrayDataset(path=str(tmp_path / "decoded"))
    images, pixels = _images(10)
    dataset.save({"train": images})
    damaged = damage(tmp_path / "decoded" / "4x5")

    # Never read for training: a UserError naming the file and the command.
    with pytest.raises(UserError, match=rf"{damaged.name}.*--tags=ingestion,preprocessing"):
        dataset.load().subsets((4, 5))

    decoded = []

    def chunks():
        decoded.append(True)
        yield from images.chunks()

    again = DecodedImages(key="k", labels=images.labels, shape=SHAPE, chunks=chunks)
    with caplog.at_level(logging.INFO, logger="convnets.datasets.image_arrays"):
        dataset.save({"train": again})
    assert decoded and "up to date" not in caplog.text
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(damaged) in warnings[0].getMessage()
    loaded = dataset.load().subsets((4, 5))["train"]
    np.testing.assert_array_equal(loaded.read(range(10)), pixels)
    aside = [p.name for p in (tmp_path / "decoded").iterdir() if p.name != "4x5"]
    assert len(aside) == 1 and aside[0].startswith("4x5.damaged-")  # kept, not deleted


def test_a_copy_written_before_the_index_had_hashes_is_decoded_again(tmp_path, caplog):
    dataset = ImageArrayDataset(path=str(tmp_path / "decoded"))
    images, pixels = _images(4)
    dataset.save({"train": images})
    (tmp_path / "decoded" / "4x5" / "index.json").write_text('{"train": "k"}')  # format 1
    with pytest.raises(UserError, match="older version.*--tags=ingestion,preprocessing"):
        dataset.load().subsets((4, 5))
    with caplog.at_level(logging.INFO, logger="convnets.datasets.image_arrays"):
        dataset.save({"train": images})
    assert "Decoded and wrote 4 images" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    np.testing.assert_array_equal(dataset.load().subsets((4, 5))["train"].read([3]), pixels[[3]])
    assert [p.name for p in (tmp_path / "decoded").iterdir()] == ["4x5"]


def test_a_copy_set_aside_does_not_count_as_written(tmp_path):
    dataset = ImageArrayDataset(path=str(tmp_path / "decoded"))
    images, _ = _images(4)
    dataset.save({"train": images})
    (tmp_path / "decoded" / "4x5").rename(tmp_path / "decoded" / "4x5.damaged-20250101T000000")
    assert not dataset.exists()
