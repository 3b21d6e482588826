"""The model a client can call: image bytes in, a label and its probability out.

``ImageClassifier`` is an MLflow pyfunc model around a trained Keras model. It turns
each picture's bytes into model input with ``preprocessing.to_model_input``, the
function training's decoded cache and ``predict`` use, so a picture gets the same
answer from the served model as from the ``predict`` pipeline. A row that cannot be
read (not an image, empty, truncated, too many pixels) gets an ``error`` and no
label; the other rows of the batch are answered.

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
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, Schema

from convnets.preprocessing import to_model_input

logger = logging.getLogger(__name__)

IMAGE_COLUMN = "image"
ERROR_COLUMN = "error"
# An object's default repr ("<_io.BytesIO object at 0x7f…>", in Pillow's errors) says
# nothing to a user and differs from run to run.
_OBJECT_REPR = re.compile(r"\s*<[\w.]+ object at 0x[0-9a-fA-F]+>")


def error_text(error: BaseException) -> str:
    """An error as a row's ``error`` cell: its type and message, without object addresses."""
    return f"{type(error).__name__}: {_OBJECT_REPR.sub('', str(error))[:200]}"


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

    @property
    def binary(self) -> bool:
        return len(self.class_names) == 2 and self.decision_threshold is not None

    def output_columns(self) -> list[str]:
        """``label``, then ``probability_<second class>`` (binary) or ``probability``."""
        probability = f"probability_{self.class_names[1]}" if self.binary else "probability"
        return ["label", probability, ERROR_COLUMN]

    def signature(self) -> ModelSignature:
        """Bytes in (base64 in JSON for MLflow's scoring server); label, probability, error out."""
        label, probability, error = self.output_columns()
        return ModelSignature(
            inputs=Schema([ColSpec("binary", IMAGE_COLUMN)]),
            outputs=Schema(
                [ColSpec("string", label), ColSpec("double", probability), ColSpec("string", error)]
            ),
        )

    def as_model_config(self) -> dict[str, Any]:
        return asdict(self)


def classify(model: Any, config: ServingConfig, pictures: list[bytes]) -> pd.DataFrame:
    """One row per picture: its label and probability, or the reason it could not be read."""
    label_column, probability_column, _ = config.output_columns()
    rows: list[dict[str, Any]] = [
        {label_column: "", probability_column: np.nan, ERROR_COLUMN: ""} for _ in pictures
    ]
    pending: list[tuple[int, np.ndarray]] = []

    def run(pending: list[tuple[int, np.ndarray]]) -> None:
        batch = np.stack([pixels for _, pixels in pending])
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
                raise ValueError("empty image")
            pixels = to_model_input(
                bytes(content), tuple(config.image_size), config.max_pixels, config.channels
            )
            pending.append((row, pixels))
        except Exception as exc:  # noqa: BLE001 - any unreadable picture is its row's error
            rows[row][ERROR_COLUMN] = error_text(exc)
        if len(pending) == BATCH:
            run(pending)
    if pending:
        run(pending)
    return pd.DataFrame(rows, columns=config.output_columns())


class ImageClassifier(PythonModel):
    """MLflow pyfunc: a DataFrame with an ``image`` column of bytes to labels."""

    def load_context(self, context) -> None:
        import keras  # noqa: PLC0415 - loaded with the model, not with this module

        self.keras_model = keras.saving.load_model(context.artifacts[KERAS_ARTIFACT])
        self.config = ServingConfig(**context.model_config)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        if IMAGE_COLUMN not in model_input:
            raise ValueError(
                f"Expected a column {IMAGE_COLUMN!r} of image bytes, got {list(model_input)}"
            )
        return classify(self.keras_model, self.config, list(model_input[IMAGE_COLUMN]))


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
