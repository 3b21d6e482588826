"""Decoded, resized images stored once as uint8 ``.npy`` files and read back batch by batch.

One copy per image size: ``<path>/<height>x<width>/<subset>.npy``. Decoding is
deferred (``DecodedImages.chunks``) so that an up-to-date copy costs nothing; when
it must be made, the dataset's save does it and logs the time it took.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from kedro.io import AbstractDataset, DatasetError

from convnets.datasets.image_folder import replace_folder

logger = logging.getLogger(__name__)

INDEX_FILE = "index.json"


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
        """``{subset: ImageArrayFile}`` of the copy at ``image_size`` (height, width)."""
        folder = self.path / size_folder(image_size)
        if not (folder / INDEX_FILE).is_file():
            raise DatasetError(
                f"{folder} has not been written yet: run the preprocessing first "
                "(kedro run --pipelines=catdog --tags=ingestion,preprocessing)."
            )
        index = json.loads((folder / INDEX_FILE).read_text())
        return {
            name: ImageArrayFile(folder / f"{name}.npy", np.load(folder / f"{name}.labels.npy"))
            for name in index
        }


class ImageArrayDataset(AbstractDataset[Mapping[str, DecodedImages], DecodedImageCache]):
    """Saves ``{subset: DecodedImages}`` under ``<path>/<height>x<width>/``; loads the cache.

    Each size is written chunk by chunk into a temporary sibling folder and renamed
    into place, so memory stays bounded by one chunk, a crash leaves nothing
    half-written, and a save whose keys match what is on disk decodes nothing. Other
    sizes are left as they are, so models of different input sizes keep their copies.
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}

    def _exists(self) -> bool:
        return any(self._path.glob(f"*/{INDEX_FILE}"))

    def load(self) -> DecodedImageCache:
        return DecodedImageCache(self._path)

    def save(self, data: Mapping[str, DecodedImages]) -> None:
        shapes = {images.shape for images in data.values()}
        if len(shapes) != 1:
            raise DatasetError(f"One image size per save, got {sorted(shapes)}")
        folder = self._path / size_folder(next(iter(shapes))[:2])
        keys = {name: images.key for name, images in data.items()}
        index = folder / INDEX_FILE
        if index.is_file() and json.loads(index.read_text()) == keys:
            logger.info("%s is up to date: nothing decoded or written", folder)
            return
        started = time.perf_counter()

        def write(staging: Path) -> None:
            for name, images in data.items():
                self._write(staging, name, images)
            (staging / INDEX_FILE).write_text(json.dumps(keys, indent=1) + "\n")

        replace_folder(folder, write)
        logger.info(
            "Decoded and wrote %d images to %s in %.1f s",
            sum(len(images.labels) for images in data.values()),
            folder,
            time.perf_counter() - started,
        )

    @staticmethod
    def _write(folder: Path, name: str, images: DecodedImages) -> None:
        # Plain writes rather than np.lib.format.open_memmap: mapped pages would count
        # towards the resident memory of the run, up to the whole file.
        count = len(images.labels)
        header = {"descr": "|u1", "fortran_order": False, "shape": (count, *images.shape)}
        written = 0
        with (folder / f"{name}.npy").open("wb") as handle:
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
        np.save(folder / f"{name}.labels.npy", images.labels)
        logger.info(
            "Wrote %d decoded %s images (%s)", count, name, "x".join(map(str, images.shape))
        )
