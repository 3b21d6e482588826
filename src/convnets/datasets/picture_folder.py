"""The folder of pictures ``predict`` classifies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import DatasetError
from kedro_datasets.partitions import PartitionedDataset

from convnets.errors import UserError


class MissingPictures(UserError, DatasetError):
    """The pictures folder is missing or empty."""


class PictureFolderDataset(PartitionedDataset):
    """kedro-datasets' ``PartitionedDataset`` (every file, loaded lazily), with an error
    that tells a user what to do when the folder is missing or empty, in place of its
    "No partitions found"."""

    def load(self) -> dict[str, Any]:
        folder = Path(self._normalized_path)
        where = "--params=predict_dir=<folder> (default data/01_raw/predict/)"
        if not folder.is_dir():
            raise MissingPictures(
                f"The pictures folder {folder} does not exist: create it and put pictures "
                f"in it, or name another with {where}."
            )
        try:
            return super().load()
        except DatasetError as exc:
            if "No partitions found" not in str(exc):
                raise
            raise MissingPictures(
                f"The pictures folder {folder} is empty: put pictures in it (JPEG, PNG, any "
                f"format Pillow reads), or name another folder with {where}."
            ) from None
