"""Kedro datasets that kedro-datasets does not provide (see each class for why)."""

from convnets.datasets.image_archive import ImageArchiveDataset
from convnets.datasets.image_archive_reader import ImageArchive, UnreadableEntry
from convnets.datasets.image_arrays import (
    DecodedImageCache,
    DecodedImages,
    ImageArrayDataset,
    ImageArrayFile,
)
from convnets.datasets.image_folder import ImageFolder, ImageFolderDataset, LazyFile
from convnets.datasets.json_state import JsonStateDataset
from convnets.datasets.keras_npz import KerasNpzDataset
from convnets.datasets.mlflow_runs import MlflowRunsDataset
from convnets.datasets.mlflow_tags import MlflowTagsDataset
from convnets.datasets.picture_folder import PictureFolderDataset
from convnets.datasets.training_state import TrainingStateDataset
from convnets.serving.model_source import (
    ModelSourceDescriptionDataset,
    ServableModelSourceDataset,
)
from convnets.serving.servable_dataset import MlflowServableModelDataset

__all__ = [
    "DecodedImageCache",
    "DecodedImages",
    "ImageArrayDataset",
    "ImageArrayFile",
    "ImageArchive",
    "ImageArchiveDataset",
    "ImageFolder",
    "ImageFolderDataset",
    "JsonStateDataset",
    "KerasNpzDataset",
    "LazyFile",
    "MlflowRunsDataset",
    "MlflowServableModelDataset",
    "MlflowTagsDataset",
    "ModelSourceDescriptionDataset",
    "PictureFolderDataset",
    "ServableModelSourceDataset",
    "TrainingStateDataset",
    "UnreadableEntry",
]
