"""Saving helpers: the optimizer's moving average swapped in and out (use_ema)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from convnets.ml.training.saving import averaged_weights, averaging_optimizer


def _trained(optimizer: keras.optimizers.Optimizer) -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(inputs))
    model.compile(optimizer, "binary_crossentropy")
    rng = np.random.default_rng(0)
    model.fit(rng.random((32, 4)), rng.integers(0, 2, 32), batch_size=8, epochs=1, verbose=0)
    return model


@pytest.mark.parametrize("loss_scaled", [False, True], ids=["plain", "loss-scaled"])
def test_the_average_is_in_the_model_inside_and_the_trained_weights_after(loss_scaled):
    optimizer = keras.optimizers.SGD(0.5, use_ema=True, ema_momentum=0.9)
    if loss_scaled:  # what mixed_float16 wraps the optimizer in
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model = _trained(optimizer)
    # fit's end put the average in the model; train one more step for weights of its own
    model.train_on_batch(np.ones((8, 4)), np.ones(8))
    inner = getattr(model.optimizer, "inner_optimizer", model.optimizer)
    average = keras.ops.convert_to_numpy(inner._model_variables_moving_average[0])  # noqa: SLF001
    trained = model.get_weights()[0].copy()
    assert averaging_optimizer(model) is model.optimizer and not np.allclose(trained, average)
    with averaged_weights(model):
        np.testing.assert_allclose(model.get_weights()[0], average, rtol=1e-6)
    np.testing.assert_array_equal(model.get_weights()[0], trained)


def test_without_use_ema_nothing_changes():
    model = _trained(keras.optimizers.SGD(0.5))
    before = model.get_weights()[0].copy()
    assert averaging_optimizer(model) is None
    with averaged_weights(model):
        np.testing.assert_array_equal(model.get_weights()[0], before)
