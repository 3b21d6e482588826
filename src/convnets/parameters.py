"""Typed parameters: one frozen pydantic model per section of ``conf/*/parameters_*.yml``.

Every value comes from ``conf/``: no field has a default here. Kedro parses each
``params:`` input into the model its node function declares (Kedro's parameter
validation, scoped to the pipelines being run), so nodes receive these objects.
A section that does not parse becomes ``InvalidParameters`` instead of an error
there: ``convnets.hooks.ParameterHook`` then reports every problem of the run at
once, each named by its full key with a ``--params=`` to copy, before any node runs.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    BaseModel,
    BeforeValidator,
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

    classes: Annotated[tuple[str, str], Words]  # label 0, label 1 (the sigmoid's "positive" class)
    subsets: Subsets
    non_rgb: Literal["convert", "skip"]
    decision_threshold: Annotated[float, Field(gt=0.0, lt=1.0)]
    max_image_pixels: PositiveInt  # larger pictures are refused from their header


# ---------------------------------------------------------------- model pipelines
class ImageInput(Section):
    """``<model>.input``: what the model sees, and how the training images are batched."""

    image_size: ImageSize  # height, width in pixels; "180x180" on the command line
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
    widths: IntList  # filters per stage
    block: Literal["plain", "residual"]  # plain: conv-BN-ReLU; residual: 2 convs + shortcut
    convolution: Literal["standard", "separable"]  # separable: all but the first conv
    dropout: UnitInterval
    augmentation: Augmentation
    flip_averaging: bool  # predict with the mean over the picture and its mirror image


class ConvnetXception(Params):
    """Section 9.3.5: the mini Xception-like model, chapter 8's augmentation inside it."""

    name: Literal["convnet_xception"]
    widths: IntList  # filters of the residual blocks
    dropout: UnitInterval
    augmentation: Augmentation


class Architecture(
    _ReportsInvalid,
    RootModel[
        Annotated[
            Convnet | ConvnetAugmented | ConvnetFast | ConvnetXception,
            Field(discriminator="name"),
        ]
    ],
):
    """``<model>.architecture``: which builder of ``convnets.models``; ``root`` is it."""

    model_config = ConfigDict(frozen=True)


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

    optimizer: OptimizerName | Optimizer  # "rmsprop" (the book) or a mapping
    loss: BinaryLoss | Loss
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
    devices: Annotated[tuple[str, ...], Words] | None

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

    loss: ClassLoss  # integer labels, one softmax output per class
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

    training_pipelines: Annotated[tuple[str, ...], Words]  # the registry's: ${training_pipelines:}
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


# Errors from the branch of a ``name | Model`` union that the value was not meant for.
_MODEL_BRANCH = ("model_type", "model_attributes_type", "dict_type")


def _relevant(problem: dict[str, Any]) -> bool:
    given = problem.get("input")
    if problem["type"] in ("string_type", "literal_error") and isinstance(given, Mapping):
        return False  # a mapping was given: the error of the name branch is noise
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
        # A list item is set whole on the command line: image_size=180x180.
        settable = [section, *(part for part in path if not part.isdigit())]
        form = LIST_FORMS.get(settable[-1], "<value>")
        hint = f"--params={'.'.join(settable)}={form}"
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
    import warnings  # noqa: PLC0415

    from omegaconf import OmegaConf  # noqa: PLC0415

    from convnets.config_loader import ProjectConfigLoader  # noqa: PLC0415 - a cycle

    with warnings.catch_warnings():
        # Kedro's own use of an OmegaConf call deprecated since: not the user's concern.
        warnings.filterwarnings("ignore", "register_new_resolver", UserWarning)
        loader = ProjectConfigLoader(
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


# ---------------------------------------------------------------- unknown keys
# ``${runtime_params:predict_dir, ...}`` in conf/: a top-level key set only by --params.
_RUNTIME_PARAM = re.compile(r"\$\{\s*runtime_params:\s*([A-Za-z_][\w.]*)")
_CONF_SUFFIXES = (".yml", ".yaml", ".json")


def environments(conf_source: str | Path) -> list[str]:
    """The environments of ``conf_source``: its folders (base, local, quick, ...)."""
    return sorted(
        entry.name
        for entry in Path(conf_source).iterdir()
        if entry.is_dir() and not entry.name.startswith(".")
    )


def check_environment(conf_source: str | Path, env: str, fix: Callable[[str], str]) -> None:
    """``ParameterError`` naming ``env`` and the environments there, if it has no folder.

    ``fix(name)`` is the command with ``--env=name``, for the hint.
    """
    known = environments(conf_source)
    if env in known:
        return
    close = difflib.get_close_matches(env, [name for name in known if name != "base"], n=1)
    hint = f" Fix: {fix(close[0])}" if close else ""
    raise ParameterError(
        f"There is no environment {env!r}: no folder {Path(conf_source) / env}. The "
        f"environments are the folders of {conf_source}: {', '.join(known)}.{hint}"
    )


def runtime_parameter_names(conf_source: str | Path) -> set[str]:
    """The top-level names that conf/ reads with ``${runtime_params:<name>}``."""
    names = set()
    for path in Path(conf_source).rglob("*"):
        if path.suffix in _CONF_SUFFIXES and path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            names.update(match.split(".")[0] for match in _RUNTIME_PARAM.findall(text))
    return names


def known_parameters(conf_source: str | Path) -> dict[str, Any]:
    """Every key a run can read: conf/base's parameters, and the runtime parameters
    (``None``: a value of any form)."""
    known: dict[str, Any] = dict.fromkeys(runtime_parameter_names(conf_source))
    known.update(conf_parameters(conf_source))
    return known


class UnknownKey(NamedTuple):
    path: tuple[str, ...]  # the key as given
    choices: tuple[str, ...]  # the keys known at that level
    suggestion: str | None  # the closest of them, if one is close

    @property
    def corrected(self) -> tuple[str, ...] | None:
        return None if self.suggestion is None else (*self.path[:-1], self.suggestion)


def unknown_keys(
    given: Mapping[str, Any], known: Mapping[str, Any], prefix: tuple[str, ...] = ()
) -> list[UnknownKey]:
    """The keys of ``given`` that ``known`` does not have, at any depth; below a known
    key whose value is not a mapping (a list, a name, a runtime parameter) anything goes."""
    found = []
    for name, value in given.items():
        key = str(name)
        if key.startswith("_"):  # OmegaConf's variables, removed from the parameters
            continue
        if key not in known:
            close = difflib.get_close_matches(key, [str(name) for name in known], n=1)
            choices = tuple(map(str, known))
            found.append(UnknownKey((*prefix, key), choices, next(iter(close), None)))
        elif isinstance(value, Mapping) and isinstance(known[key], Mapping):
            found += unknown_keys(value, known[key], (*prefix, key))
    return found


def flat_items(nested: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` as ``{"a.b": 1}``: ``--params`` items."""
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        if isinstance(value, Mapping) and value:
            flat.update(flat_items(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _params_text(value: Any) -> str:
    if isinstance(value, list | tuple):  # the list forms a command line can carry
        numbers = all(isinstance(item, int) for item in value)
        return ("x" if numbers else " ").join(map(str, value))
    return "null" if value is None else str(value)


def _explain_unknown(unknown: UnknownKey, where: str) -> str:
    key = ".".join(unknown.path)
    parent = ".".join(unknown.path[:-1])
    what = f"no key {unknown.path[-1]} in {parent}" if parent else "no such parameter"
    if unknown.suggestion is not None:
        advice = f"did you mean {'.'.join(unknown.corrected)}?"
    else:
        advice = f"the keys there are {', '.join(sorted(unknown.choices))}."
    return f"{key} ({where}): {what}, so it would be ignored; {advice}"


def _merged(value: Any, under: Any) -> Any:
    """``value`` with what ``under`` has besides (``value`` wins)."""
    if not (isinstance(value, Mapping) and isinstance(under, Mapping)):
        return value
    return {**under, **{key: _merged(item, under.get(key)) for key, item in value.items()}}


def _replace_key(nested: Mapping[str, Any], path: tuple[str, ...], new: str) -> dict[str, Any]:
    """``nested`` with the key at ``path`` renamed ``new``; a key written right wins."""
    result = dict(nested)
    if len(path) == 1:
        moved = result.pop(path[0])
        result[new] = _merged(result[new], moved) if new in result else moved
    else:
        result[path[0]] = _replace_key(result[path[0]], path[1:], new)
    return result


def check_parameter_keys(
    conf_source: str | Path,
    env: str,
    runtime_params: Mapping[str, Any] | None,
    fix: Callable[[str], str] | None = None,
) -> None:
    """``ParameterError`` listing every key, in ``--params`` and in conf/<env>/'s
    parameter files, that no pipeline reads, with the known key it is closest to.

    ``fix(params)`` is the command with ``--params=params``, for a hint to copy.
    """
    known = known_parameters(conf_source)
    lines = []
    folder = Path(conf_source) / env
    if env != "base" and folder.is_dir():
        import yaml  # noqa: PLC0415

        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            if path.suffix not in _CONF_SUFFIXES or not any(
                part.startswith("parameters") for part in relative.parts
            ):
                continue
            try:
                values = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError):
                continue  # Kedro's loader reports it
            if isinstance(values, Mapping):
                lines += [
                    _explain_unknown(unknown, str(path)) + " Fix: rename or remove it there"
                    for unknown in unknown_keys(values, known)
                ]
    given = runtime_params or {}
    problems = unknown_keys(given, known)
    corrected = dict(given)
    for unknown in sorted(problems, key=lambda item: -len(item.path)):  # deepest first
        if unknown.suggestion is not None:
            corrected = _replace_key(corrected, unknown.path, unknown.suggestion)
    for unknown in problems:
        line = _explain_unknown(unknown, "--params")
        if unknown.suggestion is not None:
            parent = "".join(f"{part}." for part in unknown.path[:-1])
            items = flat_items({unknown.suggestion: _lookup(given, unknown.path)}, parent)
            line += " Fix: --params=" + ",".join(
                f"{name}={_params_text(value)}" for name, value in items.items()
            )
        lines.append(line)
    if not lines:
        return
    message = (
        "Unknown parameters, nothing was run:\n  "
        + "\n  ".join(lines)
        + f"\nThe known keys are those of {Path(conf_source) / 'base'}/parameters*.yml and "
        "the runtime parameters that conf/ reads: "
        + ", ".join(sorted(runtime_parameter_names(conf_source)))
        + "."
    )
    if problems and fix is not None and all(item.suggestion for item in problems):
        params = ",".join(
            f"{name}={_params_text(value)}" for name, value in flat_items(corrected).items()
        )
        message += f"\nFix: {fix(params)}"
    raise ParameterError(message)


def _lookup(nested: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    for part in path:
        nested = nested[part]
    return nested


# ---------------------------------------------------------------- what sizes cost
# A convnet keeps, per input value, several float32 activations and their gradients
# for the backward pass: a rough upper bound of the training memory per input byte.
ACTIVATIONS_PER_INPUT = 64
FLOAT32_BYTES = 4
RGB = 3
MNIST_IMAGE = (28, 28, 1)
MNIST_TRAIN_IMAGES = 60_000  # keras.datasets.mnist and fashion_mnist: a batch is at most this


def _gb(size: float) -> str:
    if size < 1e9:
        return f"{size / 1e6:.1f} MB"
    return f"{size / 1e9:.1f} GB" if size < 1e10 else f"{size / 1e9:.0f} GB"


def free_disk(path: Path) -> int:
    """Bytes free on the disk that ``path`` (or its nearest existing parent) is on."""
    import shutil  # noqa: PLC0415

    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def available_memory() -> int:
    """Bytes of memory a new allocation can get without swapping."""
    import psutil  # noqa: PLC0415

    return psutil.virtual_memory().available


def training_memory(batch_size: int, image_shape: tuple[int, ...]) -> int:
    """Bytes a training step on one batch of ``image_shape`` pictures may need."""
    pixels = 1
    for side in image_shape:
        pixels *= side
    return batch_size * pixels * FLOAT32_BYTES * ACTIVATIONS_PER_INPUT


def _largest_batch(image_shape: tuple[int, ...], available: int) -> int:
    fits = available // training_memory(1, image_shape)
    return 1 << (int(fits).bit_length() - 1) if fits else 0  # a power of two


def _memory_problem(
    key: str, batch_size: int, batch: int, shape: tuple[int, ...], size_key: str | None
) -> list[str]:
    need = training_memory(batch, shape)
    available = available_memory()
    if need <= available:
        return []
    size = "x".join(map(str, shape[:2]))
    fits = _largest_batch(shape, available)
    if fits:
        fix = f"--params={key}.batch_size={min(fits, batch_size)}"
    elif size_key is not None and (side := int((available / need) ** 0.5 * shape[0])):
        fix = f"--params={size_key}={side}x{side}"  # the batch stays; the pictures shrink
    else:
        fix = "free memory (close other programs)"
    return [
        f"{key}.batch_size: a batch of {batch} pictures of {size} needs about {_gb(need)} "
        f"of memory to train; {_gb(available)} is available, so the run would be killed "
        f"for memory. Fix: {fix}"
    ]


def image_input_costs(
    key: str, image_input: ImageInput, split: CatsVsDogsData, cache: Path | None
) -> list[str]:
    """What ``image_input`` would cost that the machine does not have: the decoded cache
    on the disk of ``cache`` (unless made already for this size), a batch in memory."""
    height, width = image_input.image_size
    subsets = split.subsets
    per_class = subsets.train.size + subsets.validation.size + subsets.test.size
    images = len(split.classes) * per_class
    problems = []
    if cache is not None and not (Path(cache) / f"{height}x{width}").exists():
        need = images * height * width * RGB
        free = free_disk(Path(cache))
        if need > free:
            side = int((free / 2 / images / RGB) ** 0.5)  # half the free space at most
            problems.append(
                f"{key}.image_size: {height}x{width} needs about {_gb(need)} of decoded "
                f"cache ({images} pictures of cats_vs_dogs.subsets); the disk of {cache} has "
                f"{_gb(free)} free. Fix: --params={key}.image_size={side}x{side}"
                " (or free space on that disk)"
            )
    batch = min(image_input.batch_size, len(split.classes) * subsets.train.size)
    size_key = f"{key}.image_size"
    return problems + _memory_problem(
        key, image_input.batch_size, batch, (height, width, RGB), size_key
    )


def mnist_costs(key: str, training: MnistTraining) -> list[str]:
    """The memory a batch of ``training`` would need that the machine does not have."""
    batch = min(training.batch_size, MNIST_TRAIN_IMAGES)
    return _memory_problem(key, training.batch_size, batch, MNIST_IMAGE, None)
