"""Typed parameters: one frozen pydantic model per section of ``conf/*/parameters_*.yml``.

Every value comes from ``conf/``: no field has a default here. Kedro parses each
``params:`` input into the model its node function declares (Kedro's parameter
validation, scoped to the pipelines being run), so nodes receive these objects.
``Model.model_validate`` raises pydantic's ``ValidationError``; within Kedro's
validation (``convnets.context.ProjectContext``) a section that does not parse becomes
``InvalidParameters`` instead: ``convnets.hooks.ParameterCheck`` then reports every
problem of the run at once, each named by its full key with a ``--params=`` to copy,
before any node runs.

- ``fields``: the field types and their command-line forms (``180x180``);
- ``base``: the base models, ``ParameterError`` and the explanation of pydantic's errors;
- ``sections``: the models of the sections;
- ``keys``: conf/ as ``kedro run`` reads it, and the keys no pipeline reads;
- ``costs``: what image and batch sizes would cost on the disk and in memory.
"""

from convnets.parameters.base import (
    InvalidParameters,
    ParameterError,
    Params,
    ReportsInvalid,
    Section,
    describe_errors,
    keeping_invalid_sections,
    parse,
)
from convnets.parameters.costs import (
    ACTIVATIONS_PER_INPUT,
    FLOAT32_BYTES,
    MNIST_IMAGE,
    MNIST_TRAIN_IMAGES,
    RGB,
    available_memory,
    free_disk,
    image_input_costs,
    mnist_costs,
    training_memory,
)
from convnets.parameters.fields import (
    LIST_FORMS,
    BinaryLoss,
    ClassLoss,
    ImageSize,
    IntList,
    NonNegativeInt,
    OptimizerName,
    PositiveInt,
    Precision,
    UnitInterval,
    Words,
)
from convnets.parameters.keys import (
    UnknownKey,
    check_environment,
    check_parameter_keys,
    conf_parameters,
    environments,
    flat_items,
    known_parameters,
    runtime_parameter_names,
    unknown_keys,
)
from convnets.parameters.sections import (
    FINGERPRINTED,
    SPREAD,
    SUBSET_NAMES,
    Architecture,
    Augmentation,
    BookEpoch,
    CatsVsDogsData,
    Convnet,
    ConvnetAugmented,
    ConvnetFast,
    ConvnetXception,
    Fingerprinted,
    ImageInput,
    Loss,
    MnistTraining,
    NotFingerprinted,
    Optimizer,
    Predict,
    Report,
    Serving,
    Subset,
    Subsets,
    Training,
)

__all__ = [
    "ACTIVATIONS_PER_INPUT",
    "FLOAT32_BYTES",
    "LIST_FORMS",
    "MNIST_IMAGE",
    "MNIST_TRAIN_IMAGES",
    "RGB",
    "SUBSET_NAMES",
    "Architecture",
    "Augmentation",
    "BinaryLoss",
    "CatsVsDogsData",
    "ClassLoss",
    "Convnet",
    "ConvnetAugmented",
    "ConvnetFast",
    "ConvnetXception",
    "ImageInput",
    "ImageSize",
    "IntList",
    "InvalidParameters",
    "Loss",
    "MnistTraining",
    "NonNegativeInt",
    "Optimizer",
    "OptimizerName",
    "ParameterError",
    "Params",
    "PositiveInt",
    "Precision",
    "Predict",
    "Report",
    "ReportsInvalid",
    "Section",
    "Serving",
    "Subset",
    "Subsets",
    "Training",
    "BookEpoch",
    "Fingerprinted",
    "NotFingerprinted",
    "FINGERPRINTED",
    "SPREAD",
    "UnitInterval",
    "UnknownKey",
    "Words",
    "available_memory",
    "check_environment",
    "check_parameter_keys",
    "conf_parameters",
    "describe_errors",
    "environments",
    "flat_items",
    "free_disk",
    "image_input_costs",
    "keeping_invalid_sections",
    "known_parameters",
    "mnist_costs",
    "parse",
    "runtime_parameter_names",
    "training_memory",
    "unknown_keys",
]
