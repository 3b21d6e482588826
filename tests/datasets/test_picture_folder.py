"""The predict pipeline's pictures: every file, and a clear word when there are none."""

import pytest
from kedro.io import DatasetError

from convnets.datasets import PictureFolderDataset

BYTES = {"type": "text.TextDataset", "fs_args": {"open_args_load": {"mode": "rb"}}}


def test_every_file_is_loaded_lazily_as_bytes(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"\xff\xd8 not really")
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "b.png").write_bytes(b"\x89PNG")
    loaded = PictureFolderDataset(path=str(tmp_path), dataset=BYTES).load()
    assert sorted(loaded) == ["a.jpg", "nested/b.png"]
    assert loaded["a.jpg"]() == b"\xff\xd8 not really"


def test_a_missing_folder_says_how_to_give_one(tmp_path):
    dataset = PictureFolderDataset(path=str(tmp_path / "absent"), dataset=BYTES)
    with pytest.raises(DatasetError, match=r"absent does not exist.*--params=predict_dir="):
        dataset.load()


def test_an_empty_folder_says_what_to_put_in_it(tmp_path):
    dataset = PictureFolderDataset(path=str(tmp_path), dataset=BYTES)
    with pytest.raises(DatasetError, match=r"is empty: put pictures in it"):
        dataset.load()
