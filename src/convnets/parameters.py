"""Typed parameters: one frozen pydantic model per section of ``conf/*/parameters_*.yml``.

Every value comes from ``conf/``: no field has a default here. Kedro parses each
``params:`` input into the model its node function declares (Kedro's parameter
validation, scoped to the pipelines being run), so nodes receive these objects.
A section that does not parse becomes ``InvalidParameters`` instead of an error
there: ``convnets.hooks.ParameterHook`` then reports every problem of the run at
once, each named by its full key with a ``--params=`` to copy, before any node runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    StrictInt,
    ValidationError,
    model_validator,
)

# Strict: a YAML true or 2.5 is not a count of epochs.
PositiveInt = Annotated[int, Field(gt=0, strict=True)]
NonNegativeInt = Annotated[int, Field(ge=0, strict=True)]
UnitInterval = Annotated[float, Field(ge=0.0, lt=1.0)]


class Params(BaseModel):
    """Parameters: immutable, and unknown keys are errors (typos do not pass)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class InvalidParameters:
    """What a section that failed to parse becomes, so all problems are reported together.

    Using it as parameters raises the explanation (when the hook did not run first).
    """

    def __init__(self, model: type, value: Any, error: ValidationError) -> None:
        self.model, self.value, self.error = model, value, error

    def explain(self, section: str) -> list[str]:
        return describe_errors(section, self.value, self.error)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # copy, pickle and repr probes
            raise AttributeError(name)
        raise ParameterError("\n".join(self.explain(f"<{self.model.__name__}>")))


class _ReportsInvalid:
    """Mixed into the models Kedro parses: a failure is kept for the hook to report."""

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Any:
        """The parsed section, or ``InvalidParameters`` holding why it does not parse."""
        if isinstance(obj, cls):
            return obj
        try:
            return super().model_validate(obj, **kwargs)
        except ValidationError as error:
            return InvalidParameters(cls, obj, error)


class Section(_ReportsInvalid, Params):
    """A top-level parameter section, the type a node function declares for it."""


# ---------------------------------------------------------------- cats vs dogs data
class Subset(Params):
    start: NonNegativeInt  # first image index considered for this subset
    size: PositiveInt  # images per class


class Subsets(Params):
    train: Subset
    validation: Subset
    test: Subset


SUBSET_NAMES = ("train", "validation", "test")


class CatsVsDogsData(Section):
    """``cats_vs_dogs``: the split shared by every cats-vs-dogs model, and its labels."""

    classes: tuple[str, str]  # label 0, label 1 (the sigmoid's "positive" class)
    subsets: Subsets
    non_rgb: Literal["convert", "skip"]
    decision_threshold: Annotated[float, Field(gt=0.0, lt=1.0)]


# ---------------------------------------------------------------- model pipelines
class ImageInput(Section):
    """``<model>.input``: what the model sees, and how the training images are batched."""

    image_size: tuple[PositiveInt, PositiveInt]  # height, width in pixels
    batch_size: PositiveInt
    shuffle_seed: StrictInt


class Augmentation(Params):
    rotation: Annotated[float, Field(ge=0.0)]  # fraction of a full turn (RandomRotation)
    zoom: Annotated[float, Field(ge=0.0, lt=1.0)]  # RandomZoom height factor


class Convnet(Params):
    """Listing 8.7: the convnet trained from scratch without augmentation."""

    name: Literal["convnet"]


class ConvnetAugmented(Params):
    """Listing 8.16: the same convnet with data augmentation and dropout."""

    name: Literal["convnet_augmented"]
    dropout: UnitInterval
    augmentation: Augmentation


class Architecture(
    _ReportsInvalid,
    RootModel[Annotated[Convnet | ConvnetAugmented, Field(discriminator="name")]],
):
    """``<model>.architecture``: which builder of ``convnets.models``; ``root`` is it."""

    model_config = ConfigDict(frozen=True)


Precision = Literal["float32", "mixed_bfloat16", "mixed_float16"]


class Training(Section):
    """``<model>.training``: compile and fit options shared by every model pipeline."""

    optimizer: str
    loss: str
    epochs: PositiveInt
    checkpoint_monitor: Literal["loss", "accuracy", "val_loss", "val_accuracy"]
    early_stopping_patience: PositiveInt | None  # null: off
    seed: StrictInt  # keras.utils.set_random_seed: weights, dropout, augmentation
    precision: Precision
    jit_compile: bool


class MnistTraining(Training):
    """``mnist.training``: arrays in memory, so the batch size and hold-out live here."""

    num_classes: PositiveInt
    batch_size: PositiveInt
    validation_split: UnitInterval

    @model_validator(mode="after")
    def _monitor_needs_validation(self) -> MnistTraining:
        if self.checkpoint_monitor.startswith("val_") and self.validation_split == 0:
            raise ValueError(
                f"checkpoint_monitor is {self.checkpoint_monitor!r} but validation_split is 0, "
                "so there is no validation data: set validation_split above 0, or "
                "checkpoint_monitor to a training metric (loss, accuracy)"
            )
        return self


class Predict(Section):
    """``predict``: how the predictions are shown."""

    grid_images: PositiveInt


# ---------------------------------------------------------------- parsing
class ParameterError(ValueError):
    """Parameters that cannot be used, each named by its full key with a fix to copy."""


def _key_path(loc: tuple[Any, ...], value: Any) -> list[str]:
    """The keys of ``loc`` as written in conf/; the union tags pydantic inserts are dropped."""
    keys = []
    for part in loc:
        if isinstance(value, Mapping) and part not in value and part == value.get("name"):
            continue  # the tag of a tagged union, such as "convnet_augmented"
        keys.append(str(part))
        if isinstance(value, Mapping):
            value = value.get(part)
        elif isinstance(value, list | tuple) and isinstance(part, int) and part < len(value):
            value = value[part]
        else:
            value = None
    return keys


def describe_errors(section: str, value: Any, error: ValidationError) -> list[str]:
    """One line per problem: ``<full key>: <what is wrong> (got ...). Try --params=...``."""
    lines = []
    for problem in error.errors(include_url=False):
        path = _key_path(problem["loc"], value)
        given = problem.get("input")
        if problem["type"].startswith("union_tag"):
            path.append("name")
            given = given.get("name") if isinstance(given, Mapping) else given
        key = ".".join([section, *path])
        message = problem["msg"].removeprefix("Value error, ")
        got = "" if problem["type"] == "missing" else f" (got {given!r})"
        # A list item is set whole on the command line: image_size=[180,180].
        settable = [section, *(part for part in path if not part.isdigit())]
        hint = f"--params={'.'.join(settable)}=<value>"
        if problem["type"] == "extra_forbidden":
            hint = f"remove {key} from conf/ or --params"
        lines.append(f"{key}: {message}{got}. Fix: {hint}")
    return lines


def parse(model: type, section: str, value: Any) -> Any:
    """``value`` (a dict from conf/) parsed as ``model``; ``ParameterError`` if invalid."""
    parsed = model.model_validate(value)
    if isinstance(parsed, InvalidParameters):
        raise ParameterError("\n".join(parsed.explain(section)))
    return parsed
