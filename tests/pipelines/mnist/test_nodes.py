"""MNIST nodes on a tiny keras-format npz."""

import numpy as np
import pytest

from convnets.datasets import KerasNpzDataset
from convnets.ml.training import TrainingState
from convnets.parameters import MnistTraining, ParameterError, Serving
from convnets.pipelines.mnist import nodes
from tests.conftest import typed_parameters, write_mnist_npz


def _training(**changes) -> MnistTraining:
    return typed_parameters(MnistTraining, "mnist.training", **{"epochs": 1, **changes})


HELD_OUT = {"batch_size": 32, "validation_split": 0.2, "checkpoint_monitor": "val_loss"}


@pytest.fixture
def arrays(tmp_path):
    raw = KerasNpzDataset(filepath=str(write_mnist_npz(tmp_path / "m.npz"))).load()
    return nodes.split_arrays(raw)


def test_scale_images_adds_a_channel_and_scales_to_unit_float32():
    images = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    scaled = nodes.scale_images(images)
    assert scaled.shape == (1, 2, 2, 1) and scaled.dtype == np.float32
    np.testing.assert_allclose(scaled[0, :, :, 0], [[0.0, 1.0], [0.2, 0.4]], rtol=1e-6)


def test_split_arrays_rejects_labels_that_do_not_match_images():
    raw = {
        "x_train": np.zeros((3, 28, 28)),
        "y_train": np.zeros(2),
        "x_test": np.zeros((1, 28, 28)),
        "y_test": np.zeros(1),
    }
    with pytest.raises(ValueError, match="one label each"):
        nodes.split_arrays(raw)


def test_train_and_evaluate_both_models(arrays, tmp_path):
    x_train, y_train, x_test, y_test = arrays
    state = TrainingState(tmp_path / "state")
    model, best, history, tags = nodes.train_model(
        nodes.scale_images(x_train), y_train, _training(**HELD_OUT), state
    )
    assert model.count_params() == 104_202
    assert set(history) == {
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "epoch_time_s",
        "learning_rate",
    }
    assert "resumed_from_run_id" not in tags and tags["precision"] in ("float32", "mixed_bfloat16")
    metrics, confusion, per_class, figure = nodes.evaluate_final_model(
        model, nodes.scale_images(x_test), y_test, [str(i) for i in range(10)]
    )
    assert set(metrics) == {"final_model_test_loss", "final_model_test_accuracy"}
    assert confusion.shape == (10, 10) and confusion.to_numpy().sum() == 50
    assert per_class["support"].sum() == 50
    best_metrics, accuracy = nodes.evaluate_best_checkpoint(
        best, nodes.scale_images(x_test), y_test
    )
    assert set(best_metrics) == {"best_checkpoint_test_loss", "best_checkpoint_test_accuracy"}
    assert best_metrics["best_checkpoint_test_accuracy"]["value"] == accuracy


def test_the_serving_spec_scales_grayscale_and_hashes_the_test_split(arrays):
    _, _, x_test, y_test = arrays
    serving = typed_parameters(Serving, "serving", max_pictures_per_request=7)
    spec = nodes.describe_serving(x_test, y_test, [str(d) for d in range(10)], 40_000_000, serving)
    assert spec.config.image_size == [28, 28] and spec.config.channels == 1
    assert spec.config.input_scale == pytest.approx(1 / 255)
    again = nodes.describe_serving(x_test, y_test, [str(d) for d in range(10)], 40_000_000, serving)
    assert spec.test_split_sha256 == again.test_split_sha256
    changed = y_test.copy()
    changed[0] = (changed[0] + 1) % 10
    other = nodes.describe_serving(
        x_test, changed, [str(d) for d in range(10)], 40_000_000, serving
    )
    assert other.test_split_sha256 != spec.test_split_sha256
    assert spec.input_example.startswith(b"\x89PNG")
    assert spec.config.max_pictures_per_request == 7


def test_the_books_setting_trains_on_every_image_without_validation(arrays, tmp_path):
    x_train, y_train, _, _ = arrays
    book = _training()  # conf/base: validation_split 0, checkpoint_monitor loss
    model, best, history, _ = nodes.train_model(
        nodes.scale_images(x_train), y_train, book, TrainingState(tmp_path / "state")
    )
    assert set(history) == {"loss", "accuracy", "epoch_time_s", "learning_rate"}
    assert int(model.optimizer.iterations) == -(-len(x_train) // book.batch_size)
    assert best.count_params() == model.count_params()


def test_a_validation_monitor_without_validation_data_is_refused():
    with pytest.raises(
        ParameterError,
        match="mnist.training.validation_split: checkpoint_monitor is .val_loss. but there is no",
    ):
        _training(validation_split=0.0, checkpoint_monitor="val_loss")
