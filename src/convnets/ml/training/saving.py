"""Saving a training's files durably: through a temporary file, fsynced, then renamed.

A crash or a full disk during a save leaves the file that was there. Also what a save
needs besides the weights: the layers' random-stream states, and its size beforehand.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np

from convnets.durability.atomic import fsync_file, fsync_folder
from convnets.errors import UserError

# Room kept free beyond the estimated size of an epoch's files.
SPACE_MARGIN_BYTES = 1 << 20


class NoSpaceLeft(UserError, OSError):
    """The resume state cannot be saved: the disk it is on is full."""


def _seed_variables(model: keras.Model) -> list[Any]:
    """The state variables of the layers' ``SeedGenerator``s (dropout, augmentation), in
    layer order: their names carry a counter of the process, their order does not.

    ``save_weights`` leaves them out, so a resumed run would draw the random numbers
    of epoch 1 again; the record keeps them.
    """
    found: dict[int, Any] = {}  # a model's variables include its layers': once each
    for layer in model._flatten_layers():  # noqa: SLF001 - every nested layer
        for variable in layer.variables:
            if variable.path.endswith("seed_generator_state"):
                found.setdefault(id(variable), variable)
    return list(found.values())


def seed_states(model: keras.Model) -> list[list[int]]:
    """The layers' random-stream states, for the record."""
    return [
        [int(value) for value in keras.ops.convert_to_numpy(variable)]
        for variable in _seed_variables(model)
    ]


def restore_seed_states(model: keras.Model, states: list[list[int]] | None) -> None:
    """Put back the random-stream states a record kept (none for a record without them)."""
    variables = _seed_variables(model)
    if not states or len(states) != len(variables):
        return
    for variable, state in zip(variables, states, strict=True):
        variable.assign(np.asarray(state, dtype=variable.dtype))


def restore_weights(model: keras.Model, path: Path) -> None:
    """Load weights and optimizer state saved by ``save_weights_atomically`` (or a
    ``.keras`` checkpoint) into ``model``; the optimizer is built first to receive them."""
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.load_weights(path)


def _save_atomically(path: Path, partial: Path, save: Any) -> None:
    """``save(partial)``, fsync, rename to ``path``: a crash or a full disk during the
    save leaves the file that was there, if any."""
    try:
        save(partial)
        fsync_file(partial)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise _disk_error(exc, path) from exc
    os.replace(partial, path)
    fsync_folder(path.parent)


def save_model_atomically(model: keras.Model, path: Path) -> None:
    """``model.save`` through a temporary file beside ``path``."""
    _save_atomically(path, path.with_name(f".{path.stem}.partial{path.suffix}"), model.save)


def save_weights_atomically(model: keras.Model, path: Path) -> None:
    """``model.save_weights`` (weights and optimizer state) through a temporary file
    (Keras wants the name to end in ``.weights.h5``)."""
    stem = path.name.removesuffix(".weights.h5")
    _save_atomically(path, path.with_name(f".{stem}.partial.weights.h5"), model.save_weights)


def _disk_error(exc: OSError, path: Path) -> OSError:
    full = exc.errno == errno.ENOSPC or "No space left" in str(exc)
    if not full:
        return exc
    return NoSpaceLeft(
        f"No space left on device while saving {path}. The previous epoch's state is "
        f"intact: free some space on {path.parent} and run the same command again; "
        "training resumes after the last saved epoch."
    )


def variables_bytes(model: keras.Model) -> int:
    """Bytes of the model's variables, optimizer state included (what one save writes)."""
    variables = list(model.variables)
    factor = 3  # Adam and RMSprop keep one or two slots per weight once built
    if model.optimizer is not None and model.optimizer.built:
        variables += list(model.optimizer.variables)
        factor = 1
    itemsize = {"float16": 2, "bfloat16": 2, "float64": 8, "int64": 8}
    total = sum(
        math.prod(variable.shape) * itemsize.get(keras.backend.standardize_dtype(variable.dtype), 4)
        for variable in variables
    )
    return total * factor


def averaging_optimizer(model: keras.Model) -> keras.optimizers.Optimizer | None:
    """The model's optimizer if it keeps a moving average of the weights (``use_ema``),
    looking inside the loss-scale wrapper mixed float16 adds; else None."""
    optimizer = getattr(model, "optimizer", None)
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    return optimizer if getattr(inner, "use_ema", False) else None


@contextlib.contextmanager
def averaged_weights(model: keras.Model) -> Iterator[None]:
    """With ``use_ema``: the optimizer's moving average in the model's weights while
    inside, the trained weights back after; otherwise nothing changes.

    Keras' ``SwapEMAWeights`` does this around validation; its ``swap_on_epoch`` would
    also leave the average in the model when the epoch's resume state is saved, which
    would then resume from the average instead of the trained weights.
    """
    optimizer = averaging_optimizer(model)
    if optimizer is None:
        yield
        return
    trained = [variable.numpy() for variable in model.trainable_variables]
    optimizer.finalize_variable_values(model.trainable_variables)
    try:
        yield
    finally:
        for variable, value in zip(model.trainable_variables, trained, strict=True):
            variable.assign(value)
