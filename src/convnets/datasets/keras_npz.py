"""A ``keras.datasets``-format ``.npz`` file that is downloaded when it is missing."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path
from typing import Any

import numpy as np
from kedro.io import AbstractDataset, DatasetError

from convnets.datasets.download import download
from convnets.durability.atomic import move_into_place
from convnets.durability.lock import staging_dir

logger = logging.getLogger(__name__)

EXPECTED_KEYS = ("x_train", "y_train", "x_test", "y_test")
# keras.datasets.fashion_mnist's files: (key, file name, header bytes before the data).
IDX_FILES = (
    ("y_train", "train-labels-idx1-ubyte.gz", 8),
    ("x_train", "train-images-idx3-ubyte.gz", 16),
    ("y_test", "t10k-labels-idx1-ubyte.gz", 8),
    ("x_test", "t10k-images-idx3-ubyte.gz", 16),
)


class KerasNpzDataset(AbstractDataset[None, dict[str, np.ndarray]]):
    """Loads ``x_train, y_train, x_test, y_test`` from a keras-format npz file.

    When ``filepath`` does not exist it is fetched from ``origin`` with the project's
    ``download`` (resumable, checked against ``file_hash`` (sha256), renamed into place
    only when complete). With ``idx_origin`` instead, the four gzipped idx files that
    ``keras.datasets.fashion_mnist`` downloads are fetched from that base URL and
    written as one npz.
    kedro-datasets has no npz dataset with a download fallback, hence this class.

    Example catalog entry::

        mnist_raw:
          type: convnets.datasets.KerasNpzDataset
          filepath: data/01_raw/mnist.npz
          origin: https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz
          file_hash: 731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1
    """

    def __init__(
        self,
        filepath: str,
        origin: str | None = None,
        file_hash: str | None = None,
        idx_origin: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._filepath = Path(filepath)
        self._origin = origin
        self._idx_origin = idx_origin
        self._file_hash = file_hash
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "origin": self._origin}

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def save(self, data: None) -> None:
        raise DatasetError(f"{type(self).__name__} is read-only")

    def _download(self) -> None:
        if self._idx_origin:
            self._download_idx()
            return
        if not self._origin:
            raise DatasetError(
                f"{self._filepath} does not exist and no 'origin' is configured to download it "
                "from. Place a keras-format npz file there (keys x_train, y_train, x_test, y_test)."
            )
        logger.info("%s not found: downloading %s", self._filepath, self._origin)
        download(
            self._origin,
            self._filepath,
            sha256=self._file_hash,
            offline_hint=f"Offline? Copy the file to {self._filepath} instead "
            "(for example from ../shared/data/).",
        )

    def _download_idx(self) -> None:
        self._filepath.parent.mkdir(parents=True, exist_ok=True)
        base = self._idx_origin.rstrip("/") + "/"
        logger.info("%s not found: downloading the idx files from %s", self._filepath, base)
        arrays = {}
        made_by = f"convnets KerasNpzDataset downloading {self._filepath.name}"
        with staging_dir(self._filepath.parent, ".download-", made_by) as tmp:
            for key, name, offset in IDX_FILES:
                path = download(
                    base + name,
                    tmp / name,
                    offline_hint=f"Offline? Copy a keras-format npz to {self._filepath} instead.",
                )
                with gzip.open(path, "rb") as handle:
                    arrays[key] = np.frombuffer(handle.read(), np.uint8, offset=offset)
            for images in ("x_train", "x_test"):
                arrays[images] = arrays[images].reshape(len(arrays["y" + images[1:]]), 28, 28)
            staged = tmp / "arrays.npz"
            np.savez_compressed(staged, **arrays)
            move_into_place(staged, self._filepath)

    def load(self) -> dict[str, np.ndarray]:
        if not self._filepath.is_file():
            self._download()
        try:
            with np.load(self._filepath, allow_pickle=False) as npz:
                missing = [key for key in EXPECTED_KEYS if key not in npz.files]
                if missing:
                    raise DatasetError(
                        f"{self._filepath} lacks the arrays {missing}; expected the keras.datasets "
                        f"format with keys {list(EXPECTED_KEYS)}, found {npz.files}."
                    )
                return {key: npz[key] for key in EXPECTED_KEYS}
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{self._filepath} is not a readable npz file: {exc}") from exc
