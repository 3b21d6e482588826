"""open_image_archive on its own: layouts and refused entries, without the dataset's sources
(tests/datasets/test_image_archive.py runs the same reading through ImageArchiveDataset)."""

import zipfile

from convnets.datasets.image_archive_reader import has_local_copy, open_image_archive
from tests.conftest import jpeg_bytes


def test_a_kaggle_zip_and_its_folder_open_to_the_same_index(kaggle_zip):
    from_file = open_image_archive(kaggle_zip)
    from_folder = open_image_archive(kaggle_zip.parent)
    assert from_file.source == from_folder.source == kaggle_zip
    assert from_file.images == from_folder.images
    assert has_local_copy(kaggle_zip.parent)


def test_an_entry_with_a_parent_component_is_refused_and_never_indexed(tmp_path):
    path = tmp_path / "train.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("train/cat.0.jpg", jpeg_bytes(0))
        archive.writestr("../cat.1.jpg", jpeg_bytes(1))
    opened = open_image_archive(path)
    assert opened.images == {"cat": {0: "train/cat.0.jpg"}}
    assert opened.refused == [("../cat.1.jpg", "'..' path component")]
    assert not has_local_copy(tmp_path / "elsewhere")
