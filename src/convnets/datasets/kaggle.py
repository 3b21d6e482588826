"""Kaggle competition downloads through the ``kaggle`` package, credentials kept secret."""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from kedro.io import DatasetError

from convnets.datasets.download import DownloadError

logger = logging.getLogger(__name__)

CREDENTIAL_HELP = (
    "Kaggle credentials are missing. Give them in one of three ways: "
    "conf/local/credentials.yml with 'kaggle: {username: ..., key: ...}' "
    "(and 'credentials: kaggle' on the catalog entry), the environment variables "
    "KAGGLE_USERNAME and KAGGLE_KEY (or KAGGLE_API_TOKEN), or ~/.kaggle/kaggle.json "
    "(https://www.kaggle.com/settings/api, 'Create New Token'). "
    "Also accept the competition's rules on its Kaggle page."
)
CREDENTIAL_VARIABLES = ("KAGGLE_USERNAME", "KAGGLE_KEY")


@contextlib.contextmanager
def _catalog_credentials(credentials: dict[str, str] | None) -> Iterator[None]:
    """The catalog's credentials, when given, as the kaggle client's variables for one call."""
    saved = {name: os.environ.get(name) for name in CREDENTIAL_VARIABLES}
    if credentials and credentials.get("username") and credentials.get("key"):
        os.environ["KAGGLE_USERNAME"] = credentials["username"]
        os.environ["KAGGLE_KEY"] = credentials["key"]
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _authenticated_api():
    """The kaggle client, authenticated by its own lookup (environment, kaggle.json, token).

    The client prints its help and calls ``exit(1)`` when it finds nothing: its output is
    kept off the terminal and the exit becomes one error naming the project's three ways.
    """
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            # Imported here: the kaggle package is optional and authenticates on import.
            from kaggle.api.kaggle_api_extended import KaggleApi  # noqa: PLC0415

            api = KaggleApi()
            api.authenticate()
    except ImportError as exc:
        raise DatasetError(
            "The kaggle package is not installed: pip install -e '.[kaggle]'"
        ) from exc
    except SystemExit:
        raise DatasetError(CREDENTIAL_HELP) from None
    for line in printed.getvalue().splitlines():
        if line.startswith("Warning"):  # e.g. a kaggle.json readable by other users
            logger.warning("kaggle: %s", line)
    return api


def download_competition(
    competition: str, folder: Path, credentials: dict[str, str] | None, offline_hint: str
) -> Path:
    """``kaggle competitions download -c <competition>`` into ``folder``; returns the zip."""
    target = folder / f"{competition}.zip"
    folder.mkdir(parents=True, exist_ok=True)
    with _catalog_credentials(credentials):
        api = _authenticated_api()
        secrets = [
            api.config_values.get(name) for name in (api.CONFIG_NAME_KEY, api.CONFIG_NAME_TOKEN)
        ]
        logger.info("Downloading the Kaggle competition %s to %s", competition, target)
        try:
            api.competition_download_files(competition, path=str(folder), quiet=False)
        except Exception as exc:  # the kaggle client raises many types
            message = str(exc)
            for secret in filter(None, secrets):
                message = message.replace(secret, "***")
            raise DownloadError(
                f"Kaggle download of {competition} failed: {type(exc).__name__}: "
                f"{message[:300]}. {offline_hint}"
            ) from None  # the chained exception could carry the request headers
    if not target.is_file():
        raise DownloadError(f"Kaggle reported success but {target} is not there.")
    return target
