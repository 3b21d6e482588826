"""Typed parameters: one frozen pydantic model per section of ``conf/*/parameters_*.yml``.

Pure schema: no configuration loading and no Kedro (``convnets.config`` reads conf/ and
checks a run). Every value comes from ``conf/``. Kedro parses each ``params:`` input into
the model its node function declares, so nodes receive these objects.
``Model.model_validate`` raises pydantic's ``ValidationError``; within
``keeping_invalid_sections()`` (``convnets.config.context``) a section that does not
parse becomes ``InvalidParameters`` instead, for ``config.check`` to report.

- ``fields``: the field types and their command-line forms (``180x180``);
- ``base``: the base models, ``ParameterError`` and the explanation of pydantic's errors;
- ``sections``: the models of the sections; ``training``: those of ``<model>.training``.
"""

from convnets.parameters.base import (
    InvalidParameters,
    ParameterError,
    Section,
    describe_errors,
    keeping_invalid_sections,
    parse,
)
from convnets.parameters.sections import (
    SUBSET_NAMES,
    Architecture,
    BookEpoch,
    CatsVsDogsData,
    Convnet,
    ConvnetAugmented,
    ConvnetFast,
    ConvnetXception,
    Explain,
    ImageInput,
    Predict,
    Report,
    Serving,
)
from convnets.parameters.training import (
    Fingerprinted,
    Loss,
    MnistTraining,
    NotFingerprinted,
    Optimizer,
    Training,
)

__all__ = [
    "SUBSET_NAMES",
    "Architecture",
    "BookEpoch",
    "CatsVsDogsData",
    "Convnet",
    "ConvnetAugmented",
    "ConvnetFast",
    "ConvnetXception",
    "Explain",
    "Fingerprinted",
    "ImageInput",
    "InvalidParameters",
    "Loss",
    "MnistTraining",
    "NotFingerprinted",
    "Optimizer",
    "ParameterError",
    "Predict",
    "Report",
    "Section",
    "Serving",
    "Training",
    "describe_errors",
    "keeping_invalid_sections",
    "parse",
]
