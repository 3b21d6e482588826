"""Batches in an order drawn from (seed, epoch) alone, so a resumed run trains on the same."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow as tf


class EpochOrder:
    """The indices ``0..size-1`` in a new order each epoch, drawn from (seed, epoch) alone.

    ``tf.data``'s reshuffling draws each epoch's order from how many epochs the process
    has iterated, so a resumed run would see epoch 1's order again and train on other
    batches than an uninterrupted run. Keras starts one iterator per epoch, in order;
    ``start_at`` says which epoch the next one is (``fit_with_best_checkpoint`` calls
    it). A dataset made with ``dataset`` carries its order as ``epoch_order``.
    """

    def __init__(self, size: int, seed: int) -> None:
        self._size, self._seed, self._next = size, seed, 0

    def start_at(self, epoch: int) -> None:
        self._next = epoch

    def _orders(self) -> Iterator[np.ndarray]:
        epoch, self._next = self._next, self._next + 1
        yield np.random.default_rng([self._seed, epoch]).permutation(self._size)

    def dataset(self) -> tf.data.Dataset:
        """Single indices (int64), one epoch per iteration."""
        orders = tf.data.Dataset.from_generator(
            self._orders, output_signature=tf.TensorSpec((self._size,), tf.int64)
        )
        return orders.unbatch().apply(tf.data.experimental.assert_cardinality(self._size))


def ordered_batches(
    size: int,
    batch_size: int,
    seed: int | None,
    read: Any,
    output_signature: tuple[tf.TensorSpec, ...],
) -> tf.data.Dataset:
    """Batches of ``read(indices)`` (a NumPy function), in ``EpochOrder`` when ``seed``
    is given, else in index order; read ahead of training (prefetch)."""
    order = EpochOrder(size, seed) if seed is not None else None
    indices = order.dataset() if order is not None else tf.data.Dataset.range(size)

    def read_batch(batch: tf.Tensor) -> tuple[tf.Tensor, ...]:
        values = tf.numpy_function(read, [batch], [spec.dtype for spec in output_signature])
        for value, spec in zip(values, output_signature, strict=True):
            value.set_shape(spec.shape)
        return tuple(values)

    batches = (
        indices.batch(batch_size)
        .map(read_batch, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    batches.epoch_order = order
    return batches


def array_batches(
    x: np.ndarray, y: np.ndarray, batch_size: int, validation_split: float, seed: int
) -> tuple[tf.data.Dataset, tf.data.Dataset | None]:
    """Arrays as Keras' ``fit`` takes them (the last ``validation_split`` held out, the
    rest reshuffled each epoch), as ``EpochOrder`` batches so a resume sees the same."""
    split_at = int(len(x) * (1.0 - validation_split)) if validation_split else len(x)

    def spec(array: np.ndarray) -> tf.TensorSpec:
        return tf.TensorSpec((None, *array.shape[1:]), tf.as_dtype(array.dtype))

    signature = (spec(x), spec(y))
    train = ordered_batches(split_at, batch_size, seed, lambda i: (x[i], y[i]), signature)
    if split_at == len(x):
        return train, None
    held_out = ordered_batches(
        len(x) - split_at,
        batch_size,
        None,
        lambda i: (x[split_at + i], y[split_at + i]),
        signature,
    )
    return train, held_out
