"""The raw dogs-vs-cats images, wherever they come from.

Sources: the local copy, a Kaggle download, or the public PetImages download; the
layouts and the checks of what is read are in ``image_archive_reader``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from convnets.datasets.download import download
from convnets.datasets.image_archive_reader import (
    DEFAULT_LIMITS,
    HOW_TO_GET,
    PETIMAGES_ARCHIVE,
    ArchiveLimitError,
    ImageArchive,
    has_local_copy,
    open_image_archive,
)
from convnets.datasets.kaggle import download_competition

__all__ = ["ArchiveLimitError", "ImageArchiveDataset"]  # ArchiveLimitError: where it was

PETIMAGES_URL = (
    "https://download.microsoft.com/download/3/E/1/3E1C3F21-ECDB-4869-8368-6DEBA77B919F/"
    "kagglecatsanddogs_5340.zip"
)
SOURCES = ("auto", "local", "kaggle", "microsoft")


class ImageArchiveDataset(AbstractDataset[None, ImageArchive]):
    """The raw dogs-vs-cats images, from a local copy or downloaded once.

    Args:
        filepath: Kaggle's ``train.zip``, ``dogs-vs-cats.zip``, Microsoft's PetImages
            zip, an extracted folder, or a folder holding one of these. Downloads go
            into this folder.
        source: ``auto`` (the local copy when there is one, else ``microsoft``),
            ``local``, ``kaggle`` or ``microsoft``.
        download: ``url``, ``size`` and ``sha256`` of the PetImages zip (checked when
            given) and ``timeout`` in seconds.
        credentials: Kaggle ``username`` and ``key`` (from conf/local/credentials.yml);
            otherwise KAGGLE_USERNAME/KAGGLE_KEY or ~/.kaggle/kaggle.json. Never logged.
        limits: ``max_image_bytes``, ``max_compression_ratio``, ``max_total_bytes``.

    kedro-datasets has no dataset for a zip of labelled images, hence this class.
    """

    def __init__(  # noqa: PLR0913
        self,
        filepath: str,
        *,
        source: str = "auto",
        download: dict[str, Any] | None = None,
        credentials: dict[str, str] | None = None,
        limits: dict[str, int] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if source not in SOURCES:
            raise DatasetError(f"source must be one of {SOURCES}, not {source!r}")
        self._filepath = Path(filepath)
        self._source = source
        self._download = {"url": PETIMAGES_URL, **(download or {})}
        self._credentials = credentials
        self._limits = {**DEFAULT_LIMITS, **(limits or {})}
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        # Credentials are deliberately left out: Kedro logs this description.
        return {"filepath": str(self._filepath), "source": self._source}

    def _exists(self) -> bool:
        return has_local_copy(self._filepath)

    def save(self, data: None) -> None:
        raise DatasetError(f"{type(self).__name__} is read-only: raw data is never overwritten")

    def _folder(self) -> Path:
        return self._filepath if not self._filepath.suffix else self._filepath.parent

    def _fetch(self, source: str) -> None:
        hint = "Offline? " + HOW_TO_GET.format(where=self._filepath)
        if source == "microsoft":
            download(
                self._download["url"],
                self._folder() / PETIMAGES_ARCHIVE,
                size=self._download.get("size"),
                sha256=self._download.get("sha256"),
                timeout=self._download.get("timeout", 60),
                offline_hint=hint,
            )
        elif source == "kaggle":
            download_competition("dogs-vs-cats", self._folder(), self._credentials, hint)

    def load(self) -> ImageArchive:
        source = self._source
        if source == "auto":
            source = "local" if has_local_copy(self._filepath) else "microsoft"
        if source == "local" and not has_local_copy(self._filepath):
            raise DatasetError(
                f"The dogs-vs-cats archive is missing: {self._filepath} does not exist. "
                + HOW_TO_GET.format(where=self._filepath)
            )
        if source != "local" and not has_local_copy(self._filepath):
            self._fetch(source)
        return open_image_archive(self._filepath, self._limits)
