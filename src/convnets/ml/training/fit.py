"""``fit_with_best_checkpoint``: listing 8.17's fit, resumable epoch by epoch."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NamedTuple

import keras
import mlflow

from convnets.durability.scratch import ScratchDirectory
from convnets.ml.training.batches import array_batches
from convnets.ml.training.callbacks import (
    DiskSpaceGuard,
    EpochCommit,
    EpochLogger,
    ResumableEarlyStopping,
    ValidatedCheckpoint,
    monitor_mode,
)
from convnets.ml.training.compile import precision_tags
from convnets.ml.training.fingerprint import describe_data, training_fingerprint
from convnets.ml.training.monitoring import MlflowEpochMetrics, TrainingProgress
from convnets.ml.training.records import ResumePoint
from convnets.ml.training.saving import (
    averaging_optimizer,
    restore_seed_states,
    restore_weights,
    save_model_atomically,
)
from convnets.ml.training.state import TrainingState
from convnets.parameters import Training

logger = logging.getLogger(__name__)

# The order of the callbacks, which Keras calls in turn at each epoch's end:
CALLBACK_ORDER: tuple[type[keras.callbacks.Callback], ...] = (
    DiskSpaceGuard,  # first: stops the run before any file of the epoch meets a full disk
    # With use_ema: validates the optimizer's moving average (it acts on validation's
    # begin and end only, so its place among the epoch-end callbacks does not matter).
    keras.callbacks.SwapEMAWeights,
    ValidatedCheckpoint,  # sees the epoch's own logs (skips the epochs without validation)
    ResumableEarlyStopping,  # likewise; sets stop_training before the commit records it
    TrainingProgress,
    EpochLogger,  # adds the epoch time, the rate and NaN for a skipped validation...
    EpochCommit,  # ...for the commit to keep; logs the epoch's line once it is saved
    MlflowEpochMetrics,  # MLflow hears of an epoch only once it is saved (never twice)
)


class FitResult(NamedTuple):
    """What ``fit_with_best_checkpoint`` gives back."""

    final_model: keras.Model  # after the last epoch
    best_model: keras.Model  # the best checkpoint, reloaded from disk
    history: dict[str, list[float]]  # per epoch, of the whole training (resumed ones too)
    tags: dict[str, str]  # MLflow tags: the precision; resumed_from_run_id when resumed


def in_callback_order(callbacks: Iterable[keras.callbacks.Callback]) -> list:
    """``callbacks`` sorted as ``CALLBACK_ORDER`` says (each of one of its classes)."""
    return sorted(callbacks, key=lambda callback: CALLBACK_ORDER.index(type(callback)))


def _finished_training(state: TrainingState, resume: ResumePoint, tags: dict) -> FitResult:
    """The models and history of a training that finished in an earlier, interrupted run."""
    logger.info(
        "Training finished earlier (%d epochs, %s): reusing its models to complete the run",
        resume.epochs_done,
        state.folder,
    )
    if state.run_id is not None:
        MlflowEpochMetrics(state.run_id, resume.history).on_train_begin()  # the epochs, once
    return FitResult(
        keras.models.load_model(resume.final),
        keras.models.load_model(resume.best),
        resume.history,
        tags,
    )


def _resume_tags(state: TrainingState, resumed_from: str | None, epochs_done: int) -> dict:
    """MLflow tags of a run that continues another run's training."""
    if not resumed_from or resumed_from == state.run_id:
        return {}
    # One continuous history: this run logs every epoch and names the run it continues.
    tags = {"resumed_from_run_id": resumed_from}
    active = mlflow.active_run()
    if epochs_done and active is not None and active.info.run_id == state.run_id:
        # Told apart from the run it continues in the UI's list (same pipeline name).
        tags["mlflow.runName"] = f"{active.info.run_name} (resumed after epoch {epochs_done})"
    return tags


def fit_with_best_checkpoint(
    model: keras.Model,
    training: Training,
    x: Any,
    y: Any = None,
    *,
    batch_size: int | None = None,
    validation_split: float = 0.0,
    validation_data: Any = None,
    state: TrainingState | None = None,
) -> FitResult:
    """Fit ``model`` and keep the best epoch as ``ModelCheckpoint`` saw it (listing 8.17).

    With ``state``, the run can be killed and continued by running it again:
    each epoch is committed to the resume state (``convnets.ml.training.state``): weights,
    optimizer state, the best checkpoint so far and the history, each verified before
    a later run continues from it. A state whose training finished gives back its
    models without training; ``TrainingState.release`` deletes it.
    ``training.early_stopping_patience`` (off when null) adds ``EarlyStopping``.

    Returns the model after the last epoch, the best checkpoint reloaded from disk,
    the per-epoch history of the whole training, and MLflow tags for the run
    (``resumed_from_run_id`` when it continues another run's training): a ``FitResult``.
    """
    monitor = training.checkpoint_monitor
    validated = validation_data is not None or (y is not None and validation_split > 0)
    if monitor.startswith("val_") and not validated:
        raise ValueError(
            f"training.checkpoint_monitor is {monitor!r} but this run has no validation "
            "data: set training.validation_split above 0, or checkpoint_monitor to a "
            "training metric (loss, accuracy)."
        )
    temporary = None
    if state is None:
        temporary = ScratchDirectory(prefix="convnets-training-")
        state = TrainingState(Path(temporary.name))
    try:
        data = {"x": x, "y": y, "batch_size": batch_size, "validation_split": validation_split}
        return _fit_resumably(
            model, training, data, validation_data, state, keep_final=temporary is None
        )
    finally:
        if temporary is not None:
            temporary.cleanup()


def _callbacks(
    training: Training,
    state: TrainingState,
    resume: ResumePoint | None,
    *,
    validated: bool,
) -> tuple[list[keras.callbacks.Callback], EpochCommit, TrainingProgress]:
    """The callbacks of one fit, in ``CALLBACK_ORDER``; also its commit and progress bar."""
    epochs, monitor = training.epochs, training.checkpoint_monitor
    mode = monitor_mode(monitor)
    checkpoint = ValidatedCheckpoint(
        filepath=str(state.folder / "best-epoch-{epoch:04d}.keras"),
        save_best_only=True,
        monitor=monitor,
        mode=mode,
        initial_value_threshold=resume.best_value if resume else None,
    )
    commit = EpochCommit(state, epochs, checkpoint, resume)
    previous = resume.history if resume else {}
    progress = TrainingProgress(epochs)
    validated_keys = ("val_loss", "val_accuracy") if validated else ()
    callbacks = [
        DiskSpaceGuard(state),
        checkpoint,
        progress,
        EpochLogger(every_epoch=validated_keys),
        commit,
    ]
    if getattr(training.optimizer, "use_ema", False):
        callbacks.append(keras.callbacks.SwapEMAWeights())
    patience = training.early_stopping_patience
    if patience:
        callbacks.append(
            ResumableEarlyStopping(
                previous.get(monitor, []), monitor=monitor, mode=mode, patience=patience
            )
        )
    if state.run_id is not None:  # watch the run in the MLflow UI while it trains
        callbacks.append(MlflowEpochMetrics(state.run_id, previous))
    return in_callback_order(callbacks), commit, progress


def _resume_point(
    state: TrainingState, model: keras.Model, config: str, epochs: int
) -> ResumePoint | None:
    """Where an earlier run of ``config`` left off, or None after starting afresh."""
    resume = state.resume_point(model) if state.is_resumable(config) else None
    if resume is None:
        state.start_afresh(config)
        return None
    logger.info(
        "Resuming training from %s after epoch %d of %d", state.folder, resume.epochs_done, epochs
    )
    return resume


def _fit_resumably(
    model: keras.Model,
    training: Training,
    data: dict[str, Any],
    validation_data: Any,
    state: TrainingState,
    *,
    keep_final: bool,
) -> FitResult:
    x, y = data["x"], data["y"]
    batch_size, validation_split = data["batch_size"], data["validation_split"]
    validated = validation_data is not None or (y is not None and validation_split > 0)
    config = training_fingerprint(model, training, describe_data(x, batch_size, validation_split))
    resume = _resume_point(state, model, config, training.epochs)
    resumed_from = state.remember_mlflow_run()
    tags = _resume_tags(state, resumed_from, epochs_done=resume.epochs_done if resume else 0)
    tags.update(precision_tags(training.precision))
    if resume is not None and resume.final is not None:
        return _finished_training(state, resume, tags)
    if resume is not None and resume.weights is not None:
        restore_weights(model, resume.weights)
        restore_seed_states(model, resume.seed_states)
    if resume is not None and resume.finished and resume.best is not None:
        # Finished, but its final model was damaged: the last weights are that model
        # (with use_ema, their average, as Keras' fit ends).
        if (optimizer := averaging_optimizer(model)) is not None:
            optimizer.finalize_variable_values(model.trainable_variables)
        save_model_atomically(model, state.final)
        state.commit(
            resume.history,
            resume.weights,
            resume.best,
            resume.best_epoch,
            resume.best_value,
            state.final,
            resume.seed_states,
        )
        return FitResult(model, keras.models.load_model(resume.best), resume.history, tags)
    callbacks, commit, progress = _callbacks(training, state, resume, validated=validated)
    if y is not None:
        x, validation_data = array_batches(x, y, batch_size, validation_split, training.seed)
    initial_epoch = resume.epochs_done if resume else 0
    if getattr(x, "epoch_order", None) is not None:
        x.epoch_order.start_at(initial_epoch)
    try:
        model.fit(
            x,
            epochs=training.epochs,
            initial_epoch=initial_epoch,
            validation_data=validation_data,
            validation_freq=training.validation_freq,
            callbacks=callbacks,
            shuffle=False,  # the order is EpochOrder's
            verbose=0,
        )
    finally:
        progress.close()
    if commit.best is None:
        monitor = training.checkpoint_monitor
        raise RuntimeError(f"No epoch of the training had a value for {monitor}")
    best_model = keras.models.load_model(commit.best)
    if keep_final:
        # Recorded last: a state whose record names final.keras holds a finished training.
        save_model_atomically(model, state.final)
        commit.commit(final=state.final)
    return FitResult(model, best_model, commit.history, tags)
