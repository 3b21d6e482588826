"""ImageArrayDataset: chunked atomic writes, skipped when unchanged, rows read back exactly."""

import numpy as np
import pytest
from kedro.io import DatasetError

from convnets.datasets import DecodedImages, ImageArrayDataset

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
