"""Kedro datasets that kedro-datasets does not provide (see each class for why)."""

from convnets.datasets.image_archive import ImageArchive, ImageArchiveDataset
from convnets.datasets.image_arrays import DecodedImages, ImageArrayDataset, ImageArrayFile
from convnets.datasets.image_folder import ImageFolderDataset, LazyFile
from convnets.datasets.json_state import JsonStateDataset
from convnets.datasets.keras_model_source import KerasModelSourceDataset
from convnets.datasets.keras_npz import KerasNpzDataset

__all__ = [
    "DecodedImages",
    "ImageArrayDataset",
    "ImageArrayFile",
    "ImageArchive",
    "ImageArchiveDataset",
    "ImageFolderDataset",
    "JsonStateDataset",
    "KerasModelSourceDataset",
    "KerasNpzDataset",
    "LazyFile",
]
