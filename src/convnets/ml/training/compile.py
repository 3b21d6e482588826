"""How a model computes and learns: optimizer, loss, precision policy, distribution strategy."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterator
from typing import Any

import keras
import tensorflow as tf

from convnets.ml.hardware import resolve_precision
from convnets.parameters import Loss, Optimizer, Training

logger = logging.getLogger(__name__)


def _learning_rate(optimizer: Optimizer, steps_per_epoch: int, epochs: int) -> Any:
    """The peak rate, or a cosine decay to 0 over the training after a linear warm-up."""
    if optimizer.schedule == "constant":
        return optimizer.learning_rate
    total = steps_per_epoch * epochs
    warmup = round(optimizer.warmup_epochs * steps_per_epoch)
    if warmup == 0:
        return keras.optimizers.schedules.CosineDecay(optimizer.learning_rate, total)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        decay_steps=max(1, total - warmup),
        warmup_target=optimizer.learning_rate,
        warmup_steps=warmup,
    )


def build_optimizer(
    optimizer: str | Optimizer, steps_per_epoch: int, epochs: int
) -> str | keras.optimizers.Optimizer:
    """A Keras optimizer from the parameters; a bare name is passed on as Keras takes it."""
    if isinstance(optimizer, str):
        return optimizer
    rate = _learning_rate(optimizer, steps_per_epoch, epochs)
    # AdamW needs a float; the others take None for "no decay".
    decay = optimizer.weight_decay if optimizer.name == "adamw" else optimizer.weight_decay or None
    optimizer_class = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "rmsprop": keras.optimizers.RMSprop,
        "sgd": keras.optimizers.SGD,
    }[optimizer.name]
    options: dict[str, Any] = {"use_ema": optimizer.use_ema}
    if optimizer.name in ("sgd", "rmsprop"):
        options["momentum"] = optimizer.momentum
    if optimizer.name == "sgd":
        options["nesterov"] = optimizer.nesterov
    return optimizer_class(learning_rate=rate, weight_decay=decay, **options)


def build_loss(loss: str | Loss) -> str | keras.losses.Loss:
    """A Keras loss from the parameters; a bare name is passed on as Keras takes it."""
    if isinstance(loss, str):
        return loss
    return keras.losses.BinaryCrossentropy(label_smoothing=loss.label_smoothing)


def precision_tags(precision: str) -> dict[str, str]:
    """The policy a run computes in and why, logged and kept as MLflow tags."""
    policy, reason = resolve_precision(precision)
    logger.info("Precision %s (%s: %s)", policy, precision, reason)
    return {"precision": policy, "precision_reason": f"{precision}: {reason}"}


@contextlib.contextmanager
def precision_policy(name: str) -> Iterator[None]:
    """Layers built inside compute in ``name`` (a Keras dtype policy); restored after.

    ``auto`` is resolved from the hardware (``hardware.resolve_precision``). The models'
    sigmoid/softmax output layers are float32 whatever the policy.
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(resolve_precision(name)[0])
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@functools.cache
def _mirrored_strategy(devices: tuple[str, ...] | None) -> tf.distribute.MirroredStrategy:
    # One strategy per device set and process: a second MirroredStrategy would reuse
    # the first one's collective instance keys, and its all-reduces would fail.
    return tf.distribute.MirroredStrategy(devices=list(devices) if devices else None)


@contextlib.contextmanager
def distribution_scope(training: Training) -> Iterator[None]:
    """Build, compile and fit inside this: ``training.distribution`` says on which devices.

    ``mirrored`` copies the model to each device of ``training.devices`` (all GPUs,
    or the CPU, when null) with ``tf.distribute.MirroredStrategy``; each global batch
    is split across the replicas and their gradients summed, so the batch size in the
    parameters is the global batch. One device is a strategy of one replica.
    """
    if training.distribution == "none":
        yield
        return
    strategy = _mirrored_strategy(training.devices)
    logger.info(
        "MirroredStrategy: %d replica(s) on %s; each global batch is split across them",
        strategy.num_replicas_in_sync,
        ", ".join(strategy.extended.worker_devices),
    )
    with strategy.scope():
        yield


def compile_model(
    model: keras.Model, training: Training, steps_per_epoch: int | None = None
) -> keras.Model:
    """Compile with the optimizer, loss and XLA choice (``jit_compile``) of the parameters.

    A learning-rate schedule needs ``steps_per_epoch`` (batches in one epoch).
    """
    scheduled = getattr(training.optimizer, "schedule", "constant") != "constant"
    if scheduled and steps_per_epoch is None:
        raise ValueError("A learning-rate schedule needs the number of steps per epoch")
    model.compile(
        optimizer=build_optimizer(training.optimizer, steps_per_epoch or 0, training.epochs),
        loss=build_loss(training.loss),
        metrics=["accuracy"],
        jit_compile=training.jit_compile,
    )
    logger.info(
        "Compiled %s (%d parameters) for %d epochs",
        model.name,
        model.count_params(),
        training.epochs,
    )
    return model
