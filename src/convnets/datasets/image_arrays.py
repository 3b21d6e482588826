"""Decoded, resized images stored once as uint8 ``.npy`` files and read back batch by batch."""

from __future__ import annotations

import json
import logging
import os
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
    """A ``.npy`` file of images, read a few rows at a time with ``pread``.

    Unlike ``np.load(mmap_mode="r")`` nothing stays mapped, so the resident memory of
    a long training run does not grow with the size of the file.
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
        self._row_bytes = int(np.prod(self.shape))

    def __len__(self) -> int:
        return len(self.labels)

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """The images at ``indices``, in that order, as one uint8 array."""
        batch = np.empty((len(indices), *self.shape), dtype=np.uint8)
        flat = batch.reshape(len(indices), -1)
        descriptor = os.open(self.path, os.O_RDONLY)
        try:
            for row, index in enumerate(indices):
                data = os.pread(
                    descriptor, self._row_bytes, self._offset + int(index) * self._row_bytes
                )
                flat[row] = np.frombuffer(data, dtype=np.uint8)
        finally:
            os.close(descriptor)
        return batch


class ImageArrayDataset(AbstractDataset[Mapping[str, DecodedImages], dict[str, ImageArrayFile]]):
    """Saves ``{name: DecodedImages}`` as ``{name}.npy`` + labels; loads ``ImageArrayFile``s.

    Written chunk by chunk into a temporary sibling folder and renamed into place, so
    memory stays bounded by one chunk, a crash leaves nothing half-written, and a save
    whose keys match what is on disk writes (and decodes) nothing.
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}

    def _exists(self) -> bool:
        return (self._path / INDEX_FILE).is_file()

    def _index(self) -> dict[str, Any]:
        return json.loads((self._path / INDEX_FILE).read_text())

    def load(self) -> dict[str, ImageArrayFile]:
        if not self._exists():
            raise DatasetError(
                f"{self._path} has not been written yet: run the preprocessing node first "
                "(kedro run --pipeline=catdog --tags=ingestion,preprocessing)."
            )
        return {
            name: ImageArrayFile(
                self._path / f"{name}.npy", np.load(self._path / f"{name}.labels.npy")
            )
            for name in self._index()
        }

    def save(self, data: Mapping[str, DecodedImages]) -> None:
        keys = {name: images.key for name, images in data.items()}
        if self._exists() and self._index() == keys:
            logger.info("%s is up to date: nothing decoded or written", self._path)
            return

        def write(staging: Path) -> None:
            for name, images in data.items():
                self._write(staging, name, images)
            (staging / INDEX_FILE).write_text(json.dumps(keys, indent=1) + "\n")

        replace_folder(self._path, write)

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
