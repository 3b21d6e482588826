"""The parameter models: one per section of ``conf/*/parameters_*.yml``.

No defaults, but for options added later: those default to the behaviour before them,
so existing configurations and resume states stay valid.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, RootModel, StrictInt, ValidationInfo, field_validator

from convnets.parameters.base import Params, ReportsInvalid, Section
from convnets.parameters.fields import (
    BinaryLoss,
    ImageSize,
    IntList,
    NonNegativeInt,
    OptimizerName,
    PositiveInt,
    Precision,
    UnitInterval,
    Words,
)


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


class FastAugmentation(Augmentation):
    """``catdog_fast``'s augmentation: the book's, and levers the book does not pull."""

    # RandomTranslation's height and width factor; 0: no translation layer.
    translation: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0


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
    # pooling (plain blocks): each max pool before its normalisation, a quarter of the
    # pixels to normalise; what bfloat16's speed-up depends on (docs/catdog_fast.md).
    normalization: Annotated[
        Literal["convolution", "pooling"],
        Field(exclude_if=lambda value: value == "convolution"),  # out of older fingerprints
    ] = "convolution"
    dropout: UnitInterval
    augmentation: FastAugmentation
    flip_averaging: bool  # predict with the mean over the picture and its mirror image

    @field_validator("normalization")
    @classmethod
    def _pooling_needs_plain_blocks(cls, normalization: str, info: ValidationInfo) -> str:
        if normalization == "pooling" and info.data.get("block") != "plain":
            raise ValueError("normalization: pooling is an option of block: plain")
        return normalization


class ConvnetXception(Params):
    """Section 9.3.5: the mini Xception-like model, chapter 8's augmentation inside it."""

    name: Literal["convnet_xception"]
    widths: IntList  # filters of the residual blocks
    dropout: UnitInterval
    augmentation: Augmentation


class Architecture(
    ReportsInvalid,
    RootModel[
        Annotated[
            Convnet | ConvnetAugmented | ConvnetFast | ConvnetXception,
            Field(discriminator="name"),
        ]
    ],
):
    """``<model>.architecture``: which builder of ``convnets.ml.models``; ``root`` is it."""

    model_config = ConfigDict(frozen=True)


class BookEpoch(Section):
    """``book_epoch``: the book's recipe as written (listing 8.16), timed as the unit of a
    training cost by ``kedro run --pipelines=book_epoch``; nothing else reads it."""

    image_size: ImageSize
    batch_size: PositiveInt
    precision: Precision
    architecture: ConvnetAugmented
    optimizer: OptimizerName
    loss: BinaryLoss
    train_images: PositiveInt  # pictures in one epoch of the book's split (both classes)
    validation_images: PositiveInt
    steps: PositiveInt  # training and prediction steps timed, after two of warm-up


class Serving(Section):
    """``serving``: the served model's limits per request (shared by every model)."""

    max_pictures_per_request: PositiveInt
    max_request_bytes: PositiveInt  # the pictures' bytes summed, before base64


class Predict(Section):
    """``predict``: how the predictions are shown."""

    grid_images: PositiveInt


class Explain(Section):
    """``explain``: how much the explain pipeline draws, and how hard it works."""

    batch_size: PositiveInt  # test pictures decoded and scored at a time
    activation_channels: PositiveInt  # channels drawn per layer in the activations grid
    filters_per_layer: PositiveInt  # filter patterns drawn per convolution (three of them)
    filter_steps: NonNegativeInt  # gradient-ascent steps per filter pattern
    filter_learning_rate: Annotated[float, Field(gt=0.0)]  # in picture units (full scale 1)
    grad_cam_images: PositiveInt  # test pictures in the heatmap figure
    worst_mistakes: PositiveInt  # pictures in the gallery of highest losses
    calibration_bins: Annotated[int, Field(ge=2, strict=True)]
    layer: str | None  # Grad-CAM's layer; null: the model's last convolution
    seed: StrictInt  # the filter patterns' starting noise and the sample of pictures


class Report(Section):
    """``report``: which pipelines are compared, and the book's printed accuracies."""

    training_pipelines: Annotated[tuple[str, ...], Words]  # the registry's: ${training_pipelines:}
    env_option: str  # "" or " --env=<env>": the environment, in suggested commands
    book_test_accuracy: dict[str, float | None]  # null: the book prints none
    # The frontier's reference marks: the book's training of each printed figure, in
    # book epochs; null: not known (drawn as a line at its accuracy).
    book_training_cost: dict[str, Annotated[float, Field(gt=0.0)] | None]
