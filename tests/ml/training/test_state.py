"""The resume state is verified before use: each damaged file is found, set aside and
rebuilt from what is still good, or the run stops with a message that names it."""

from __future__ import annotations

import json
import logging
import os

import keras
import mlflow
import numpy as np
import pytest
import tensorflow as tf

from convnets.ml.training.records import DamagedTrainingState
from convnets.ml.training.state import TrainingState
from convnets.parameters import MnistTraining
from tests.conftest import reset_mlflow, typed_parameters

EPOCHS = 4


class _StopAfter(keras.callbacks.Callback):
    """Listed after the project's callbacks: the epoch is committed when it raises."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch, self.trained = epoch, []

    def on_epoch_end(self, epoch, logs=None):
        self.trained.append(epoch + 1)
        if epoch + 1 == self.epoch:
            raise KeyboardInterrupt("killed")  # as a crash: no clean-up, the state stays


class _EarlyStop(keras.callbacks.Callback):
    """Listed first: stops the training at ``epoch`` as ``EarlyStopping`` would."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            self.model.stop_training = True


def _train(
    folder,
    stop_after=None,
    run_id=None,
    monitor="val_loss",
    *,
    as_dataset=False,
    dropout=0.0,
    early_stop_at=None,
):
    """A small model (with ``dropout``), trained for EPOCHS epochs with the resume state in
    ``folder``: from arrays (as MNIST), or from ``ordered_batches`` (as the cats and dogs)."""
    from convnets.ml.training import (  # noqa: PLC0415
        compile_model,
        fit_with_best_checkpoint,
        ordered_batches,
    )

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 8), dtype="float32"), rng.integers(0, 10, 64)
    validation = None
    if as_dataset:
        signature = (
            tf.TensorSpec((None, 8), tf.float32),
            tf.TensorSpec((None,), tf.int64),
        )
        images, labels = x, y
        validation = ordered_batches(
            16, 16, None, lambda i: (images[48 + i], labels[48 + i]), signature
        )
        x, y = ordered_batches(48, 16, 7, lambda i: (images[i], labels[i]), signature), None
    training = typed_parameters(
        MnistTraining,
        "mnist.training",
        epochs=EPOCHS,
        batch_size=16,
        validation_split=0.25,
        checkpoint_monitor=monitor,
    )
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dropout(dropout),
            keras.layers.Dense(10),
        ]
    )
    model = compile_model(model, training)
    probe = _StopAfter(stop_after)
    original = model.fit
    first = [_EarlyStop(early_stop_at)] if early_stop_at else []
    model.fit = lambda *a, **k: original(*a, **{**k, "callbacks": [*first, *k["callbacks"], probe]})
    state = TrainingState(folder, run_id=run_id)
    if as_dataset:
        result = fit_with_best_checkpoint(
            model, training, x, validation_data=validation, state=state
        )
    else:
        result = fit_with_best_checkpoint(
            model, training, x, y, batch_size=16, validation_split=0.25, state=state
        )
    return result, probe.trained


def _killed_after(folder, epoch, **kwargs):
    with pytest.raises(KeyboardInterrupt):
        _train(folder, stop_after=epoch, **kwargs)


def _record(folder):
    return json.loads((folder / "state.json").read_text())


def _garble(path, keep=None):
    """Random bytes over ``path`` (all of it, or all but its first ``keep`` bytes)."""
    size = path.stat().st_size
    rng = np.random.default_rng(1)
    if keep is None:
        path.write_bytes(rng.bytes(size))
    else:
        with path.open("r+b") as handle:
            handle.truncate(keep)


def test_each_epoch_is_committed_with_the_size_and_sha256_of_its_files(tmp_path):
    folder = tmp_path / "state"
    _killed_after(folder, 2)
    record = _record(folder)
    assert record["epochs_done"] == 2 and len(record["history"]["loss"]) == 2
    assert record["weights"] == "epoch-0002.weights.h5"
    previous = json.loads((folder / "state.previous.json").read_text())
    assert previous["epochs_done"] == 1
    for name, entry in {**previous["files"], **record["files"]}.items():
        assert (folder / name).stat().st_size == entry["size"]
    # Nothing left half-written, and only the files the two records name are kept.
    assert not list(folder.glob(".*partial*"))
    named = set(previous["files"]) | set(record["files"])
    assert {p.name for p in folder.glob("*epoch-*")} == named


def test_a_garbled_record_falls_back_to_the_previous_epoch(tmp_path, caplog):
    folder = tmp_path / "state"
    _killed_after(folder, 2)
    _garble(folder / "state.json")
    with caplog.at_level(logging.WARNING):
        (_, _, history, _), trained = _train(folder)
    assert "state.json" in caplog.text and "Set aside" in caplog.text
    assert trained == [2, 3, 4]  # epoch 2 again: its record was lost
    assert len(history["loss"]) == EPOCHS
    # Set aside, not deleted, under the one naming scheme (durability.integrity.set_aside).
    (aside,) = folder.glob("state.json.damaged-*")
    TrainingState(folder).release()  # the run completed: the state goes, the damaged stay
    assert not folder.exists()
    assert (tmp_path / "state.damaged-files" / aside.name).is_file()


@pytest.mark.parametrize("damage", ["truncated", "garbled"])
def test_a_damaged_weight_file_falls_back_to_the_previous_epoch(tmp_path, caplog, damage):
    folder = tmp_path / "state"
    _killed_after(folder, 3)
    weights = folder / _record(folder)["weights"]
    _garble(weights, keep=100 if damage == "truncated" else None)
    with caplog.at_level(logging.WARNING):
        (_, _, history, _), trained = _train(folder)
    assert str(weights) in caplog.text
    assert trained == [3, 4]
    assert len(history["loss"]) == EPOCHS
    assert len(list(weights.parent.glob(weights.name + ".damaged-*"))) == 1


def test_no_intact_weight_file_continues_from_the_best_checkpoint(tmp_path, caplog):
    folder = tmp_path / "state"
    _killed_after(folder, 3, monitor="loss")  # the training loss improves every epoch
    for record in ("state.json", "state.previous.json"):
        _garble(folder / json.loads((folder / record).read_text())["weights"])
    best_epoch = _record(folder)["best_epoch"]
    assert best_epoch == 3
    with caplog.at_level(logging.WARNING):
        (_, _, history, _), trained = _train(folder, monitor="loss")
    assert "continues from the best checkpoint" in caplog.text
    assert trained == [4]
    assert len(history["loss"]) == EPOCHS


def test_a_damaged_best_checkpoint_that_cannot_be_rebuilt_names_the_file(tmp_path):
    folder = tmp_path / "state"
    _killed_after(folder, 3, monitor="loss")
    record = _record(folder)
    # Made a record whose best is older than its weights: the best cannot be rebuilt.
    best = folder / record["best"]
    _garble(best, keep=50)
    older = {**record, "best_epoch": 1}
    from convnets.ml.training.records import _sealed  # noqa: PLC0415

    (folder / "state.json").write_text(json.dumps(_sealed(older)))
    (folder / "state.previous.json").unlink()
    with pytest.raises(DamagedTrainingState) as error:
        _train(folder, monitor="loss")
    message = str(error.value)
    assert str(best) in message and f"mv {folder} {folder}.damaged" in message


def test_a_damaged_best_checkpoint_of_the_last_epoch_is_rebuilt_from_its_weights(tmp_path, caplog):
    folder = tmp_path / "state"
    _killed_after(folder, 3, monitor="loss")
    best = folder / _record(folder)["best"]
    _garble(best, keep=50)
    with caplog.at_level(logging.WARNING):
        (_, best_model, _, _), trained = _train(folder, monitor="loss")
    assert "Rebuilt the best checkpoint" in caplog.text
    assert trained == [4] and best_model is not None


def test_a_garbled_config_and_run_file_are_rebuilt_or_set_aside(tmp_path, caplog):
    folder = tmp_path / "state"
    _killed_after(folder, 2)
    config = (folder / "config.sha256").read_text()
    (folder / "config.sha256").write_bytes(b"\xff\xfe garbage")
    (folder / "run.json").write_bytes(b"\xff{")
    with caplog.at_level(logging.WARNING):
        _, trained = _train(folder)
    assert trained == [3, 4]  # resumed: the record holds the configuration too
    assert "config.sha256" in caplog.text and "run.json" in caplog.text
    assert (folder / "config.sha256").read_text() == config


def test_a_state_with_no_intact_record_is_set_aside_and_training_starts_again(tmp_path):
    folder = tmp_path / "state"
    _killed_after(folder, 2)
    _garble(folder / "state.json")
    _garble(folder / "state.previous.json")
    _, trained = _train(folder)
    assert trained == [1, 2, 3, 4]
    (aside,) = tmp_path.glob("state.damaged-*")  # kept for the user to look at
    assert aside.is_dir()


def test_a_damaged_final_model_is_rebuilt_without_training_again(tmp_path, caplog):
    folder = tmp_path / "state"
    _train(folder)
    assert TrainingState(folder).is_finished()
    _garble(folder / "final.keras", keep=200)
    with caplog.at_level(logging.WARNING):
        (final, _, history, _), trained = _train(folder)
    assert "final.keras" in caplog.text
    assert trained == [] and len(history["loss"]) == EPOCHS
    assert TrainingState(folder).is_finished()
    assert keras.models.load_model(folder / "final.keras").count_params() == final.count_params()


def test_a_resumed_run_logs_each_epoch_once_and_sends_what_mlflow_missed(tmp_path, monkeypatch):
    reset_mlflow()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        client = mlflow.MlflowClient()
        run = client.create_run(client.create_experiment("resume"))
        run_id = run.info.run_id
        original = mlflow.MlflowClient.log_batch
        failures = {"left": 2}

        def unreachable_at_first(self, *args, **kwargs):
            if failures["left"]:
                failures["left"] -= 1
                raise mlflow.exceptions.MlflowException("tracking store unreachable")
            return original(self, *args, **kwargs)

        monkeypatch.setattr(mlflow.MlflowClient, "log_batch", unreachable_at_first)
        _killed_after(tmp_path / "state", 3, run_id=run_id)
        # Epochs 1-2 failed to send and went with epoch 3; the same run then resumes.
        _train(tmp_path / "state", run_id=run_id)
        steps = [metric.step for metric in client.get_metric_history(run_id, "loss")]
        assert sorted(steps) == [1, 2, 3, 4]
    finally:
        reset_mlflow()


def test_a_kill_before_an_epoch_is_committed_trains_it_again_and_logs_it_once(tmp_path):
    """The kill falls between the epoch's end and its commit: its line was not logged."""
    reset_mlflow()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        client = mlflow.MlflowClient()
        run_id = client.create_run(client.create_experiment("resume")).info.run_id
        folder = tmp_path / "state"
        _killed_after(folder, 2, run_id=run_id)
        # As if the process died while epoch 3's files were written: they are on disk
        # but no record names them.
        (folder / "epoch-0003.weights.h5").write_bytes(os.urandom(64))
        (_, _, history, _), trained = _train(folder, run_id=run_id)
        assert trained == [3, 4]
        assert not list(folder.glob("epoch-0003.weights.h5.damaged*"))  # not ours to keep
        steps = [metric.step for metric in client.get_metric_history(run_id, "val_loss")]
        assert sorted(steps) == [1, 2, 3, 4]
        assert len(history["loss"]) == EPOCHS
    finally:
        reset_mlflow()


@pytest.mark.parametrize("as_dataset", [False, True], ids=["arrays", "tf.data"])
def test_a_resumed_training_computes_what_an_uninterrupted_one_does(tmp_path, as_dataset):
    """Same batches in the same order (EpochOrder) and the same dropout masks (the
    layers' random streams are in the record): the histories agree to float rounding."""
    options = {"as_dataset": as_dataset, "dropout": 0.5}
    (_, _, uninterrupted, _), _ = _train(tmp_path / "whole", **options)
    _killed_after(tmp_path / "resumed", 2, **options)
    (_, _, resumed, _), trained = _train(tmp_path / "resumed", **options)
    assert trained == [3, 4]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(resumed[key], uninterrupted[key], rtol=1e-5, err_msg=key)


def test_an_early_stopped_training_killed_before_its_final_model_trains_no_further(tmp_path):
    from convnets.ml.training.records import _sealed  # noqa: PLC0415

    folder = tmp_path / "state"
    _train(folder, early_stop_at=2)
    record = _record(folder)
    assert record["stopped_early"] and record["epochs_done"] == 2
    # As if killed while final.keras was written: the record of the last epoch only.
    (folder / "state.json").write_text(json.dumps(_sealed({**record, "final": None})))
    (folder / "final.keras").unlink()
    (_, _, history, _), trained = _train(folder)
    assert trained == [] and len(history["loss"]) == 2  # not epochs 3 and 4
    assert TrainingState(folder).is_finished()


def test_a_state_of_an_earlier_version_is_set_aside_with_its_models(tmp_path, caplog):
    folder = tmp_path / "state"
    folder.mkdir()
    for name in ("final.keras", "best.keras", "history.csv", "config.sha256"):
        (folder / name).write_text(name)  # the layout before records, training finished
    with caplog.at_level(logging.WARNING):
        _, trained = _train(folder)
    assert trained == [1, 2, 3, 4]
    assert "earlier version of the project" in caplog.text
    kept = tmp_path / "state.set-aside-format2"
    assert (kept / "final.keras").read_text() == "final.keras"  # never deleted
