"""The field types of the parameter models, and their command-line forms."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

# Strict: a YAML true or 2.5 is not a count of epochs.
PositiveInt = Annotated[int, Field(gt=0, strict=True)]
NonNegativeInt = Annotated[int, Field(ge=0, strict=True)]
UnitInterval = Annotated[float, Field(ge=0.0, lt=1.0)]


def _split_numbers(value: Any) -> Any:
    """A list of numbers given as one string, ``180x180``: Kedro splits ``--params`` at
    every comma, so ``image_size=[180,180]`` cannot be typed on a command line."""
    if not isinstance(value, str):
        return value
    parts = [part for part in re.split(r"[x\s]+", value.strip()) if part]
    return [int(part) if part.isdigit() else part for part in parts]


def _split_words(value: Any) -> Any:
    """A list of names given as one string: ``"cat dog"``."""
    return value.split() if isinstance(value, str) else value


# image_size=180x180 or widths=32x64x128 on the command line; a list in conf/.
ImageSize = Annotated[tuple[PositiveInt, PositiveInt], BeforeValidator(_split_numbers)]
IntList = Annotated[tuple[PositiveInt, ...], Field(min_length=1), BeforeValidator(_split_numbers)]
Words = BeforeValidator(_split_words)
# The command-line form of the list fields, for the hints.
LIST_FORMS = {"image_size": "<height>x<width>", "widths": "<w1>x<w2>x..."}

Precision = Literal["auto", "float32", "mixed_bfloat16", "mixed_float16"]
# The names keras.optimizers.get resolves, so a typo is refused before any node.
_OptimizerNames = Literal[
    "adadelta",
    "adafactor",
    "adagrad",
    "adam",
    "adamw",
    "adamax",
    "ftrl",
    "lion",
    "nadam",
    "rmsprop",
    "sgd",
]


def _lower(name: object) -> object:
    return name.lower() if isinstance(name, str) else name  # as Keras looks names up


OptimizerName = Annotated[_OptimizerNames, BeforeValidator(_lower)]
# Losses for one sigmoid output (cats vs dogs) and for integer class labels (MNIST).
BinaryLoss = Literal["binary_crossentropy", "binary_focal_crossentropy"]
ClassLoss = Literal["sparse_categorical_crossentropy"]
