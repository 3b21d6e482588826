"""The model a client can call: image bytes in, a label and its probability out.

``ImageClassifier`` is an MLflow pyfunc model around a trained Keras model. It turns
each picture's bytes into model input with ``preprocessing.to_model_input``, the
function training's decoded cache and ``predict`` use, so a picture gets the same
answer from the served model as from the ``predict`` pipeline. A row that cannot be
read (not an image, empty, truncated, too many pixels) gets no label, a null
probability, an ``error`` text and a stable ``error_code`` (``ERROR_CODES``); the other
rows of the batch are answered. A request of more pictures or bytes than the model's
``ServingConfig`` allows (``serving.*`` parameters) is refused whole, before decoding.

A pyfunc wrapper rather than kedro-mlflow's ``pipeline_ml_factory``: a
``PipelineML`` cannot be filtered (``--tags=ingestion`` raises
``KedroMlflowPipelineMLError``), and one Python class serves every model pipeline.
This module imports only what serving needs (not Kedro), as the model server loads it.
"""

import logging
import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema
from PIL import UnidentifiedImageError

from convnets.errors import UserError
from convnets.ml.preprocessing import ImageTooLarge, to_model_input

logger = logging.getLogger(__name__)

IMAGE_COLUMN = "image"
ERROR_COLUMN = "error"
ERROR_CODE_COLUMN = "error_code"
# The optional parameter (MLflow pyfunc ``params``) that adds, to each answered row, its
# Grad-CAM heatmap over the picture as a base64 PNG (docs/explain.md); "" on error rows.
GRAD_CAM_PARAM = "grad_cam"
GRAD_CAM_COLUMN = "grad_cam_png"

# A row's ``error_code``: stable, for a client to branch on ("" when the row is answered;
# ``error`` is the human-readable text). Serving decodes each row's base64 before the
# model sees it: a malformed one fails the whole request with a 400, not a row.
ERROR_CODES = {
    "empty": "no bytes",
    "not_an_image": "no image format recognised in the bytes",
    "unsupported_format": "an image format the decoder does not read (it reads JPEG, PNG, "
    "GIF, BMP, WebP)",
    "corrupt_image": "the header is read but the picture is not (truncated or damaged)",
    "too_many_pixels": "the header declares more pixels than max_image_pixels: not decoded",
    # predict only: files of the folder it reads.
    "not_a_regular_file": "a directory, FIFO, device, socket or link to one",
    "too_large": "a file of more bytes than allowed: not read",
    "unreadable": "the file could not be read",
}

# Object addresses (Pillow's "<_io.BytesIO object at 0x7f…>", an image's repr ending
# "at 0x7F…>") and TensorFlow's op decorations say nothing to a user and differ from
# run to run.
_NOISE = [
    re.compile(r"\s*<[^<>]*\bat 0x[0-9a-fA-F]+>"),
    re.compile(r"\s*\bat 0x[0-9a-fA-F]+\b"),
    re.compile(r"\s*\b0x[0-9a-fA-F]{6,}\b"),
    re.compile(r"\{\{function_node [^}]*\}\}\s*"),
    re.compile(r"\s*\[Op:\w+\](?: name: \S*)?"),
]


class EmptyPicture(ValueError):
    """A row with no bytes."""


def error_text(error: BaseException) -> str:
    """An error as a row's ``error`` cell: its type and message, without object addresses."""
    text = str(error)
    for noise in _NOISE:
        text = noise.sub("", text)
    text = " ".join(text.split())  # one line, for a CSV cell and a log line
    return f"{type(error).__name__}: {text[:200]}"


def error_code(error: BaseException) -> str:
    """The ``ERROR_CODES`` key of a picture that could not become model input."""
    if isinstance(error, EmptyPicture):
        return "empty"
    if isinstance(error, ImageTooLarge):
        return "too_many_pixels"
    if isinstance(error, UnidentifiedImageError):
        return "not_an_image"
    # TensorFlow's decoder, on a format Pillow reads but it does not (TIFF, ICO...).
    if "Unknown image file format" in str(error):
        return "unsupported_format"
    return "corrupt_image"


class RequestTooLarge(MlflowException):
    """A request over the configured limits: a 400 from MLflow's scoring server, before
    any picture is decoded."""

    def __init__(self, message: str) -> None:
        super().__init__(message, error_code=INVALID_PARAMETER_VALUE)

    # The scoring server prefixes a failed prediction's message with the request's
    # DataFrame ("Failed to predict data '<the pictures' bytes>'"): the client is told
    # the limit and how to split instead.
    @property
    def message(self) -> str:
        return self._message

    @message.setter
    def message(self, value: str) -> None:
        if not hasattr(self, "_message"):
            self._message = value


DEFAULT_MAX_PICTURES_PER_REQUEST = 32  # for models logged before the limits existed
DEFAULT_MAX_REQUEST_BYTES = 16_000_000


KERAS_ARTIFACT = "keras_model"
BATCH = 64  # pictures decoded and classified at a time: memory stays flat


@dataclass(frozen=True)
class ServingConfig:
    """What the wrapper needs besides the Keras model; stored in the MLflow model."""

    class_names: list[str]
    image_size: list[int]  # height, width
    channels: int  # 3: RGB; 1: grayscale (MNIST)
    input_scale: float  # the model's input is uint8 pixels times this
    max_pixels: int  # refused from the header above this
    decision_threshold: float | None  # binary models: above it, the second class
    # Over either, the served model refuses the whole request (a 400) before decoding.
    # Defaults: for models logged before these limits existed.
    max_pictures_per_request: int = DEFAULT_MAX_PICTURES_PER_REQUEST
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES  # the pictures' bytes, summed

    @property
    def binary(self) -> bool:
        return len(self.class_names) == 2 and self.decision_threshold is not None

    def output_columns(self) -> list[str]:
        """``label``, then ``probability_<second class>`` (binary) or ``probability``,
        ``error`` and ``error_code``."""
        probability = f"probability_{self.class_names[1]}" if self.binary else "probability"
        return ["label", probability, ERROR_COLUMN, ERROR_CODE_COLUMN]

    def signature(self) -> ModelSignature:
        """Bytes in (base64 in JSON for MLflow's scoring server); out, per row, a label and
        its probability, or (probability null, label "") an ``error`` text and its
        ``error_code`` (one of ``ERROR_CODES``)."""
        label, probability, error, code = self.output_columns()
        # Not an output column: present only when asked for (``GRAD_CAM_PARAM``).
        heatmap = ParamSpec(GRAD_CAM_PARAM, "boolean", False)
        return ModelSignature(
            inputs=Schema([ColSpec("binary", IMAGE_COLUMN)]),
            outputs=Schema(
                [
                    ColSpec("string", label),
                    ColSpec("double", probability, required=False),  # null on an error row
                    ColSpec("string", error),
                    ColSpec("string", code),
                ]
            ),
            params=ParamSchema([heatmap]),
        )

    def check_request(self, pictures: list[bytes]) -> None:
        """Raise ``RequestTooLarge`` when ``pictures`` exceed the limits of one request."""
        limit = self.max_pictures_per_request
        if len(pictures) > limit:
            raise RequestTooLarge(
                f"{len(pictures):,} pictures in one request, more than the {limit:,} allowed "
                f"(serving.max_pictures_per_request): send them in requests of at most "
                f"{limit:,} rows"
            )
        total, limit = sum(len(picture or b"") for picture in pictures), self.max_request_bytes
        if total > limit:
            raise RequestTooLarge(
                f"{total:,} bytes of pictures in one request, more than the {limit:,} allowed "
                f"(serving.max_request_bytes): send fewer pictures per request, so that each "
                f"request holds at most {limit:,} bytes (before base64)"
            )

    def as_model_config(self) -> dict[str, Any]:
        return asdict(self)


def classify(
    model: Any, config: ServingConfig, pictures: list[bytes], heatmaps: bool = False
) -> pd.DataFrame:
    """One row per picture: its label and probability, or the reason it could not be read;
    with ``heatmaps``, a ``GRAD_CAM_COLUMN`` too."""
    label_column, probability_column, _, _ = config.output_columns()
    rows: list[dict[str, Any]] = [
        {label_column: "", probability_column: np.nan, ERROR_COLUMN: "", ERROR_CODE_COLUMN: ""}
        for _ in pictures
    ]
    if heatmaps:
        for row in rows:
            row[GRAD_CAM_COLUMN] = ""
    pending: list[tuple[int, np.ndarray]] = []

    def run(pending: list[tuple[int, np.ndarray]]) -> None:
        batch = np.stack([pixels for _, pixels in pending])
        if heatmaps:
            from convnets.ml.explain import heatmap_pngs  # noqa: PLC0415 - only when asked

            threshold = config.decision_threshold if config.binary else 0.5
            try:
                pngs = heatmap_pngs(model, batch, config.input_scale, threshold)
            except UserError as error:  # a model without a convolution: the client's ask
                raise MlflowException(str(error), error_code=INVALID_PARAMETER_VALUE) from None
            for (row, _), png in zip(pending, pngs, strict=True):
                rows[row][GRAD_CAM_COLUMN] = png
        if config.input_scale != 1:
            batch = batch.astype("float32") * config.input_scale
        # predict_on_batch, not predict: predict builds a data pipeline on every call,
        # over ten times the model's own time for the one picture of a request.
        outputs = np.asarray(model.predict_on_batch(batch))
        for (row, _), output in zip(pending, outputs, strict=True):
            if config.binary:
                probability = float(output[0])
                above = probability > config.decision_threshold
                rows[row][label_column] = config.class_names[int(above)]
            else:
                best = int(np.argmax(output))
                probability = float(output[best])
                rows[row][label_column] = config.class_names[best]
            rows[row][probability_column] = probability
        pending.clear()

    for row, content in enumerate(pictures):
        try:
            if not content:
                raise EmptyPicture("empty image")
            pixels = to_model_input(
                bytes(content), tuple(config.image_size), config.max_pixels, config.channels
            )
            pending.append((row, pixels))
        except Exception as exc:  # noqa: BLE001 - any unreadable picture is its row's error
            rows[row][ERROR_COLUMN] = error_text(exc)
            rows[row][ERROR_CODE_COLUMN] = error_code(exc)
        if len(pending) == BATCH:
            run(pending)
    if pending:
        run(pending)
    return pd.DataFrame(rows, columns=config.output_columns() + [GRAD_CAM_COLUMN] * heatmaps)


class ImageClassifier(PythonModel):
    """MLflow pyfunc: a DataFrame with an ``image`` column of bytes to labels."""

    def load_context(self, context) -> None:
        import keras  # noqa: PLC0415 - loaded with the model, not with this module

        import convnets.ml.layers  # noqa: F401, PLC0415 - registers the layers the model names

        self.keras_model = keras.saving.load_model(context.artifacts[KERAS_ARTIFACT])
        self.config = ServingConfig(**context.model_config)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        if IMAGE_COLUMN not in model_input:
            raise ValueError(
                f"Expected a column {IMAGE_COLUMN!r} of image bytes, got {list(model_input)}"
            )
        pictures = list(model_input[IMAGE_COLUMN])
        self.config.check_request(pictures)  # before any decoding
        heatmaps = bool((params or {}).get(GRAD_CAM_PARAM, False))
        answer = classify(self.keras_model, self.config, pictures, heatmaps=heatmaps)
        # Nullable: MLflow's scoring server writes a float column's NaN as a bare NaN,
        # which strict JSON parsers (JavaScript's JSON.parse) refuse; <NA> goes out as null.
        probability = self.config.output_columns()[1]
        answer[probability] = answer[probability].astype("Float64")
        return answer


@dataclass(frozen=True)
class ServingSpec:
    """What a model pipeline knows about serving its models, besides the model itself."""

    config: ServingConfig
    input_example: bytes  # one picture of the test split, as a client would send it
    test_split_sha256: str  # the split the headline accuracy was measured on


@dataclass(frozen=True)
class ServableModel:
    """A trained model ready to log, register and serve, with its headline score."""

    keras_model: Any
    spec: ServingSpec
    test_accuracy: float  # the best checkpoint's, on ``spec.test_split_sha256``
