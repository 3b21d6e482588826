"""Nodes of the book_epoch pipeline: the book's recipe (listing 8.16) timed a few steps."""

from __future__ import annotations

import logging
import math
import time

import keras
import numpy as np

from convnets.ml.hardware import PROCESSOR_FLAGS_TAG, compute_flags
from convnets.ml.models import build_catdog_model
from convnets.ml.reporting import as_mlflow_metrics
from convnets.ml.training import precision_policy
from convnets.parameters import BookEpoch

logger = logging.getLogger(__name__)

WARM_UP_STEPS = 2  # tracing, then the first call's allocations


def _seconds_per_step(step, steps: int) -> float:
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - started) / steps


def measure_book_epoch(book: BookEpoch) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """Benchmark: the seconds one epoch of the book's recipe takes here, from a few steps.

    An epoch is ``train_images`` pictures trained and ``validation_images`` predicted, in
    batches of ``batch_size``. On random pictures: a step's time does not depend on the
    pixels. ``benchmarks/book_epochs.py`` times full epochs beside a candidate instead.
    """
    keras.utils.set_random_seed(0)
    with precision_policy(book.precision):
        model = build_catdog_model(book.image_size, book.architecture)
    # Listing 8.16's compile; no XLA, as the project trains catdog (jit_compile: false).
    model.compile(optimizer=book.optimizer, loss=book.loss, metrics=["accuracy"], jit_compile=False)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (book.batch_size, *book.image_size, 3), dtype=np.uint8)
    labels = rng.integers(0, 2, (book.batch_size,)).astype("float32")
    for _ in range(WARM_UP_STEPS):
        model.train_on_batch(images, labels)
        model.predict_on_batch(images)
    train_step = _seconds_per_step(lambda: model.train_on_batch(images, labels), book.steps)
    predict_step = _seconds_per_step(lambda: model.predict_on_batch(images), book.steps)
    seconds = (
        math.ceil(book.train_images / book.batch_size) * train_step
        + math.ceil(book.validation_images / book.batch_size) * predict_step
    )
    flags = compute_flags()
    logger.info(
        "Book recipe here (%s): %.2f s a training step, about %.0f s an epoch",
        flags,
        train_step,
        seconds,
    )
    metrics = {"book_epoch_s": seconds, "book_train_step_s": train_step}
    return as_mlflow_metrics(metrics), {PROCESSOR_FLAGS_TAG: flags}
