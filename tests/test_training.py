"""Resumable training: a real training process is killed, then run again."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from convnets.parameters import MnistTraining
from convnets.training import TrainingState
from tests.conftest import typed_parameters

TRAINER = textwrap.dedent(
    """
    import sys, time, logging
    from pathlib import Path
    import keras, numpy as np
    from convnets.models import build_mnist_convnet
    from convnets.parameters import MnistTraining
    from convnets.training import TrainingState, compile_model, fit_with_best_checkpoint

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
    assert not state_dir.exists()  # a finished run leaves no resume state behind


def test_state_of_another_configuration_is_not_resumed(tmp_path):
    state = TrainingState(tmp_path / "state")
    state.start_afresh("config-a")
    (state.backup).mkdir()
    (state.backup / "latest.weights.h5").write_bytes(b"x")
    assert state.is_resumable("config-a")
    assert not state.is_resumable("config-b")


def test_history_keeps_the_last_row_of_an_epoch_written_twice(tmp_path):
    state = TrainingState(tmp_path)
    state.history.write_text("epoch,loss,val_loss\n0,0.9,1.0\n1,0.8,0.9\n1,0.7,0.95\n")
    assert state.read_history() == {"loss": [0.9, 0.7], "val_loss": [1.0, 0.95]}


def test_the_run_a_state_was_started_by_is_named_on_resume(tmp_path):
    first = TrainingState(tmp_path, run_id="run-1")
    first.start_afresh("config")
    assert first.remember_mlflow_run() is None  # a fresh start records its run
    assert TrainingState(tmp_path, run_id="run-2").remember_mlflow_run() == "run-1"


def test_options_at_their_defaults_keep_an_earlier_resume_state():
    """A run started before precision/jit_compile existed resumes after they were added."""
    import keras  # noqa: PLC0415

    from convnets.training import training_fingerprint  # noqa: PLC0415

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
    from convnets.models import (  # noqa: PLC0415
        build_catdog_convnet_augmented,
        build_data_augmentation,
    )
    from convnets.training import training_fingerprint  # noqa: PLC0415

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

    from convnets.models import build_catdog_convnet  # noqa: PLC0415
    from convnets.training import precision_policy  # noqa: PLC0415

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
