"""Resumable training: a real training process is killed, then run again."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import keras
import mlflow
import pytest

from convnets.ml.training import TrainingState
from convnets.parameters import MnistTraining
from tests.conftest import reset_mlflow, typed_parameters

TRAINER = textwrap.dedent(
    """
    import sys, time, logging
    from pathlib import Path
    import keras, numpy as np
    from convnets.ml.models import build_mnist_convnet
    from convnets.parameters import MnistTraining
    from convnets.ml.training import TrainingState, compile_model, fit_with_best_checkpoint

    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")

    class Slow(keras.callbacks.Callback):  # room for the parent to kill between epochs
        def on_epoch_end(self, epoch, logs=None):
            print(f"finished {epoch + 1} iterations={int(self.model.optimizer.iterations)}",
                  flush=True)
            time.sleep(float(sys.argv[2]))

    rng = np.random.default_rng(0)
    x = rng.random((96, 28, 28, 1), dtype="float32")
    y = rng.integers(0, 10, 96)
    training = MnistTraining.model_validate_json(sys.argv[3])
    keras.utils.set_random_seed(0)
    model = compile_model(build_mnist_convnet(), training)
    original_fit = model.fit
    model.fit = lambda *a, **k: original_fit(*a, **{**k, "callbacks": k["callbacks"] + [Slow()]})
    final, best, history, _ = fit_with_best_checkpoint(
        model, training, x, y, batch_size=32, validation_split=0.25,
        state=TrainingState(Path(sys.argv[1])),
    )
    print("DONE", len(history["loss"]), int(final.optimizer.iterations), flush=True)
    """
)


TRAINING = typed_parameters(
    MnistTraining,
    "mnist.training",
    epochs=6,
    batch_size=32,
    validation_split=0.25,
    checkpoint_monitor="val_loss",
)


def _start(script, state_dir, pause):
    return subprocess.Popen(
        [sys.executable, str(script), str(state_dir), str(pause), TRAINING.model_dump_json()],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""},
    )


@pytest.mark.processes
@pytest.mark.slow
def test_a_killed_training_run_resumes_where_it_stopped(tmp_path):
    script = tmp_path / "trainer.py"
    script.write_text(TRAINER)
    state_dir = tmp_path / "state"

    first = _start(script, state_dir, pause=3)
    deadline = time.monotonic() + 240
    for line in first.stdout:
        if line.startswith("finished 2 "):
            time.sleep(1.5)  # let BackupAndRestore finish writing epoch 2
            first.send_signal(signal.SIGKILL)
            break
        assert time.monotonic() < deadline, "the trainer never reached epoch 2"
    first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL
    assert TrainingState(state_dir).is_resumable((state_dir / "config.sha256").read_text())

    second = _start(script, state_dir, pause=0)
    output, _ = second.communicate(timeout=300)
    assert second.returncode == 0, output
    assert "Resuming training" in output and "after epoch 2 of 6" in output
    finished = [line for line in output.splitlines() if line.startswith("finished")]
    assert finished[0].startswith("finished 3 ")  # epochs 1-2 were not trained again
    # Optimizer state restored: 3 steps an epoch (72 images, batch 32), 6 epochs in all.
    assert "DONE 6 18" in output
    # Finished: the state holds both models until the run releases it (hooks).
    assert TrainingState(state_dir).is_finished()


def test_state_of_another_configuration_is_set_aside_and_comes_back(tmp_path):
    config_a, config_b = "a" * 64, "b" * 64
    state = TrainingState(tmp_path / "state")
    state.start_afresh(config_a)
    (state.folder / "state.json").write_text("a")
    assert state.is_resumable(config_a)
    assert not state.is_resumable(config_b)
    aside = tmp_path / f"state.set-aside-{config_a[:12]}"
    assert (aside / "state.json").read_text() == "a"  # kept, not deleted
    state.start_afresh(config_b)  # config-b trains two epochs, then config-a runs again
    (state.folder / "state.json").write_text("b")
    assert state.is_resumable(config_a)
    assert (state.folder / "state.json").read_text() == "a"
    assert (tmp_path / f"state.set-aside-{config_b[:12]}" / "state.json").is_file()


def test_the_run_a_state_was_started_by_is_named_on_resume(tmp_path):
    first = TrainingState(tmp_path, run_id="run-1")
    first.start_afresh("config")
    assert first.remember_mlflow_run() is None  # a fresh start records its run
    assert TrainingState(tmp_path, run_id="run-2").remember_mlflow_run() == "run-1"


def test_options_at_their_defaults_keep_an_earlier_resume_state():
    """A run started before precision/jit_compile existed resumes after they were added."""
    import keras  # noqa: PLC0415

    from convnets.ml.training.fingerprint import training_fingerprint  # noqa: PLC0415

    inputs = keras.Input((3,), name="in")
    model = keras.Model(inputs, keras.layers.Dense(1, name="out")(inputs), name="tiny")
    base = _training(precision="float32", jit_compile=False)
    before = training_fingerprint(model, base)
    without_options = base.model_dump()
    del without_options["precision"], without_options["jit_compile"]
    # The fingerprint an earlier release computed: the same dict without the options.
    assert training_fingerprint(model, _AsDumped(without_options)) == before
    assert training_fingerprint(model, _training(jit_compile=True)) != before
    assert training_fingerprint(model, _training(precision="mixed_bfloat16")) != before
    assert training_fingerprint(model, _training(epochs=4)) != before


def test_the_fingerprint_ignores_the_layer_names_keras_generates():
    """The same model built after other layers (other auto names) resumes the same state."""
    from convnets.ml.models import (  # noqa: PLC0415
        build_catdog_convnet_augmented,
        build_data_augmentation,
    )
    from convnets.ml.training.fingerprint import training_fingerprint  # noqa: PLC0415

    training = _training()
    book = {"dropout": 0.5, "rotation": 0.1, "zoom": 0.2}
    first = training_fingerprint(build_catdog_convnet_augmented((80, 80), **book), training)
    build_data_augmentation(0.1, 0.2)  # takes the next random_flip, random_zoom, ... names
    second = build_catdog_convnet_augmented((80, 80), **book)
    assert training_fingerprint(second, training) == first
    changed = build_catdog_convnet_augmented((80, 80), **{**book, "dropout": 0.3})
    assert training_fingerprint(changed, training) != first


def test_precision_policy_builds_mixed_layers_with_a_float32_output_and_restores():
    import keras  # noqa: PLC0415

    from convnets.ml.models import build_catdog_convnet  # noqa: PLC0415
    from convnets.ml.training import precision_policy  # noqa: PLC0415

    with precision_policy("mixed_bfloat16"):
        model = build_catdog_convnet((80, 80))
    convolutions = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convolutions[0].compute_dtype == "bfloat16"
    assert model.layers[-1].compute_dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"


class _AsDumped:
    """Stands in for a parameter model whose dump is ``values``."""

    def __init__(self, values: dict) -> None:
        self._values = values

    def model_dump(self) -> dict:
        return dict(self._values)


def _training(**changes):
    from convnets.parameters import Training  # noqa: PLC0415

    return typed_parameters(Training, "catdog.training", **changes)


def test_a_resumed_early_stopping_stops_where_an_uninterrupted_one_would():
    """The count of epochs without improvement is rebuilt from the saved history."""
    from convnets.ml.training.callbacks import ResumableEarlyStopping  # noqa: PLC0415

    val_loss = [1.0, 0.8, 0.85, 0.9, 0.7, 0.75, 0.8, 0.95, 0.6]

    def stopped_at(callback, epochs):
        callback.set_model(type("Model", (), {"stop_training": False})())
        callback.on_train_begin()
        for epoch in epochs:
            callback.on_epoch_end(epoch, {"val_loss": val_loss[epoch]})
            if callback.model.stop_training:
                return epoch
        return None

    uninterrupted = stopped_at(ResumableEarlyStopping([], monitor="val_loss", patience=3), range(9))
    assert uninterrupted == 7  # three epochs after the best, 0.7 at epoch 4
    for killed_after in range(1, 7):
        resumed = ResumableEarlyStopping(val_loss[:killed_after], monitor="val_loss", patience=3)
        assert stopped_at(resumed, range(killed_after, 9)) == uninterrupted, killed_after
        # Keras' own callback, resumed the same way, would stop later or not at all.
    plain = keras.callbacks.EarlyStopping(monitor="val_loss", patience=3)
    assert stopped_at(plain, range(6, 9)) != uninterrupted


def test_a_warmup_cosine_schedule_rises_then_decays_to_zero():
    from convnets.ml.training.compile import build_optimizer  # noqa: PLC0415
    from convnets.parameters import Optimizer  # noqa: PLC0415

    optimizer = build_optimizer(
        Optimizer(
            name="adamw",
            learning_rate=0.002,
            weight_decay=0.0001,
            schedule="cosine",
            warmup_epochs=1,
        ),
        steps_per_epoch=10,
        epochs=5,
    )
    rate = optimizer._learning_rate  # noqa: SLF001 - the schedule object itself
    values = [float(rate(step)) for step in (0, 5, 10, 30, 50)]
    assert values[0] == pytest.approx(0.0)
    assert values[1] == pytest.approx(0.001)
    assert values[2] == pytest.approx(0.002)
    assert 0 < values[3] < 0.002
    assert values[4] == pytest.approx(0.0, abs=1e-9)
    assert optimizer.weight_decay == pytest.approx(0.0001)


def test_epochs_without_validation_are_kept_as_nan_and_never_checkpointed(tmp_path):
    import numpy as np  # noqa: PLC0415

    from convnets.ml.models import build_mnist_convnet  # noqa: PLC0415
    from convnets.ml.training import compile_model, fit_with_best_checkpoint  # noqa: PLC0415

    rng = np.random.default_rng(0)
    x, y = rng.random((64, 28, 28, 1), dtype="float32"), rng.integers(0, 10, 64)
    training = typed_parameters(
        MnistTraining,
        "mnist.training",
        epochs=4,
        validation_freq=2,
        validation_split=0.25,
        checkpoint_monitor="val_loss",
    )
    model = compile_model(build_mnist_convnet(), training)
    _, best, history, _ = fit_with_best_checkpoint(
        model, training, x, y, batch_size=16, validation_split=0.25, state=TrainingState(tmp_path)
    )
    assert [np.isnan(value) for value in history["val_loss"]] == [True, False, True, False]
    assert len(history["epoch_time_s"]) == 4
    # The best checkpoint is the better of the two validated epochs (Keras' own
    # ModelCheckpoint would have saved epoch 3, never validated, over epoch 2).
    validated = [value for value in history["val_loss"] if not np.isnan(value)]
    best_loss = best.evaluate(x[48:], y[48:], verbose=0)[0]
    assert best_loss == pytest.approx(min(validated), rel=1e-4)


def _tiny_mnist(tmp_path, epochs):
    import numpy as np  # noqa: PLC0415

    from convnets.ml.models import build_mnist_convnet  # noqa: PLC0415
    from convnets.ml.training import compile_model  # noqa: PLC0415

    rng = np.random.default_rng(0)
    x, y = rng.random((64, 28, 28, 1), dtype="float32"), rng.integers(0, 10, 64)
    training = typed_parameters(
        MnistTraining,
        "mnist.training",
        epochs=epochs,
        validation_split=0.25,
        checkpoint_monitor="val_loss",
    )
    return compile_model(build_mnist_convnet(), training), training, x, y


class _Probe(keras.callbacks.Callback):
    """Reads the MLflow run while training goes on, after each epoch's own callbacks."""

    def __init__(self, run_id, stop_after=None):
        super().__init__()
        self.run_id, self.stop_after, self.seen = run_id, stop_after, []

    def on_epoch_end(self, epoch, logs=None):
        client = mlflow.MlflowClient()
        steps = [m.step for m in client.get_metric_history(self.run_id, "val_accuracy")]
        self.seen.append((client.get_run(self.run_id).info.status, steps))
        if self.stop_after == epoch + 1:
            raise KeyboardInterrupt("killed")  # as a crash: no cleanup, the state stays


def _fit_with_probe(model, training, x, y, *, state, probe):
    from convnets.ml.training import fit_with_best_checkpoint  # noqa: PLC0415

    original = model.fit
    model.fit = lambda *a, **k: original(*a, **{**k, "callbacks": [*k["callbacks"], probe]})
    return fit_with_best_checkpoint(
        model, training, x, y, batch_size=16, validation_split=0.25, state=state
    )


def test_metrics_reach_mlflow_as_each_epoch_ends_and_a_resumed_run_backfills(tmp_path):
    reset_mlflow()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        with mlflow.start_run() as first:
            model, training, x, y = _tiny_mnist(tmp_path, epochs=4)
            probe = _Probe(first.info.run_id, stop_after=2)
            state = TrainingState(tmp_path / "state", run_id=first.info.run_id)
            with pytest.raises(KeyboardInterrupt):
                _fit_with_probe(model, training, x, y, state=state, probe=probe)
        assert probe.seen == [("RUNNING", [1]), ("RUNNING", [1, 2])]

        with mlflow.start_run() as second:
            model, training, x, y = _tiny_mnist(tmp_path, epochs=4)
            probe = _Probe(second.info.run_id)
            state = TrainingState(tmp_path / "state", run_id=second.info.run_id)
            *_, tags = _fit_with_probe(model, training, x, y, state=state, probe=probe)
        assert {key: tags[key] for key in ("resumed_from_run_id", "mlflow.runName")} == {
            "resumed_from_run_id": first.info.run_id,
            "mlflow.runName": f"{second.info.run_name} (resumed after epoch 2)",
        }
        assert tags["precision"] in ("float32", "mixed_bfloat16")
        # Epochs 1-2 backfilled from the saved history before epoch 3 ends; each once.
        assert probe.seen == [("RUNNING", [1, 2, 3]), ("RUNNING", [1, 2, 3, 4])]
        client = mlflow.MlflowClient()
        steps = [m.step for m in client.get_metric_history(second.info.run_id, "loss")]
        assert steps == [1, 2, 3, 4]
        assert len(client.get_metric_history(second.info.run_id, "learning_rate")) == 4
    finally:
        reset_mlflow()


def test_progress_is_logged_about_every_tenth_of_an_epoch_when_not_on_a_terminal(caplog):
    import logging  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    from convnets.ml.training.monitoring import TrainingProgress  # noqa: PLC0415

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.zeros((40, 3), dtype="float32")
    with caplog.at_level(logging.INFO, logger="convnets.ml.training"):
        model.fit(
            x,
            x[:, 0],
            batch_size=2,
            epochs=2,
            verbose=0,
            callbacks=[TrainingProgress(2, terminal=False)],
        )
    lines = [r.getMessage() for r in caplog.records if "steps)" in r.getMessage()]
    assert len(lines) == 20  # 20 steps an epoch: one line every 2 steps, 2 epochs
    assert lines[0].startswith("Epoch 1/2: 10% (2/20 steps), about")
    assert lines[-1].startswith("Epoch 2/2: 100% (20/20 steps), about 0 min left")


def test_the_terminal_progress_bar_runs_through_a_training():
    import numpy as np  # noqa: PLC0415

    from convnets.ml.training.monitoring import TrainingProgress  # noqa: PLC0415

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    progress = TrainingProgress(1, terminal=True)
    progress.close = lambda: None  # look at the bar before it is stopped
    x = np.zeros((8, 3), dtype="float32")
    model.fit(x, x[:, 0], batch_size=2, epochs=1, verbose=0, callbacks=[progress])
    task = progress._bar.tasks[0]  # noqa: SLF001
    assert (task.completed, task.total, task.description) == (4, 4, "epoch 1/1")
    TrainingProgress.close(progress)
    assert progress._bar is None  # noqa: SLF001


TWO_DEVICES = """
import json, logging, sys, tempfile
from pathlib import Path

logging.basicConfig(level=logging.INFO)

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)
import numpy as np

from convnets.datasets import ImageArrayDataset, ImageFolderDataset
from convnets.parameters import Architecture, CatsVsDogsData, ImageInput, MnistTraining, Training
from convnets.pipelines.image_classifier import nodes as catdog
from convnets.pipelines.mnist import nodes as mnist
from convnets.ml.training import TrainingState
from tests.conftest import jpeg_bytes, typed_parameters, write_mnist_npz

tmp = Path(tempfile.mkdtemp())
devices = {"devices": ["/cpu:0", "/cpu:1"]}
losses = {}
raw = np.load(write_mnist_npz(tmp / "mnist.npz"))
x, y = mnist.scale_images(raw["x_train"]), raw["y_train"]
for distribution in ("none", "mirrored"):
    training = typed_parameters(MnistTraining, "mnist.training", epochs=1, batch_size=20,
                                distribution=distribution, **devices)
    _, _, history, _ = mnist.train_model(x, y, training, TrainingState(tmp / f"m-{distribution}"))
    losses[f"mnist-{distribution}"] = history["loss"][0]

files = {f"{subset}/{label}/{label}.{index}.jpg": jpeg_bytes(index + 100 * number, size=40)
         for subset, count in (("train", 16), ("validation", 4), ("test", 4))
         for number, label in enumerate(("cat", "dog")) for index in range(count)}
ImageFolderDataset(path=str(tmp / "split")).save(files)
data = typed_parameters(CatsVsDogsData, "cats_vs_dogs")
image_input = typed_parameters(ImageInput, "catdog_baseline.input", image_size=[80, 80],
                               batch_size=8)
cache = ImageArrayDataset(path=str(tmp / "decoded"))
cache.save(catdog.decode_images(ImageFolderDataset(path=str(tmp / "split")).load(), data,
                                image_input))
architecture = typed_parameters(Architecture, "catdog_baseline.architecture")
subsets = cache.load().subsets((80, 80))
for distribution in ("none", "mirrored"):
    # Unshuffled, so both runs see the same batches: tf.distribute rewrites the input
    # pipeline, and a shuffled training set then comes in another order.
    train = catdog._batches(subsets["train"], 8, seed=None)
    validation = catdog._batches(subsets["validation"], 8, seed=None)
    training = typed_parameters(Training, "catdog_baseline.training", epochs=1,
                                distribution=distribution, **devices)
    _, best, history, _ = catdog.train_model(train, validation, architecture, training,
                                             TrainingState(tmp / f"c-{distribution}"))
    losses[f"catdog_baseline-{distribution}"] = history["loss"][0]
print(json.dumps(losses))
"""


@pytest.mark.processes
@pytest.mark.slow
def test_mirrored_training_on_two_devices_matches_one_device():
    done = subprocess.run(
        [sys.executable, "-c", TWO_DEVICES],
        check=False,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[3],  # the project root
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    losses = json.loads(done.stdout.strip().splitlines()[-1])
    assert "2 replica(s)" in done.stderr + done.stdout
    for model in ("mnist", "catdog_baseline"):
        single, mirrored = losses[f"{model}-none"], losses[f"{model}-mirrored"]
        assert mirrored == pytest.approx(single, rel=0.01), (model, single, mirrored)


def test_the_callbacks_run_in_the_order_their_contracts_need():
    """The disk check first; checkpoint and early stopping on the epoch's own logs; the
    logger's additions before the commit keeps them; MLflow only after the commit."""
    import keras  # noqa: PLC0415

    from convnets.ml.training import callbacks, monitoring  # noqa: PLC0415
    from convnets.ml.training.fit import CALLBACK_ORDER  # noqa: PLC0415

    assert CALLBACK_ORDER == (
        callbacks.DiskSpaceGuard,
        keras.callbacks.SwapEMAWeights,
        callbacks.ValidatedCheckpoint,
        callbacks.ResumableEarlyStopping,
        monitoring.TrainingProgress,
        callbacks.EpochLogger,
        callbacks.EpochCommit,
        monitoring.MlflowEpochMetrics,
    )


def test_the_callbacks_given_to_fit_follow_the_order(tmp_path, monkeypatch):
    from convnets.ml.training import fit  # noqa: PLC0415

    given = []
    monkeypatch.setattr(
        fit.keras.Model, "fit", lambda self, *a, **kw: given.extend(kw["callbacks"])
    )
    monkeypatch.setattr(fit.MlflowEpochMetrics, "__init__", lambda self, *a: None)
    import keras  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    from convnets.ml.training import compile_model  # noqa: PLC0415

    averaged = {"name": "adamw", "learning_rate": 0.01, "weight_decay": 0.0}
    averaged |= {"schedule": "constant", "warmup_epochs": 0.0, "use_ema": True}
    training = _training(
        early_stopping_patience=2, checkpoint_monitor="val_loss", optimizer=averaged
    )
    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(inputs))
    compile_model(model, training)
    rng = np.random.default_rng(0)
    x, y = rng.random((16, 8), dtype="float32"), rng.integers(0, 2, 16)
    state = TrainingState(tmp_path, run_id="run")
    with pytest.raises(RuntimeError, match="No epoch"):  # the stand-in fit trained nothing
        fit.fit_with_best_checkpoint(
            model, training, x, y, batch_size=8, validation_split=0.25, state=state
        )
    assert [type(callback) for callback in given] == list(fit.CALLBACK_ORDER)


def test_with_use_ema_the_checkpoint_holds_the_average_and_training_goes_on_from_its_weights(
    tmp_path,
):
    """The validation and the best checkpoint see the optimizer's moving average; the
    model goes on training (and its resume state is saved) with its own weights."""
    import keras  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    from convnets.ml.training.callbacks import ValidatedCheckpoint  # noqa: PLC0415

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(inputs))
    model.compile(keras.optimizers.SGD(0.5, use_ema=True, ema_momentum=0.9), "binary_crossentropy")
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 4), dtype="float32"), rng.integers(0, 2, 64)
    seen = {}

    class Record(keras.callbacks.Callback):
        def on_test_begin(self, logs=None):
            seen["validated"] = model.get_weights()[0].copy()

        def on_epoch_end(self, epoch, logs=None):
            seen["trained"] = model.get_weights()[0].copy()
            average = model.optimizer._model_variables_moving_average[0]  # noqa: SLF001
            seen["average"] = keras.ops.convert_to_numpy(average).copy()

    checkpoint = ValidatedCheckpoint(str(tmp_path / "best.keras"), monitor="val_loss")
    callbacks = [keras.callbacks.SwapEMAWeights(), checkpoint, Record()]
    model.fit(x, y, validation_data=(x, y), epochs=1, batch_size=8, callbacks=callbacks, verbose=0)
    assert not np.allclose(seen["trained"], seen["average"])  # the average lags behind
    np.testing.assert_allclose(seen["validated"], seen["average"], rtol=1e-6)
    saved = keras.models.load_model(tmp_path / "best.keras").get_weights()[0]
    np.testing.assert_allclose(saved, seen["average"], rtol=1e-6)
