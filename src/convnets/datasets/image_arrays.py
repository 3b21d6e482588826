"""Decoded, resized images stored once as uint8 ``.npy`` files and read back batch by batch.

One copy per image size: ``<path>/<height>x<width>/<subset>.npy``. Decoding is
deferred (``DecodedImages.chunks``) so that an up-to-date copy costs nothing; when
it must be made, the dataset's save does it and logs the time it took. The index
records each file's size and sha256, computed while writing; both are checked before
a copy is called up to date and before training reads it.
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from kedro.io import AbstractDataset, DatasetError

from convnets.datasets.image_folder import replace_folder
from convnets.durability.integrity import (
    DamagedData,
    HashingWriter,
    check_files,
    record_of,
    set_aside,
    summary,
)

logger = logging.getLogger(__name__)

# {"format": 2, "keys": {subset: key}, "files": {file name: {"size": ..., "sha256": ...}}};
# format 1 (an older version's) was {subset: key} alone.
INDEX_FILE = "index.json"
INDEX_FORMAT = 2
SIZE_FOLDER = re.compile(r"\d+x\d+")  # not the <size>.damaged-<time> folders set aside
REDECODE = "kedro run --pipelines=catdog --tags=ingestion,preprocessing (or the pipeline you run)"
_REDECODE_ADVICE = f"decode them again with {REDECODE} (it sets the damaged folder aside)."


class _Unindexed(Exception):
    """The index is an older version's: the copy must be made again, nothing is damaged."""


def _read_index(folder: Path) -> dict[str, Any]:
    """The index of ``folder``; raises DamagedData (unreadable) or _Unindexed (older)."""
    path = folder / INDEX_FILE
    try:
        index = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise DamagedData(f"{path} is unreadable ({exc})") from exc
    if not isinstance(index, dict):
        raise DamagedData(f"{path} is not an index of decoded images")
    if "format" not in index and all(isinstance(key, str) for key in index.values()):
        raise _Unindexed(path)
    if (
        index.get("format") != INDEX_FORMAT
        or not isinstance(index.get("keys"), dict)
        or not isinstance(index.get("files"), dict)
        or set(index["files"]) != _file_names(index["keys"])
    ):
        raise DamagedData(f"{path} is not an index of decoded images")
    return index


def _file_names(subsets: Mapping[str, Any]) -> set[str]:
    return {f"{name}{suffix}" for name in subsets for suffix in (".npy", ".labels.npy")}


def _problems(folder: Path, index: Mapping[str, Any]) -> list[str]:
    # Every byte is hashed each time: reading a copy costs little beside decoding it
    # again or one epoch of training, and only a hash sees bytes overwritten in place.
    return check_files(folder, index["files"])


@dataclass(frozen=True)
class DecodedImages:
    """Images still to decode: ``chunks()`` yields uint8 arrays of shape (n, *shape).

    ``key`` identifies the content (source files, image size, decoder); a dataset that
    already holds the same key writes nothing and never calls ``chunks``.
    """

    key: str
    labels: np.ndarray
    shape: tuple[int, int, int]
    chunks: Callable[[], Iterator[np.ndarray]]


class ImageArrayFile:
    """A ``.npy`` file of images, read a few rows at a time through a short-lived memmap.

    The map is opened for each read and closed after it, so the pages a long training
    run touched do not stay mapped into its resident memory. Works on every platform.
    """

    def __init__(self, path: Path, labels: np.ndarray) -> None:
        self.path = path
        self.labels = labels
        with path.open("rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(handle)
            else:
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(handle)
            self._offset = handle.tell()
        if fortran_order or dtype != np.uint8 or len(shape) != 4:
            raise DatasetError(f"{path} is not a C-ordered uint8 array of images")
        if shape[0] != len(labels):
            raise DatasetError(f"{path} holds {shape[0]} images but {len(labels)} labels")
        self.shape: tuple[int, int, int] = tuple(shape[1:])

    def __len__(self) -> int:
        return len(self.labels)

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """The images at ``indices``, in that order, as one uint8 array."""
        rows = np.memmap(
            self.path, dtype=np.uint8, mode="r", offset=self._offset, shape=(len(self), *self.shape)
        )
        try:
            return rows[np.asarray(indices, dtype=np.int64)]  # fancy indexing copies
        finally:
            rows._mmap.close()  # noqa: SLF001 - unmap now rather than at garbage collection


def size_folder(image_size: Sequence[int]) -> str:
    """The sub-folder of one image size: ``180x180``."""
    return "x".join(str(int(side)) for side in image_size)


@dataclass(frozen=True)
class DecodedImageCache:
    """The decoded copies on disk, one per image size, as nodes see them."""

    path: Path

    def subsets(self, image_size: Sequence[int]) -> dict[str, ImageArrayFile]:
        """``{subset: ImageArrayFile}`` of the copy at ``image_size`` (height, width).

        Raises ``DamagedData`` when a file differs from what the index recorded.
        """
        folder = self.path / size_folder(image_size)
        if not (folder / INDEX_FILE).is_file():
            raise DatasetError(
                f"{folder} has not been written yet: run the preprocessing first "
                "(kedro run --pipelines=catdog --tags=ingestion,preprocessing)."
            )
        try:
            index = _read_index(folder)
        except _Unindexed:
            raise DamagedData(
                f"{folder / INDEX_FILE} is an older version's, without the sizes and "
                f"hashes that let its files be checked: decode it again with {REDECODE}."
            ) from None
        except DamagedData as exc:
            raise DamagedData(f"{exc}. Nothing is trained from it; {_REDECODE_ADVICE}") from exc
        problems = _problems(folder, index)
        if problems:
            raise DamagedData(
                f"The decoded images in {folder} differ from what was written: "
                f"{summary(problems)}. Nothing is trained from them; {_REDECODE_ADVICE}"
            )
        return {
            name: ImageArrayFile(folder / f"{name}.npy", np.load(folder / f"{name}.labels.npy"))
            for name in index["keys"]
        }


class ImageArrayDataset(AbstractDataset[Mapping[str, DecodedImages], DecodedImageCache]):
    """Saves ``{subset: DecodedImages}`` under ``<path>/<height>x<width>/``; loads the cache.

    Each size is written chunk by chunk into a temporary sibling folder and renamed
    into place, so memory stays bounded by one chunk, a crash leaves nothing
    half-written, and a save whose keys match what is on disk, with every file as it
    was written, decodes nothing. A copy that differs (or whose index is unreadable)
    is set aside as ``<size>.damaged-<time>`` and decoded again. Other sizes are left
    as they are, so models of different input sizes keep their copies.
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}

    def _exists(self) -> bool:
        return any(
            SIZE_FOLDER.fullmatch(index.parent.name) for index in self._path.glob(f"*/{INDEX_FILE}")
        )

    def load(self) -> DecodedImageCache:
        return DecodedImageCache(self._path)

    def save(self, data: Mapping[str, DecodedImages]) -> None:
        shapes = {images.shape for images in data.values()}
        if len(shapes) != 1:
            raise DatasetError(f"One image size per save, got {sorted(shapes)}")
        folder = self._path / size_folder(next(iter(shapes))[:2])
        keys = {name: images.key for name, images in data.items()}
        if (folder / INDEX_FILE).is_file() and self._up_to_date(folder, keys):
            logger.info("%s is up to date: nothing decoded or written", folder)
            return
        started = time.perf_counter()

        def write(staging: Path) -> None:
            files = {}
            for name, images in data.items():
                files.update(self._write(staging, name, images))
            index = {"format": INDEX_FORMAT, "keys": keys, "files": files}
            (staging / INDEX_FILE).write_text(json.dumps(index, indent=1) + "\n")

        replace_folder(folder, write)
        logger.info(
            "Decoded and wrote %d images to %s in %.1f s",
            sum(len(images.labels) for images in data.values()),
            folder,
            time.perf_counter() - started,
        )

    @staticmethod
    def _up_to_date(folder: Path, keys: Mapping[str, str]) -> bool:
        """Whether ``folder`` holds ``keys``, every file as written; sets a damaged one aside."""
        try:
            index = _read_index(folder)
            if index["keys"] != keys:
                return False  # other content: replaced, not damaged
            problems = _problems(folder, index)
            if not problems:
                return True
            reason = summary(problems)
        except _Unindexed:
            logger.info("%s is an older version's: decoding again", folder / INDEX_FILE)
            return False
        except DamagedData as exc:
            reason = str(exc)
        aside = set_aside(folder)
        logger.warning("%s: set aside as %s; decoding the images again", reason, aside)
        return False

    @staticmethod
    def _write(folder: Path, name: str, images: DecodedImages) -> dict[str, dict[str, Any]]:
        """Writes ``<name>.npy`` and ``<name>.labels.npy``; returns their sizes and hashes."""
        # Plain writes rather than np.lib.format.open_memmap: mapped pages would count
        # towards the resident memory of the run, up to the whole file.
        count = len(images.labels)
        header = {"descr": "|u1", "fortran_order": False, "shape": (count, *images.shape)}
        written = 0
        with (folder / f"{name}.npy").open("wb") as raw:
            handle = HashingWriter(raw)
            np.lib.format.write_array_header_1_0(handle, header)
            for chunk in images.chunks():
                if chunk.dtype != np.uint8 or chunk.shape[1:] != images.shape:
                    raise DatasetError(
                        f"{name}: decoded images are {chunk.dtype} {chunk.shape[1:]}, "
                        f"expected uint8 {images.shape}"
                    )
                if written + len(chunk) > count:
                    raise DatasetError(f"{name}: more images decoded than its {count} labels")
                handle.write(np.ascontiguousarray(chunk).tobytes())
                written += len(chunk)
        if written != count:
            raise DatasetError(f"{name}: {written} images decoded for {count} labels")
        labels = io.BytesIO()
        np.save(labels, images.labels)
        (folder / f"{name}.labels.npy").write_bytes(labels.getvalue())
        logger.info(
            "Wrote %d decoded %s images (%s)", count, name, "x".join(map(str, images.shape))
        )
        return {f"{name}.npy": handle.record(), f"{name}.labels.npy": record_of(labels.getvalue())}
