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
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from convnets.errors import UserError

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
    max_image_pixels: PositiveInt  # larger pictures are refused from their header


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


class ConvnetFast(Params):
    """``catdog_fast``: chapter 9's patterns on the book's convnet, chosen by measurement.

    Batch normalisation after every convolution, global average pooling, optionally
    residual blocks and separable convolutions; test-time flip averaging built into
    the saved model when ``flip_averaging`` is on.
    """

    name: Literal["convnet_fast"]
    widths: Annotated[tuple[PositiveInt, ...], Field(min_length=1)]  # filters per stage
    block: Literal["plain", "residual"]  # plain: conv-BN-ReLU; residual: 2 convs + shortcut
    convolution: Literal["standard", "separable"]  # separable: all but the first conv
    dropout: UnitInterval
    augmentation: Augmentation
    flip_averaging: bool  # predict with the mean over the picture and its mirror image


class Architecture(
    _ReportsInvalid,
    RootModel[Annotated[Convnet | ConvnetAugmented | ConvnetFast, Field(discriminator="name")]],
):
    """``<model>.architecture``: which builder of ``convnets.models``; ``root`` is it."""

    model_config = ConfigDict(frozen=True)


Precision = Literal["auto", "float32", "mixed_bfloat16", "mixed_float16"]


class Optimizer(Params):
    """An optimizer with a learning-rate schedule; a bare name keeps Keras' defaults."""

    name: Literal["adam", "adamw", "rmsprop", "sgd"]
    learning_rate: Annotated[float, Field(gt=0.0)]  # the peak, after warm-up
    weight_decay: Annotated[float, Field(ge=0.0)]  # decoupled (AdamW) or Keras' own
    schedule: Literal["constant", "cosine"]  # cosine: decays to 0 at the last epoch
    warmup_epochs: Annotated[float, Field(ge=0.0)]  # linear warm-up from 0 (cosine only)

    @field_validator("warmup_epochs")
    @classmethod
    def _warmup_needs_a_schedule(cls, warmup: float, info: ValidationInfo) -> float:
        if warmup and info.data.get("schedule") == "constant":
            raise ValueError("a warm-up needs schedule: cosine (or warmup_epochs: 0)")
        return warmup


class Loss(Params):
    """A loss with options; a bare name is the Keras loss as it comes."""

    name: Literal["binary_crossentropy"]
    label_smoothing: UnitInterval


class Training(Section):
    """``<model>.training``: compile and fit options shared by every model pipeline."""

    optimizer: str | Optimizer  # "rmsprop" (the book) or a mapping
    loss: str | Loss
    epochs: PositiveInt
    validation_freq: PositiveInt  # validate every n-th epoch (Keras' validation_freq)
    checkpoint_monitor: Literal["loss", "accuracy", "val_loss", "val_accuracy"]
    early_stopping_patience: PositiveInt | None  # null: off
    seed: StrictInt  # keras.utils.set_random_seed: weights, dropout, augmentation
    precision: Precision
    jit_compile: bool
    # mirrored: tf.distribute.MirroredStrategy over ``devices`` (null: every GPU, else
    # the CPU); the batch size stays the global batch, split across the replicas.
    distribution: Literal["none", "mirrored"]
    devices: tuple[str, ...] | None

    @field_validator("validation_freq")
    @classmethod
    def _last_epoch_is_validated(cls, every: int, info: ValidationInfo) -> int:
        epochs = info.data.get("epochs")
        if epochs and epochs % every:
            raise ValueError(
                f"epochs ({epochs}) must be a multiple of validation_freq, so that the "
                "last epoch is validated"
            )
        return every


class MnistTraining(Training):
    """``mnist.training``: arrays in memory, so the batch size and hold-out live here."""

    num_classes: PositiveInt
    batch_size: PositiveInt
    validation_split: UnitInterval

    @field_validator("validation_split")
    @classmethod
    def _monitor_needs_validation(cls, split: float, info: ValidationInfo) -> float:
        monitor = info.data.get("checkpoint_monitor", "")
        if monitor.startswith("val_") and split == 0:
            raise ValueError(
                f"checkpoint_monitor is {monitor!r} but there is no validation data: set "
                "validation_split above 0, or checkpoint_monitor to a training metric "
                "(loss, accuracy)"
            )
        return split


class TrainingCost(Section):
    """``<model>.cost``: how the training cost is measured, in book-epoch equivalents."""

    book_reference_steps: PositiveInt  # steps of the book's recipe timed in the run


class Serving(Section):
    """``serving``: the served model's limits per request (shared by every model)."""

    max_pictures_per_request: PositiveInt
    max_request_bytes: PositiveInt  # the pictures' bytes summed, before base64


class Predict(Section):
    """``predict``: how the predictions are shown."""

    grid_images: PositiveInt


class Report(Section):
    """``report``: which pipelines are compared, and the book's printed accuracies."""

    training_pipelines: tuple[str, ...]
    env_option: str  # "" or " --env=<env>": the environment, in suggested commands
    book_test_accuracy: dict[str, float | None]  # null: the book prints none


# ---------------------------------------------------------------- parsing
class ParameterError(UserError, ValueError):
    """Parameters that cannot be used, each named by its full key with a fix to copy."""


def _key_path(loc: tuple[Any, ...], value: Any, missing: bool) -> list[str]:
    """The keys of ``loc`` as written in conf/.

    Pydantic also puts the tags and member types of unions in ``loc``
    (``convnet_augmented``, ``str``, ``Optimizer``): a part that is not a key of the
    value there is dropped, but for the last part of a missing-key error.
    """
    keys = []
    for position, part in enumerate(loc):
        last = position == len(loc) - 1
        if isinstance(value, Mapping):
            if part in value or (missing and last):
                keys.append(str(part))
                value = value.get(part)
        elif isinstance(value, list | tuple) and isinstance(part, int) and part < len(value):
            keys.append(str(part))
            value = value[part]
    return keys


# Errors from the branch of a ``str | Model`` union that the value was not meant for.
_MODEL_BRANCH = ("model_type", "model_attributes_type", "dict_type")


def _relevant(problem: dict[str, Any]) -> bool:
    given = problem.get("input")
    if problem["type"] == "string_type" and isinstance(given, Mapping):
        return False  # a mapping was given: the error of the string branch is noise
    return not (problem["type"] in _MODEL_BRANCH and not isinstance(given, Mapping))


def describe_errors(section: str, value: Any, error: ValidationError) -> list[str]:
    """One line per problem: ``<full key>: <what is wrong> (got ...). Fix: --params=...``."""
    lines = []
    for problem in filter(_relevant, error.errors(include_url=False)):
        path = _key_path(problem["loc"], value, missing=problem["type"] == "missing")
        given = problem.get("input")
        if problem["type"].startswith("union_tag"):
            path.append("name")
            given = given.get("name") if isinstance(given, Mapping) else given
        key = ".".join([section, *path])
        message = problem["msg"].removeprefix("Value error, ")
        got = (
            ""
            if problem["type"] == "missing" or isinstance(given, Mapping)
            else f" (got {given!r})"
        )
        # A list item is set whole on the command line: image_size=[180,180].
        settable = [section, *(part for part in path if not part.isdigit())]
        hint = f"--params={'.'.join(settable)}=<value>"
        if problem["type"] == "extra_forbidden":
            hint = f"remove {key} from conf/ or --params"
        lines.append(f"{key}: {message}{got}. Fix: {hint}")
    return list(dict.fromkeys(lines))


def conf_parameters(
    conf_source: str | Path, env: str | None = None, overrides: list[str] | None = None
) -> dict[str, Any]:
    """The parameters of ``conf_source`` as ``kedro run`` reads them: base, then ``env``.

    ``overrides`` are ``key.path=value`` items, as ``kedro run --params`` takes them.
    For code that runs outside a Kedro session (tests, benchmarks).
    """
    from kedro.config import OmegaConfigLoader  # noqa: PLC0415 - only outside a session
    from omegaconf import OmegaConf  # noqa: PLC0415

    loader = OmegaConfigLoader(
        conf_source=str(conf_source),
        base_env="base",
        default_run_env=env or "base",
        merge_strategy={"parameters": "soft"},
        runtime_params=OmegaConf.to_container(OmegaConf.from_dotlist(overrides or [])),
    )
    return loader["parameters"]


def parse(model: type, section: str, value: Any) -> Any:
    """``value`` (a dict from conf/) parsed as ``model``; ``ParameterError`` if invalid."""
    parsed = model.model_validate(value)
    if isinstance(parsed, InvalidParameters):
        raise ParameterError("\n".join(parsed.explain(section)))
    return parsed
