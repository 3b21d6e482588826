"""ImageArchiveDataset: Kaggle's train.zip, the outer competition zip, or a folder."""

import hashlib
import os
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


def _zip_with(path, entries):
    """entries: (ZipInfo or name, bytes, compress_type)."""
    with zipfile.ZipFile(path, "w") as archive:
        for info, content, compression in entries:
            archive.writestr(info, content, compress_type=compression)
    return path


def test_unsafe_entries_are_refused_and_the_rest_indexed(tmp_path):
    symlink = zipfile.ZipInfo("train/dog.1.jpg")
    symlink.external_attr = 0o120777 << 16  # S_IFLNK
    path = _zip_with(
        tmp_path / "train.zip",
        [
            ("train/cat.0.jpg", jpeg_bytes(0), zipfile.ZIP_STORED),
            ("train/dog.0.jpg", jpeg_bytes(1), zipfile.ZIP_STORED),
            ("../../cat.1.jpg", jpeg_bytes(2), zipfile.ZIP_STORED),
            ("train/../../../cat.2.jpg", jpeg_bytes(2), zipfile.ZIP_STORED),
            ("/etc/cat.3.jpg", jpeg_bytes(3), zipfile.ZIP_STORED),
            (symlink, b"/etc/passwd", zipfile.ZIP_STORED),
        ],
    )
    archive = ImageArchiveDataset(filepath=str(path)).load()
    assert archive.images == {"cat": {0: "train/cat.0.jpg"}, "dog": {0: "train/dog.0.jpg"}}
    assert dict(archive.refused) == {
        "../../cat.1.jpg": "'..' path component",
        "train/../../../cat.2.jpg": "'..' path component",
        "/etc/cat.3.jpg": "absolute path",
        "train/dog.1.jpg": "symbolic link",
    }


def test_a_zip_bomb_entry_is_refused_by_its_compression_ratio(tmp_path):
    path = _zip_with(
        tmp_path / "train.zip",
        [
            ("train/cat.0.jpg", jpeg_bytes(0), zipfile.ZIP_STORED),
            ("train/dog.0.jpg", b"\0" * 20_000_000, zipfile.ZIP_DEFLATED),
        ],
    )
    archive = ImageArchiveDataset(filepath=str(path)).load()
    assert "dog" not in archive.images
    assert "compression ratio" in dict(archive.refused)["train/dog.0.jpg"]


def test_an_oversized_entry_is_refused_and_reading_stops_at_the_total_limit(tmp_path):
    path = write_kaggle_zip(
        tmp_path / "train.zip", per_class=5, extra={"train/cat.9.jpg": b"x" * 5000}
    )
    limits = {"max_image_bytes": 4000, "max_total_bytes": 2500}
    archive = ImageArchiveDataset(filepath=str(path), limits=limits).load()
    assert "over max_image_bytes" in dict(archive.refused)["train/cat.9.jpg"]
    from convnets.datasets.image_archive import ArchiveLimitError  # noqa: PLC0415

    with pytest.raises(ArchiveLimitError, match="max_total_bytes"):
        for index in range(5):
            archive.read(archive.images["cat"][index])


def test_microsoft_petimages_layout_maps_to_the_books_names(tmp_path):
    _zip_with(
        tmp_path / "kagglecatsanddogs_5340.zip",
        [
            ("PetImages/Cat/0.jpg", jpeg_bytes(0), zipfile.ZIP_STORED),
            ("PetImages/Cat/12.jpg", jpeg_bytes(1), zipfile.ZIP_STORED),
            ("PetImages/Dog/3.jpg", jpeg_bytes(2), zipfile.ZIP_STORED),
            ("PetImages/Cat/Thumbs.db", b"windows", zipfile.ZIP_STORED),
            ("CDLA-Permissive-2.0.pdf", b"%PDF", zipfile.ZIP_STORED),
        ],
    )
    archive = ImageArchiveDataset(filepath=str(tmp_path)).load()
    assert archive.images == {
        "cat": {0: "PetImages/Cat/0.jpg", 12: "PetImages/Cat/12.jpg"},
        "dog": {3: "PetImages/Dog/3.jpg"},
    }


def test_symlinks_in_an_extracted_folder_are_refused(tmp_path, kaggle_zip):
    with zipfile.ZipFile(kaggle_zip) as archive:
        archive.extractall(tmp_path / "extracted")
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(jpeg_bytes(9))
    (tmp_path / "extracted" / "train" / "cat.20.jpg").symlink_to(outside)
    loaded = ImageArchiveDataset(filepath=str(tmp_path / "extracted")).load()
    assert 20 not in loaded.images["cat"]
    assert dict(loaded.refused) == {"cat.20.jpg": "symbolic link"}  # relative to train/


def _petimages_zip(path):
    return _zip_with(
        path,
        [
            (f"PetImages/{label}/{i}.jpg", jpeg_bytes(i), zipfile.ZIP_STORED)
            for label in ("Cat", "Dog")
            for i in range(3)
        ],
    )


def test_source_microsoft_downloads_the_petimages_zip_once(tmp_path, http_server):
    served, url = http_server
    source = _petimages_zip(served / "kagglecatsanddogs_5340.zip")
    raw = tmp_path / "raw" / "dogs-vs-cats"
    dataset = ImageArchiveDataset(
        filepath=str(raw),
        source="microsoft",
        download={
            "url": f"{url}/kagglecatsanddogs_5340.zip",
            "sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
        },
    )
    assert dataset.load().count("dog") == 3
    assert (raw / "kagglecatsanddogs_5340.zip").read_bytes() == source.read_bytes()
    source.unlink()  # cached: the server's copy is no longer needed
    assert dataset.load().count("cat") == 3


def test_source_auto_prefers_the_local_copy(tmp_path, kaggle_zip):
    dataset = ImageArchiveDataset(
        filepath=str(kaggle_zip.parent),
        source="auto",
        download={"url": "http://127.0.0.1:9/never-asked.zip"},
    )
    assert dataset.load().source == kaggle_zip


def test_source_auto_downloads_when_there_is_no_local_copy(tmp_path, http_server):
    served, url = http_server
    _petimages_zip(served / "pets.zip")
    dataset = ImageArchiveDataset(
        filepath=str(tmp_path / "raw"), source="auto", download={"url": f"{url}/pets.zip"}
    )
    assert dataset.load().count("cat") == 3


def test_offline_download_says_where_to_put_the_archive(tmp_path):
    dataset = ImageArchiveDataset(
        filepath=str(tmp_path / "raw"),
        source="microsoft",
        download={"url": "http://127.0.0.1:9/closed.zip"},
    )
    with pytest.raises(DatasetError, match=r"(?s)Could not reach.*Offline\?.*train\.zip"):
        dataset.load()
    assert not any((tmp_path / "raw").glob("*.zip"))


def test_an_unknown_source_is_rejected():
    with pytest.raises(DatasetError, match="source must be one of"):
        ImageArchiveDataset(filepath="x", source="s3")


@pytest.fixture
def no_kaggle_credentials(tmp_path, monkeypatch):
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.delenv("KAGGLE_KEY", raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle-config"))


def test_kaggle_without_credentials_names_the_three_ways_to_give_them(
    tmp_path, no_kaggle_credentials
):
    dataset = ImageArchiveDataset(filepath=str(tmp_path / "raw"), source="kaggle")
    with pytest.raises(DatasetError, match=r"(?s)credentials\.yml.*KAGGLE_USERNAME.*kaggle\.json"):
        dataset.load()


def test_kaggle_credentials_never_reach_the_logs(
    tmp_path, no_kaggle_credentials, monkeypatch, caplog
):
    # The real kaggle client, pointed at localhost where nothing listens: it must
    # fail without echoing the key, and leave the environment as it was.
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "LOCALHOST")
    # The client reads that variable once, on import: an earlier test may have imported it.
    kaggle_api = pytest.importorskip("kaggle.api.kaggle_api_extended").KaggleApi
    monkeypatch.setattr(kaggle_api, "args", [*kaggle_api.args, "--local"])
    secret = "k3y-that-must-not-leak"
    dataset = ImageArchiveDataset(
        filepath=str(tmp_path / "raw"),
        source="kaggle",
        credentials={"username": "alice", "key": secret},
    )
    caplog.set_level("DEBUG")
    with pytest.raises(DatasetError, match="Kaggle download of dogs-vs-cats failed") as error:
        dataset.load()
    assert secret not in str(error.value)
    assert secret not in caplog.text
    assert secret not in str(dataset) and secret not in repr(dataset._describe())
    assert "KAGGLE_KEY" not in os.environ


def test_kaggle_credentials_in_the_environment_are_found_by_the_kaggle_client(
    tmp_path, no_kaggle_credentials, monkeypatch
):
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "LOCALHOST")
    kaggle_api = pytest.importorskip("kaggle.api.kaggle_api_extended").KaggleApi
    monkeypatch.setattr(kaggle_api, "args", [*kaggle_api.args, "--local"])
    monkeypatch.setenv("KAGGLE_USERNAME", "bob")
    monkeypatch.setenv("KAGGLE_KEY", "env-k3y")
    dataset = ImageArchiveDataset(filepath=str(tmp_path / "raw"), source="kaggle")
    # Past authentication: the download itself fails (nothing listens on localhost).
    with pytest.raises(DatasetError, match="Kaggle download of dogs-vs-cats failed") as error:
        dataset.load()
    assert "env-k3y" not in str(error.value)
    assert os.environ["KAGGLE_KEY"] == "env-k3y"


def test_a_read_only_folder_with_the_competition_zip_says_how_to_extract(
    tmp_path, kaggle_zip, monkeypatch
):
    import errno  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    folder = tmp_path / "cats_vs_dogs"
    folder.mkdir()
    with zipfile.ZipFile(folder / "dogs-vs-cats.zip", "w") as outer:
        outer.write(kaggle_zip, "train.zip")

    def read_only(*args, **kwargs):  # as root, a chmod would not stop the write
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", read_only)
    with pytest.raises(DatasetError, match=r"Read-only file system.*unzip -j .*dogs-vs-cats.zip"):
        ImageArchiveDataset(filepath=str(folder)).load()
    assert sorted(p.name for p in folder.iterdir()) == ["dogs-vs-cats.zip"]
