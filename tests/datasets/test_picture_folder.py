"""The predict pipeline's pictures: every entry, read only when it is a regular file."""

import os
import socket
import threading

import pytest
from kedro.io import DatasetError

from convnets.datasets import PictureFolderDataset
from convnets.datasets.picture_folder import (
    NotARegularFile,
    PictureTooLarge,
    printable_name,
    raw_name,
    read_bounded,
)


def _load(folder, **kwargs):
    return PictureFolderDataset(path=str(folder), **kwargs).load()


def _call_within(loader, seconds: float = 5.0):
    """What ``loader()`` returns or raises; a failure, not a hang, if it blocks."""
    outcome = {}

    def run():
        try:
            outcome["value"] = loader()
        except Exception as exc:  # noqa: BLE001 - handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the loader blocked"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def test_every_file_is_loaded_lazily_as_bytes(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"\xff\xd8 not really")
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "b.png").write_bytes(b"\x89PNG")
    loaded = _load(tmp_path)
    assert sorted(loaded) == ["a.jpg", "nested/b.png"]
    assert loaded["a.jpg"]() == b"\xff\xd8 not really"


def test_a_missing_folder_says_how_to_give_one(tmp_path):
    with pytest.raises(DatasetError, match=r"absent does not exist.*--params=predict_dir="):
        _load(tmp_path / "absent")


def test_an_empty_folder_says_what_to_put_in_it(tmp_path):
    with pytest.raises(DatasetError, match=r"is empty: put pictures in it"):
        _load(tmp_path)


def test_a_fifo_gets_a_reason_and_is_never_opened(tmp_path):
    os.mkfifo(tmp_path / "pipe.jpg")
    loaded = _load(tmp_path)
    with pytest.raises(NotARegularFile, match=r"a FIFO \(named pipe\), not a regular file"):
        _call_within(loaded["pipe.jpg"])


def test_a_socket_gets_a_reason(tmp_path):
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(tmp_path / "s.jpg"))
    except OSError:  # a path too long for a socket
        pytest.skip("no socket here")
    with server, pytest.raises(NotARegularFile, match=r"a socket, not a regular file"):
        _call_within(_load(tmp_path)["s.jpg"])


def test_a_file_swapped_for_a_fifo_or_a_link_after_the_listing_is_not_read(tmp_path):
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / name).write_bytes(b"x")
    loaded = _load(tmp_path)
    (tmp_path / "a.jpg").unlink()
    os.mkfifo(tmp_path / "a.jpg")
    (tmp_path / "b.jpg").unlink()
    (tmp_path / "b.jpg").symlink_to("/dev/zero")
    with pytest.raises(NotARegularFile, match="a FIFO"):
        _call_within(loaded["a.jpg"])
    with pytest.raises(NotARegularFile, match="became a symbolic link"):
        _call_within(loaded["b.jpg"])


def test_links_are_followed_only_to_regular_files_inside_the_folder(tmp_path):
    folder, outside = tmp_path / "pictures", tmp_path / "outside.jpg"
    folder.mkdir()
    outside.write_bytes(b"secret")
    (folder / "real.jpg").write_bytes(b"picture")
    (folder / "sub").mkdir()
    (folder / "inside.jpg").symlink_to("real.jpg")
    (folder / "chain.jpg").symlink_to("inside.jpg")
    (folder / "zero.jpg").symlink_to("/dev/zero")
    (folder / "out.jpg").symlink_to(outside)
    (folder / "up.jpg").symlink_to("../outside.jpg")
    (folder / "dir.jpg").symlink_to("sub")
    (folder / "gone.jpg").symlink_to("nothing.jpg")
    loaded = _load(folder)
    assert _call_within(loaded["inside.jpg"]) == b"picture"
    assert _call_within(loaded["chain.jpg"]) == b"picture"
    for name, reason in (
        ("zero.jpg", "a symbolic link to /dev/zero, outside the folder: not followed"),
        ("out.jpg", "outside the folder: not followed"),
        ("up.jpg", "outside the folder: not followed"),
        ("dir.jpg", "a symbolic link to a directory: not followed"),
        ("gone.jpg", r"a symbolic link to nothing \(dangling\)"),
    ):
        with pytest.raises(NotARegularFile, match=reason):
            _call_within(loaded[name])


def test_a_file_over_the_limit_is_refused_from_its_size_before_any_read(tmp_path, monkeypatch):
    huge = tmp_path / "huge.jpg"
    with huge.open("wb") as file:
        file.truncate(2 * 2**30)  # 2 GiB, sparse: nothing on disk
    (tmp_path / "small.jpg").write_bytes(b"x" * 100)
    loaded = _load(tmp_path, max_image_bytes=1000)
    reads = []
    real_read = os.read
    monkeypatch.setattr(os, "read", lambda *args: reads.append(args) or real_read(*args))
    with pytest.raises(PictureTooLarge, match=r"2,147,483,648 bytes, more than the 1,000 allowed"):
        loaded["huge.jpg"]()
    assert reads == []
    assert loaded["small.jpg"]() == b"x" * 100


def test_a_read_never_goes_past_the_limit_whatever_the_size_says(tmp_path):
    # /proc files say they are empty and are not; a file may grow as it is read.
    status = "/proc/self/status"
    if not os.path.exists(status) or os.stat(status).st_size:
        pytest.skip("no /proc")
    assert read_bounded(status, 10**6).startswith(b"Name:")
    with pytest.raises(PictureTooLarge, match="grew past the 10 bytes allowed"):
        read_bounded(status, 10)


def test_a_directory_named_like_a_picture_gets_a_row_and_others_are_walked(tmp_path):
    (tmp_path / "x.jpg").mkdir()
    (tmp_path / "x.jpg" / "inner.png").write_bytes(b"p")
    (tmp_path / "holiday").mkdir()
    loaded = _load(tmp_path)
    assert sorted(loaded) == ["x.jpg", "x.jpg/inner.png"]
    with pytest.raises(NotARegularFile, match="a directory, not a picture"):
        loaded["x.jpg"]()


def test_a_name_that_is_not_utf8_is_read_and_written_losslessly(tmp_path):
    raw = b"bad_utf8_\xff\xfe.jpg"
    (tmp_path / os.fsdecode(raw)).write_bytes(b"content")
    (tmp_path / "back\\slash.jpg").write_bytes(b"other")
    loaded = _load(tmp_path)
    (name,) = [name for name in loaded if name.startswith("bad")]
    assert loaded[name]() == b"content"
    assert printable_name(name) == "bad_utf8_\\xff\\xfe.jpg"
    assert raw_name(printable_name(name)) == raw
    # A backslash is doubled, so a name really written "\xff" cannot be mistaken for it.
    assert printable_name("back\\slash.jpg") == "back\\\\slash.jpg"
    assert raw_name(printable_name("back\\slash.jpg")) == b"back\\slash.jpg"
    assert printable_name('chat é,"\n.jpg') == 'chat é,"\n.jpg'  # valid UTF-8: as it is
