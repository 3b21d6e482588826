"""Keras training shared by every pipeline: compile, fit with checkpoints, resume state.

The modules, by concern: ``compile`` (optimizer, loss, precision, distribution),
``fit`` (``fit_with_best_checkpoint`` and the order of its callbacks), ``callbacks``
and ``monitoring`` (the Keras callbacks), ``batches`` (the epochs' order), and the
resume state: ``state`` and ``records`` (what is kept, verified), ``fingerprint``
(which configuration it belongs to), ``saving`` (atomic saves). The pipelines use
the names below.
"""

from convnets.ml.training.batches import ordered_batches
from convnets.ml.training.callbacks import EPOCH_TIME
from convnets.ml.training.compile import compile_model, distribution_scope, precision_policy
from convnets.ml.training.fit import FitResult, fit_with_best_checkpoint
from convnets.ml.training.monitoring import peak_rss_mb
from convnets.ml.training.state import TrainingState

__all__ = [
    "EPOCH_TIME",
    "FitResult",
    "TrainingState",
    "compile_model",
    "distribution_scope",
    "fit_with_best_checkpoint",
    "ordered_batches",
    "peak_rss_mb",
    "precision_policy",
]
