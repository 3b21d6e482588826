"""ImageArchiveDataset: Kaggle's train.zip, the outer competition zip, or a folder."""

import zipfile

import pytest
from kedro.io import DatasetError

from convnets.datasets import ImageArchiveDataset
from tests.conftest import jpeg_bytes, write_kaggle_zip


def test_indexes_kaggle_train_zip_by_label_and_number(kaggle_zip):
    archive = ImageArchiveDataset(filepath=str(kaggle_zip)).load()
    assert archive.count("cat") == archive.count("dog") == 20
    assert archive.images["dog"][7] == "train/dog.7.jpg"
    assert archive.read("train/cat.0.jpg") == jpeg_bytes(0)


def test_a_folder_holding_train_zip_is_found(kaggle_zip):
    archive = ImageArchiveDataset(filepath=str(kaggle_zip.parent)).load()
    assert archive.source == kaggle_zip


def test_the_outer_competition_zip_is_unpacked_once(tmp_path, kaggle_zip):
    folder = tmp_path / "download"
    folder.mkdir()
    with zipfile.ZipFile(folder / "dogs-vs-cats.zip", "w") as outer:
        outer.write(kaggle_zip, "train.zip")
        outer.writestr("test1.zip", b"not needed")
    archive = ImageArchiveDataset(filepath=str(folder)).load()
    assert archive.source == folder / "train.zip"
    assert archive.count("cat") == 20
    assert sorted(p.name for p in folder.iterdir()) == ["dogs-vs-cats.zip", "train.zip"]


def test_an_extracted_folder_is_read_in_place(tmp_path, kaggle_zip):
    with zipfile.ZipFile(kaggle_zip) as archive:
        archive.extractall(tmp_path / "extracted")
    loaded = ImageArchiveDataset(filepath=str(tmp_path / "extracted")).load()
    assert loaded.count("dog") == 20
    assert loaded.read(loaded.images["cat"][3]) == jpeg_bytes(3)


def test_a_missing_archive_says_where_to_put_it_and_how_to_get_it(tmp_path):
    with pytest.raises(DatasetError, match=r"(?s)missing.*kaggle competitions download"):
        ImageArchiveDataset(filepath=str(tmp_path / "nowhere")).load()


def test_an_archive_without_the_kaggle_layout_is_rejected(tmp_path):
    path = tmp_path / "train.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("images/0001.png", b"x")
    with pytest.raises(DatasetError, match="no images named like Kaggle"):
        ImageArchiveDataset(filepath=str(path)).load()


def test_a_file_that_is_not_a_zip_is_rejected(tmp_path):
    path = tmp_path / "train.zip"
    path.write_bytes(b"partial download")
    with pytest.raises(DatasetError, match="not a readable zip"):
        ImageArchiveDataset(filepath=str(path)).load()


def test_two_images_with_the_same_name_are_ambiguous(tmp_path):
    path = write_kaggle_zip(
        tmp_path / "train.zip", per_class=2, extra={"other/cat.1.jpg": jpeg_bytes(5)}
    )
    with pytest.raises(DatasetError, match="two images named cat.1"):
        ImageArchiveDataset(filepath=str(path)).load()
