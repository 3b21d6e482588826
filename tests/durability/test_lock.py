"""The start-up clean-up removes the project's staging folders and nothing of the user's."""

from convnets.durability.lock import (
    STAGING_MARK,
    make_staging_dir,
    mark_as_staging,
    remove_stale_staging,
    staging_dir,
)

PHOTO = b"\xff\xd8\xff\xe0 a holiday photo"


def _users_folder(path):
    path.mkdir(parents=True)
    (path / "photo.jpg").write_bytes(PHOTO)
    return path


def test_only_marked_staging_folders_are_removed_and_the_users_survive(tmp_path):
    data = tmp_path / "data"
    users = [
        _users_folder(data / "01_raw" / "predict" / ".download-holiday"),
        _users_folder(data / "01_raw" / "my-album" / ".summer-staging-2024"),
        _users_folder(data / "01_raw" / "my-album" / ".winter-retired-2023"),
    ]
    intermediate = data / "02_intermediate"
    intermediate.mkdir(parents=True)
    staging = make_staging_dir(intermediate, ".split-staging-", "a test")
    (staging / "train").mkdir()
    download = make_staging_dir(data / "01_raw", ".download-", "a test")
    retired = _users_folder(intermediate / ".split-retired-123")
    mark_as_staging(retired, "a test")

    removed = remove_stale_staging(data)

    assert sorted(removed) == sorted([staging, download, retired])
    for folder in (staging, download, retired):
        assert not folder.exists()
    for folder in users:
        assert (folder / "photo.jpg").read_bytes() == PHOTO


def test_a_marked_folder_without_a_staging_name_is_kept(tmp_path):
    # replace_folder's result carries the marker for an instant after the swap.
    folder = _users_folder(tmp_path / "data" / "split")
    mark_as_staging(folder, "a test")
    assert remove_stale_staging(tmp_path / "data") == []
    assert (folder / "photo.jpg").is_file()


def test_a_staging_name_linked_to_a_users_marked_folder_is_not_followed(tmp_path):
    target = _users_folder(tmp_path / "elsewhere")
    mark_as_staging(target, "a test")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / ".x-staging-1").symlink_to(target, target_is_directory=True)
    assert remove_stale_staging(tmp_path / "data") == []
    assert (target / "photo.jpg").is_file()


def test_staging_dir_is_marked_while_in_use_and_removed_after(tmp_path):
    with staging_dir(tmp_path, ".download-", "a test") as folder:
        assert folder.name.startswith(".download-")
        assert "a test" in (folder / STAGING_MARK).read_text()
    assert list(tmp_path.iterdir()) == []
