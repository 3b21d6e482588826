"""Nodes of the predict pipeline: a trained cats-vs-dogs model on the user's pictures."""

from __future__ import annotations

import io
import logging
import math
import re
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from mlflow.pyfunc import PyFuncModel
from PIL import Image, ImageOps

from convnets.datasets.picture_folder import NotARegularFile, PictureTooLarge, printable_name
from convnets.ml.reporting import as_mlflow_metrics
from convnets.parameters import Predict
from convnets.serving.model import (
    ERROR_CODE_COLUMN,
    ERROR_COLUMN,
    IMAGE_COLUMN,
    ServingConfig,
    error_text,
)

logger = logging.getLogger(__name__)

PREDICT_CHUNK = 64  # pictures read and classified at a time, at most (and the model's limit)
PREDICT_CHUNK_BYTES = 64 * 2**20  # and at most about this many bytes (and the model's limit)
GRID_PIXELS = 256  # the grid's pictures are drawn from thumbnails this size
# A spreadsheet runs a cell that begins with one of these as a formula (OWASP's "CSV
# injection"): such a cell is written with a leading single quote.
# A leading "'" too: so that a name that began with one stays told apart from a
# neutralised one (strip one "'" from a cell that starts with it to get the name back).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")
KAGGLE_NAME = re.compile(r"(?:^|/)(?P<label>cat|dog)\.\d+\.", re.IGNORECASE)


def describe_model(description: dict[str, str]) -> dict[str, str]:
    """Says which model predict uses and what trained it; the same facts tag the run.

    A model of a quick run (``--env=quick``: two epochs on a few hundred pictures)
    gets a warning: its answers are near chance.
    """
    what = description.get("model_source", "?")
    if "model_registered_name" in description:
        what += f" (version {description['model_version']})"
    elif "model_version" in description:
        what += f" (saved {description['model_version']})"
    trained = ", ".join(
        text
        for key, text in (
            ("model_run_id", "MLflow run {}"),
            ("model_epochs", "{} epochs"),
            ("model_test_accuracy", "test accuracy {}"),
        )
        if key in description
        for text in [text.format(description[key])]
    )
    logger.info("Model: %s%s", what, f"; trained by {trained}" if trained else "")
    if description.get("model_is_quick") == "true":
        logger.warning(
            "This model comes from a quick run (--env=quick, experiment %s): it checks the "
            "plumbing and its answers are near chance. For real predictions train one with "
            "`kedro run --pipelines=catdog` and run predict without --env=quick.",
            description.get("model_experiment", "convnets-quick"),
        )
    return description


def predict_images(
    images: dict[str, Callable[[], bytes]],
    model: PyFuncModel,
    predict: Predict,
) -> tuple[pd.DataFrame, dict[str, dict[str, float]], Figure]:
    """The served model's answer for every picture; unreadable files are reported, not fatal.

    ``model`` is the servable model (``serving.ImageClassifier`` loaded with
    ``mlflow.pyfunc.load_model``), called as a client calls it: a DataFrame of picture
    bytes per request, within the request limits stored with it. Its configuration
    (class names, input size, decision threshold, pixel limit) is the model's own, so
    ``predict`` and the served model answer alike; a picture too large for one request
    (``serving.max_request_bytes``) gets an error row, as the served model refuses it.

    Returns the table (file, label, probability of the second class, true_label,
    error, error_code: one row per entry of the folder; names as ``printable_name``
    writes them, a cell that begins like a spreadsheet formula with a leading ``'``),
    the accuracy on the files whose Kaggle-style name gives their label (as MLflow
    metrics, empty when none do), and a grid of pictures spread over the folder.
    """
    if not images:
        raise ValueError(
            "No files to classify: put pictures in the folder given by "
            "--params=predict_dir=<folder> (default data/01_raw/predict/)."
        )
    config = ServingConfig(**model.model_config)
    names = sorted(images)
    chunks = [
        _classify_chunk(model, config, chunk) for chunk in _chunks_of_files(images, names, config)
    ]
    table = pd.concat(chunks, ignore_index=True)
    table.insert(3, "true_label", [_true_label(name) for name in table.file])
    for row in table[table[ERROR_COLUMN] != ""].itertuples():
        logger.warning("Cannot read %s: %s", row.file, row.error)
    readable = table["error"] == ""
    known = readable & (table["true_label"] != "")
    metrics = {}
    if known.any():
        accuracy = float((table.loc[known, "label"] == table.loc[known, "true_label"]).mean())
        metrics = as_mlflow_metrics(
            {"predict_accuracy": accuracy, "predict_labelled_images": known.sum()}
        )
        logger.info("Accuracy on %d pictures named cat.N/dog.N: %.4f", known.sum(), accuracy)
    logger.info("Classified %d pictures, %d unreadable", readable.sum(), (~readable).sum())
    # Grid pictures spread over the sorted readable files, so cat.N and dog.N both show.
    classified = table[readable]
    count = min(predict.grid_images, len(classified))
    shown = classified.iloc[np.unique(np.linspace(0, len(classified) - 1, count).astype(int))]
    raw_names = {printable_name(name): name for name in names}
    pictures = {}
    for name in shown.file:
        try:
            pictures[name] = _thumbnail(images[raw_names[name]]())
        except Exception as exc:  # noqa: BLE001 - changed since it was classified: not drawn
            logger.warning("Not drawn in the grid: %s (%s)", name, error_text(exc))
    shown = shown[shown.file.isin(pictures)]
    figure = _prediction_grid(shown, pictures, probability=config.output_columns()[1])
    return _safe_for_csv(table), metrics, figure


def _chunks_of_files(
    images: dict[str, Callable[[], bytes]], names: list[str], config: ServingConfig
) -> Iterator[list[tuple[str, bytes | BaseException]]]:
    """``(name, bytes or why not read)`` by chunks of a bounded count and size, each one
    request the model accepts (``config``'s ``max_pictures_per_request`` and
    ``max_request_bytes``).

    Files are read as their chunk is made, so memory holds one chunk's files, whatever
    the folder holds (each file is bounded by the folder's ``max_image_bytes``).
    """
    most = min(PREDICT_CHUNK, config.max_pictures_per_request)
    chunk: list[tuple[str, bytes | BaseException]] = []
    size = 0
    for name in names:
        try:
            content: bytes | BaseException = _within_request(images[name](), config)
        except Exception as exc:  # noqa: BLE001 - an unreadable file is its row's error
            content = exc.__cause__ or exc  # Kedro wraps a reader's error in a DatasetError
        length = len(content) if isinstance(content, bytes) else 0
        if chunk and size + length > config.max_request_bytes:  # the model's limit: strict
            yield chunk
            chunk, size = [], 0
        chunk.append((name, content))
        size += length
        if len(chunk) == most or size >= PREDICT_CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def _within_request(content: bytes, config: ServingConfig) -> bytes | PictureTooLarge:
    """``content``, or why one request to the model cannot hold it."""
    if len(content) > config.max_request_bytes:
        return PictureTooLarge(
            f"{len(content):,} bytes, more than the {config.max_request_bytes:,} one request "
            "to the model may hold (serving.max_request_bytes): not classified"
        )
    return content


def _classify_chunk(
    model: PyFuncModel,
    config: ServingConfig,
    chunk: list[tuple[str, bytes | BaseException]],
) -> pd.DataFrame:
    contents = [content if isinstance(content, bytes) else b"" for _, content in chunk]
    answers = model.predict(pd.DataFrame({IMAGE_COLUMN: contents}))
    probability = config.output_columns()[1]
    # The served model's nullable column (null in JSON) as NaN, as a table of floats holds it.
    answers[probability] = answers[probability].astype("float64")
    # Not the names as the system gives them: one that is not valid UTF-8 holds lone
    # surrogates, which a table of strings refuses ("surrogates not allowed").
    answers.insert(0, "file", [printable_name(name) for name, _ in chunk])
    for row, (_, content) in enumerate(chunk):
        if isinstance(content, BaseException):
            answers.loc[row, ERROR_COLUMN] = _without_surrogates(error_text(content))
            answers.loc[row, ERROR_CODE_COLUMN] = _read_error_code(content)
    return answers


def _read_error_code(error: BaseException) -> str:
    """The ``serving.ERROR_CODES`` code of a picture that could not be read."""
    if isinstance(error, NotARegularFile):
        return "not_a_regular_file"
    if isinstance(error, PictureTooLarge):
        return "too_large"
    return "unreadable"


def _thumbnail(content: bytes) -> Image.Image:
    """The picture upright and small: one decoded at full size at a time, then shrunk."""
    with Image.open(io.BytesIO(content)) as image:
        image.draft("RGB", (GRID_PIXELS, GRID_PIXELS))  # JPEG: decodes at a fraction
        image.thumbnail((GRID_PIXELS, GRID_PIXELS))
        return ImageOps.exif_transpose(image).convert("RGB")


def _without_surrogates(text: str) -> str:
    return text.encode("utf-8", errors="backslashreplace").decode("utf-8")


def _csv_cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _safe_for_csv(table: pd.DataFrame) -> pd.DataFrame:
    """No cell a spreadsheet would run as a formula: those get a leading ``'``."""
    table = table.copy()
    for column in table.columns:
        if not pd.api.types.is_numeric_dtype(table[column]):
            table[column] = [_csv_cell(value) for value in table[column]]
    return table


def _true_label(name: str) -> str:
    match = KAGGLE_NAME.search(name)
    return match["label"].lower() if match else ""


def _prediction_grid(
    shown: pd.DataFrame, pictures: dict[str, Image.Image], probability: str
) -> Figure:
    columns = min(4, max(1, len(shown)))
    rows = max(1, math.ceil(len(shown) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(3 * columns, 3.2 * rows), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, (_, row) in zip(axes.flat, shown.iterrows(), strict=False):
        axis.imshow(pictures[row.file])
        wrong = row.true_label and row.true_label != row.label
        axis.set_title(
            f"{row.label} {row[probability]:.2f}\n{row.file[-24:]}",
            fontsize=9,
            color="red" if wrong else "black",
        )
    figure.suptitle("Predictions (probability of dog); red: wrong by the file name")
    figure.tight_layout()
    return figure
