"""The training sections: ``<model>.training`` (compile and fit options), its optimizer
and loss, and which of its fields change what is computed (the resume fingerprint)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, StrictInt, ValidationInfo, field_validator

from convnets.parameters.base import Params, Section
from convnets.parameters.fields import (
    BinaryLoss,
    ClassLoss,
    OptimizerName,
    PositiveInt,
    Precision,
    UnitInterval,
    Words,
)


class Optimizer(Params):
    """An optimizer with a learning-rate schedule; a bare name keeps Keras' defaults."""

    name: Literal["adam", "adamw", "rmsprop", "sgd"]
    learning_rate: Annotated[float, Field(gt=0.0)]  # the peak, after warm-up
    weight_decay: Annotated[float, Field(ge=0.0)]  # decoupled (AdamW) or Keras' own
    schedule: Literal["constant", "cosine"]  # cosine: decays to 0 at the last epoch
    warmup_epochs: Annotated[float, Field(ge=0.0)]  # linear warm-up from 0 (cosine only)
    # Options added later, left out of the dump (and so of the resume fingerprint) at
    # their defaults, the behaviour before them.
    momentum: Annotated[float, Field(ge=0.0, lt=1.0, exclude_if=lambda value: value == 0.0)] = 0.0
    nesterov: Annotated[bool, Field(exclude_if=lambda value: not value)] = False
    # Keras' use_ema: the weights evaluated and saved are an exponential moving average.
    use_ema: Annotated[bool, Field(exclude_if=lambda value: not value)] = False

    @field_validator("warmup_epochs")
    @classmethod
    def _warmup_needs_a_schedule(cls, warmup: float, info: ValidationInfo) -> float:
        if warmup and info.data.get("schedule") == "constant":
            raise ValueError("a warm-up needs schedule: cosine (or warmup_epochs: 0)")
        return warmup

    @field_validator("momentum")
    @classmethod
    def _momentum_needs_sgd_or_rmsprop(cls, momentum: float, info: ValidationInfo) -> float:
        if momentum and info.data.get("name") not in ("sgd", "rmsprop"):
            raise ValueError("momentum is an option of sgd and rmsprop (adam's are its betas)")
        return momentum

    @field_validator("nesterov")
    @classmethod
    def _nesterov_needs_sgd_momentum(cls, nesterov: bool, info: ValidationInfo) -> bool:
        if nesterov and (info.data.get("name") != "sgd" or not info.data.get("momentum")):
            raise ValueError("nesterov needs name: sgd and a momentum above 0")
        return nesterov


class Loss(Params):
    """A loss with options; a bare name is the Keras loss as it comes."""

    name: Literal["binary_crossentropy"]
    label_smoothing: UnitInterval


@dataclass(frozen=True)
class Fingerprinted:
    """A training field that changes what is computed: it is part of the resume
    fingerprint (``convnets.ml.training.fingerprint``), so a state saved with another value
    is not resumed. ``left_out_at``: for an option added since state format 2, the
    value it had before, at which it is left out so earlier states stay resumable.
    """

    left_out_at: tuple[Any, ...] = ()


@dataclass(frozen=True)
class NotFingerprinted:
    """A training field that does not change what is computed: a state resumes across it."""

    why: str


# Every field of a training section says which it is (tests/ml/training/test_fingerprint.py).
FINGERPRINTED = Fingerprinted()
SPREAD = NotFingerprinted("how the training is spread over devices, not what it computes")


class Training(Section):
    """``<model>.training``: compile and fit options shared by every model pipeline.

    The compute options (precision to devices) come from the shared ``compute:``
    section (conf/base/parameters_compute.yml), merged into every training section.
    """

    optimizer: Annotated[OptimizerName | Optimizer, FINGERPRINTED]  # "rmsprop" or a mapping
    loss: Annotated[BinaryLoss | Loss, FINGERPRINTED]
    epochs: Annotated[PositiveInt, FINGERPRINTED]
    # Validate every n-th epoch (Keras' validation_freq).
    validation_freq: Annotated[PositiveInt, Fingerprinted(left_out_at=(1,))]
    checkpoint_monitor: Annotated[
        Literal["loss", "accuracy", "val_loss", "val_accuracy"], FINGERPRINTED
    ]
    early_stopping_patience: Annotated[PositiveInt | None, FINGERPRINTED]  # null: off
    seed: Annotated[StrictInt, FINGERPRINTED]  # keras.utils.set_random_seed
    # The policy "auto" resolves to on this machine is what the fingerprint holds.
    precision: Annotated[Precision, Fingerprinted(left_out_at=("float32",))]
    jit_compile: Annotated[bool, Fingerprinted(left_out_at=(False,))]
    # mirrored: tf.distribute.MirroredStrategy over ``devices`` (null: every GPU, else
    # the CPU); the batch size stays the global batch, split across the replicas.
    distribution: Annotated[Literal["none", "mirrored"], SPREAD]
    devices: Annotated[Annotated[tuple[str, ...], Words] | None, SPREAD]

    @field_validator("checkpoint_monitor")
    @classmethod
    def _averaged_weights_are_chosen_on_validation(cls, monitor: str, info: ValidationInfo) -> str:
        if getattr(info.data.get("optimizer"), "use_ema", False) and not monitor.startswith("val_"):
            raise ValueError(
                "use_ema needs a validation monitor (val_loss or val_accuracy): the moving "
                "average is what validation scores, the training metrics score the weights"
            )
        return monitor

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

    loss: Annotated[ClassLoss, FINGERPRINTED]  # integer labels, one softmax output per class
    num_classes: Annotated[PositiveInt, FINGERPRINTED]
    batch_size: Annotated[PositiveInt, FINGERPRINTED]
    validation_split: Annotated[UnitInterval, FINGERPRINTED]

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
