"""Resumable, verified downloads: stream into ``<target>.part``, rename when complete.

The project's one downloader (the PetImages zip, MNIST's npz, Fashion-MNIST's idx files).
Not ``keras.utils.get_file``: it writes straight to the target, cannot resume, checks no size.
"""

from __future__ import annotations

import http.client
import logging
import urllib.error
import urllib.request
from pathlib import Path

from kedro.io import DatasetError
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from convnets.durability.atomic import move_into_place
from convnets.durability.integrity import file_hash
from convnets.errors import UserError

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20


class DownloadError(UserError, DatasetError):
    """A download that could not be completed or verified; nothing was put in place."""


def _verify(path: Path, size: int | None, sha256: str | None) -> str | None:
    """Why ``path`` is not the expected file, or None when it is (or nothing is known)."""
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        return f"size {actual_size:,} bytes, expected {size:,}"
    if sha256 is not None and file_hash(path) != sha256.lower():
        return f"sha256 differs from {sha256}"
    return None


def _open(url: str, offset: int, timeout: float):
    request = urllib.request.Request(url, headers={"User-Agent": "convnets"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (http(s) only)


def download(
    url: str,
    target: Path,
    *,
    size: int | None = None,
    sha256: str | None = None,
    timeout: float = 60.0,
    offline_hint: str = "",
) -> Path:
    """Download ``url`` to ``target`` unless a verified copy is already there.

    The bytes go to ``<target>.part``. A ``.part`` left by an interrupted run is
    resumed with an HTTP Range request; when the server answers with the whole
    file instead (no Range support), the download restarts from zero. ``size`` and
    ``sha256``, when given, are checked before the file is renamed into place; a
    mismatch deletes the partial file.
    """
    if not url.startswith(("http://", "https://")):
        raise DownloadError(f"Only http(s) downloads are supported, not {url!r}")
    target = Path(target)
    if target.is_file():
        problem = _verify(target, size, sha256)
        if problem is None:
            logger.info("%s is already downloaded", target)
            return target
        raise DownloadError(
            f"{target} exists but is not the expected file ({problem}). Delete it to "
            "download it again."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    offset = partial.stat().st_size if partial.is_file() else 0
    try:
        response = _open(url, offset, timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # noqa: PLR2004 - the part already holds everything
            response = None
        else:
            raise DownloadError(
                f"Downloading {url} failed: HTTP {exc.code}. {offline_hint}"
            ) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise DownloadError(f"Could not reach {url} ({exc}). {offline_hint}") from exc

    if response is not None:
        with response:
            _receive(response, partial, offset, size, url)

    problem = _verify(partial, size, sha256)
    if problem is not None:
        partial.unlink()
        raise DownloadError(f"Downloaded {url} but refused it: {problem}. Nothing was kept.")
    move_into_place(partial, target)
    logger.info("Downloaded %s to %s", url, target)
    return target


def _receive(response, partial: Path, offset: int, size: int | None, url: str) -> None:
    """Write the response body to ``partial``: appended on 206, from zero on 200."""
    resumed = offset and response.status == 206  # noqa: PLR2004
    if offset and not resumed:
        logger.info("%s does not resume downloads: starting again", url)
        offset = 0
    elif resumed:
        logger.info("Resuming %s at %s bytes", url, f"{offset:,}")
    length = response.headers.get("Content-Length")
    total = offset + int(length) if length else size
    try:
        _stream(response, partial, offset, total, url)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise DownloadError(
            f"Download of {url} was interrupted after {partial.stat().st_size:,} "
            f"bytes ({exc}); run again to resume it."
        ) from exc
    if total is not None and partial.stat().st_size < total:
        raise DownloadError(
            f"Download of {url} stopped at {partial.stat().st_size:,} of {total:,} "
            "bytes; run again to resume it."
        )


def _stream(response, partial: Path, offset: int, total: int | None, url: str) -> None:
    mode = "ab" if offset else "wb"
    columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with partial.open(mode) as handle, Progress(*columns, transient=True) as progress:
        task = progress.add_task(url, total=total, completed=offset)
        for block in iter(lambda: response.read(CHUNK_BYTES), b""):
            handle.write(block)
            progress.update(task, advance=len(block))
