"""MNIST nodes on a tiny keras-format npz."""

import numpy as np
import pytest

from convnets.datasets import KerasNpzDataset
from convnets.pipelines.mnist import nodes
from tests.conftest import write_mnist_npz

TRAINING = {
    "num_classes": 10,
    "optimizer": "rmsprop",
    "loss": "sparse_categorical_crossentropy",
    "epochs": 1,
    "batch_size": 32,
    "validation_split": 0.2,
    "seed": 0,
}


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


def test_train_and_evaluate(arrays):
    x_train, y_train, x_test, y_test = arrays
    model, best, history = nodes.train_model(nodes.scale_images(x_train), y_train, TRAINING)
    assert model.count_params() == 104_202
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    metrics, confusion, per_class, figure = nodes.evaluate_model(
        model, nodes.scale_images(x_test), y_test, [str(i) for i in range(10)]
    )
    assert set(metrics) == {"test_loss", "test_accuracy"}
    assert confusion.shape == (10, 10) and confusion.to_numpy().sum() == 50
    assert per_class["support"].sum() == 50


@pytest.mark.parametrize("key, value", [("epochs", 0), ("batch_size", -1), ("epochs", 1.5)])
def test_bad_epochs_or_batch_size_fail_before_training(arrays, key, value):
    x_train, y_train, _, _ = arrays
    with pytest.raises(ValueError, match=f"training.{key} must be a positive integer"):
        nodes.train_model(nodes.scale_images(x_train), y_train, {**TRAINING, key: value})


def test_the_books_setting_trains_on_every_image_without_validation(arrays):
    x_train, y_train, _, _ = arrays
    book = {**TRAINING, "validation_split": 0.0, "checkpoint_monitor": "loss"}
    model, best, history = nodes.train_model(nodes.scale_images(x_train), y_train, book)
    assert set(history) == {"loss", "accuracy"}
    assert int(model.optimizer.iterations) == -(-len(x_train) // book["batch_size"])
    assert best.count_params() == model.count_params()


def test_a_validation_monitor_without_validation_data_fails_before_training(arrays):
    x_train, y_train, _, _ = arrays
    no_validation = {**TRAINING, "validation_split": 0.0, "checkpoint_monitor": "val_loss"}
    with pytest.raises(ValueError, match="no validation data: set training.validation_split"):
        nodes.train_model(nodes.scale_images(x_train), y_train, no_validation)
