"""Kaggle competition downloads through the ``kaggle`` package, credentials kept secret."""

from __future__ import annotations

import json
import logging
import os
from contextlib import contextmanager
from pathlib import Path

from kedro.io import DatasetError

from convnets.datasets.download import DownloadError

logger = logging.getLogger(__name__)

CREDENTIAL_HELP = (
    "Kaggle credentials are missing. Give them in one of three ways: "
    "conf/local/credentials.yml with 'kaggle: {username: ..., key: ...}' "
    "(and 'credentials: kaggle' on the catalog entry), the environment variables "
    "KAGGLE_USERNAME and KAGGLE_KEY, or ~/.kaggle/kaggle.json "
    "(https://www.kaggle.com/settings/api, 'Create New Token'). "
    "Also accept the competition's rules on its Kaggle page."
)


def resolve_credentials(credentials: dict[str, str] | None) -> tuple[str, str]:
    """(username, key) from the catalog's credentials, the environment, or kaggle.json."""
    if credentials and credentials.get("username") and credentials.get("key"):
        return credentials["username"], credentials["key"]
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return os.environ["KAGGLE_USERNAME"], os.environ["KAGGLE_KEY"]
    config_dir = Path(os.environ.get("KAGGLE_CONFIG_DIR", Path.home() / ".kaggle"))
    token = config_dir / "kaggle.json"
    if token.is_file():
        try:
            content = json.loads(token.read_text())
            return content["username"], content["key"]
        except (ValueError, KeyError) as exc:
            raise DatasetError(
                f"{token} is not a Kaggle API token file. {CREDENTIAL_HELP}"
            ) from exc
    raise DatasetError(CREDENTIAL_HELP)


@contextmanager
def _kaggle_environment(username: str, key: str):
    """Hand the credentials to the kaggle package for one call, then restore the env."""
    saved = {name: os.environ.get(name) for name in ("KAGGLE_USERNAME", "KAGGLE_KEY")}
    os.environ["KAGGLE_USERNAME"], os.environ["KAGGLE_KEY"] = username, key
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def download_competition(
    competition: str, folder: Path, credentials: dict[str, str] | None, offline_hint: str
) -> Path:
    """``kaggle competitions download -c <competition>`` into ``folder``; returns the zip."""
    username, key = resolve_credentials(credentials)
    target = folder / f"{competition}.zip"
    folder.mkdir(parents=True, exist_ok=True)
    logger.info("Downloading the Kaggle competition %s to %s", competition, target)
    with _kaggle_environment(username, key):
        try:
            # Imported here: the kaggle package authenticates on import.
            from kaggle.api.kaggle_api_extended import KaggleApi  # noqa: PLC0415

            api = KaggleApi()
            api.authenticate()
            api.competition_download_files(competition, path=str(folder), quiet=False)
        except ImportError as exc:
            raise DatasetError(
                "The kaggle package is not installed: pip install -e '.[kaggle]'"
            ) from exc
        except Exception as exc:  # the kaggle client raises many types
            message = str(exc).replace(key, "***")
            raise DownloadError(
                f"Kaggle download of {competition} failed: {type(exc).__name__}: "
                f"{message[:300]}. {offline_hint}"
            ) from None  # the chained exception could carry the request headers
    if not target.is_file():
        raise DownloadError(f"Kaggle reported success but {target} is not there.")
    return target
