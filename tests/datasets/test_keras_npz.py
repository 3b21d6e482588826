"""KerasNpzDataset: local file first, real download from a local HTTP server otherwise."""

import hashlib
import shutil

import numpy as np
import pytest
from kedro.io import DatasetError

from convnets.datasets import KerasNpzDataset
from tests.conftest import write_mnist_npz


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_loads_the_four_arrays_of_a_local_file(tmp_path):
    path = write_mnist_npz(tmp_path / "mnist.npz", n_train=12, n_test=3)
    arrays = KerasNpzDataset(filepath=str(path)).load()
    assert arrays["x_train"].shape == (12, 28, 28)
    assert arrays["y_test"].shape == (3,)


def test_downloads_from_origin_when_missing_and_checks_the_hash(tmp_path, http_server):
    served, url = http_server
    source = write_mnist_npz(served / "mnist.npz", n_train=7, n_test=2)
    target = tmp_path / "raw" / "mnist.npz"
    dataset = KerasNpzDataset(
        filepath=str(target), origin=f"{url}/mnist.npz", file_hash=_sha256(source)
    )
    assert not dataset.exists()
    arrays = dataset.load()
    assert arrays["x_train"].shape == (7, 28, 28)
    assert target.read_bytes() == source.read_bytes()
    # Cached: a second load works with the server's copy gone.
    source.unlink()
    assert KerasNpzDataset(filepath=str(target), origin=f"{url}/mnist.npz").load()


def test_a_hash_mismatch_is_refused_and_leaves_nothing(tmp_path, http_server):
    served, url = http_server
    write_mnist_npz(served / "mnist.npz")
    target = tmp_path / "raw" / "mnist.npz"
    dataset = KerasNpzDataset(filepath=str(target), origin=f"{url}/mnist.npz", file_hash="0" * 64)
    with pytest.raises(DatasetError, match="sha256"):
        dataset.load()
    assert list(target.parent.iterdir()) == []


def test_an_unreachable_origin_says_where_to_put_the_file(tmp_path, http_server):
    _, url = http_server
    target = tmp_path / "raw" / "mnist.npz"
    dataset = KerasNpzDataset(filepath=str(target), origin=f"{url}/missing.npz")
    with pytest.raises(DatasetError, match=r"Copy the file to .*mnist\.npz"):
        dataset.load()
    assert not target.exists()


def test_a_file_without_the_keras_keys_is_a_clear_error(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, images=np.zeros(3))
    with pytest.raises(DatasetError, match="x_train"):
        KerasNpzDataset(filepath=str(path)).load()


def test_a_file_that_is_not_npz_is_a_clear_error(tmp_path):
    path = tmp_path / "mnist.npz"
    shutil.copy(__file__, path)
    with pytest.raises(DatasetError, match="not a readable npz"):
        KerasNpzDataset(filepath=str(path)).load()


def test_fashion_mnist_idx_files_are_downloaded_into_one_npz(tmp_path, http_server):
    import gzip  # noqa: PLC0415

    served, url = http_server
    rng = np.random.default_rng(1)
    arrays = {
        "x_train": rng.integers(0, 255, (5, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, 5, dtype=np.uint8),
        "x_test": rng.integers(0, 255, (2, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, 2, dtype=np.uint8),
    }
    for key, name, offset in (
        ("y_train", "train-labels-idx1-ubyte.gz", 8),
        ("x_train", "train-images-idx3-ubyte.gz", 16),
        ("y_test", "t10k-labels-idx1-ubyte.gz", 8),
        ("x_test", "t10k-images-idx3-ubyte.gz", 16),
    ):
        (served / name).write_bytes(gzip.compress(b"\0" * offset + arrays[key].tobytes()))
    target = tmp_path / "raw" / "fashion_mnist.npz"
    loaded = KerasNpzDataset(filepath=str(target), idx_origin=url).load()
    for key, expected in arrays.items():
        np.testing.assert_array_equal(loaded[key], expected)
    assert sorted(p.name for p in target.parent.iterdir()) == ["fashion_mnist.npz"]


def test_a_partial_download_left_by_a_killed_run_is_not_kept_as_the_file(tmp_path, http_server):
    # The project's downloader: a server without Range support sends the whole file
    # again, and the leftover .part is started over, never appended to.
    served, url = http_server
    source = write_mnist_npz(served / "mnist.npz", n_train=7, n_test=2)
    target = tmp_path / "raw" / "mnist.npz"
    target.parent.mkdir()
    target.with_name("mnist.npz.part").write_bytes(b"left by a killed run")
    dataset = KerasNpzDataset(
        filepath=str(target), origin=f"{url}/mnist.npz", file_hash=_sha256(source)
    )
    assert dataset.load()["x_train"].shape == (7, 28, 28)
    assert sorted(p.name for p in target.parent.iterdir()) == ["mnist.npz"]
