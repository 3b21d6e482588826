"""Grad-CAM against cases whose answer is known; activations, filters and overlays."""

import keras
import numpy as np
import pytest
from keras import layers

from convnets.ml.explain import (
    filter_patterns,
    grad_cam,
    intermediate_activations,
    overlay,
    upsampled,
)
from convnets.ml.models import build_catdog_convnet, with_flip_averaging

SIZE = 16


def left_half_model() -> keras.Model:
    """Decides on the left half only: the right half is cut off and padded back with
    zeros (a mask without a Lambda) before a fixed convolution."""
    inputs = keras.Input((SIZE, SIZE, 3))
    x = layers.Cropping2D(((0, 0), (0, SIZE // 2)))(inputs)
    x = layers.ZeroPadding2D(((0, 0), (0, SIZE // 2)))(x)
    x = layers.Conv2D(4, 3, padding="same", activation="relu", use_bias=False, name="conv")(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs, name="left_half")
    conv = model.get_layer("conv")
    conv.set_weights([(np.abs(conv.get_weights()[0]) + 0.1) / 255])  # every channel sees light
    dense = model.get_layer(model.layers[-1].name)
    dense.set_weights([np.ones((4, 1)) / 4, np.zeros(1)])  # far from saturation
    return model


def red_only_model() -> keras.Model:
    """Two channels, red and green; the decision reads the red one only. A picture red on
    the left and green on the right activates both halves, but only red counts."""
    inputs = keras.Input((SIZE, SIZE, 3))
    x = layers.Conv2D(2, 1, use_bias=False, activation="relu", name="colours")(inputs)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(1, activation="sigmoid", name="decision")(x)
    model = keras.Model(inputs, outputs, name="red_only")
    kernel = np.zeros((1, 1, 3, 2), dtype="float32")
    kernel[0, 0, 0, 0] = kernel[0, 0, 1, 1] = 1.0 / 255
    model.get_layer("colours").set_weights([kernel])
    model.get_layer("decision").set_weights([np.array([[1.0], [0.0]]), np.zeros(1)])
    return model


def _mass_in_left_half(heatmaps: np.ndarray) -> np.ndarray:
    width = heatmaps.shape[2]
    return heatmaps[:, :, : width // 2].sum(axis=(1, 2)) / heatmaps.sum(axis=(1, 2))


def test_grad_cam_puts_the_heatmap_where_the_decision_is_made():
    rng = np.random.default_rng(0)
    pictures = rng.integers(0, 255, (3, SIZE, SIZE, 3)).astype("float32")
    pictures[:, :, SIZE // 2 :] = 255  # brighter on the side the model ignores
    heatmaps = grad_cam(left_half_model(), pictures)
    assert heatmaps.shape == (3, SIZE, SIZE)
    assert heatmaps.min() >= 0 and np.allclose(heatmaps.max(axis=(1, 2)), 1)
    # The convolution's kernel reaches one column over the cut.
    assert (_mass_in_left_half(heatmaps) > 0.9).all()


def _red_left_green_right() -> np.ndarray:
    picture = np.zeros((1, SIZE, SIZE, 3), dtype="float32")
    picture[:, :, : SIZE // 2, 0] = 200
    picture[:, :, SIZE // 2 :, 1] = 255  # more green than red: activations alone would say right
    return picture


def test_grad_cam_weighs_the_channels_by_their_gradient():
    heatmaps = grad_cam(red_only_model(), _red_left_green_right(), layer_name="colours")
    assert _mass_in_left_half(heatmaps)[0] == pytest.approx(1.0)


def test_grad_cam_finds_the_convolution_inside_a_flip_averaged_model():
    picture = _red_left_green_right()
    wrapped = with_flip_averaging(red_only_model())
    assert np.allclose(grad_cam(wrapped, picture), grad_cam(red_only_model(), picture))


def test_a_heatmap_of_a_picture_nothing_speaks_for_is_all_zero():
    model = red_only_model()
    model.get_layer("decision").set_weights([np.array([[-1.0], [0.0]]), np.zeros(1)])
    # Dark: p = 0.5 exactly, class "positive" not reached, the other class's score
    # falls with red, which the picture has none of.
    heatmaps = grad_cam(model, np.zeros((1, SIZE, SIZE, 3), dtype="float32"))
    assert np.all(heatmaps == 0)


def test_intermediate_activations_cover_every_convolution_and_pooling_layer():
    model = build_catdog_convnet((80, 80))
    activations = intermediate_activations(model, np.zeros((80, 80, 3), dtype="uint8"))
    kinds = [type(model.get_layer(name)).__name__ for name in activations]
    assert kinds == ["Conv2D", "MaxPooling2D"] * 4 + ["Conv2D"]
    assert next(iter(activations.values())).shape == (78, 78, 32)


def test_filter_patterns_climb_towards_what_the_filter_sees():
    model = red_only_model()  # filter 0 sees red, filter 1 green
    start = filter_patterns(model, "colours", [0, 1], steps=0, learning_rate=1.0)
    climbed = filter_patterns(model, "colours", [0, 1], steps=5, learning_rate=1.0)
    assert climbed.shape == (2, 12, 12, 3) and climbed.dtype == np.uint8  # edges cropped
    assert not np.array_equal(start, climbed)
    red, green = climbed[0].mean(axis=(0, 1)), climbed[1].mean(axis=(0, 1))
    assert red[0] > red[1] and green[1] > green[0]
    with pytest.raises(ValueError, match="2 filters"):
        filter_patterns(model, "colours", [2], steps=1, learning_rate=1.0)


def test_overlay_keeps_the_picture_size_and_colours_the_hot_part():
    picture = np.full((40, 30, 3), 128, dtype="uint8")
    heatmap = np.zeros((4, 3))
    heatmap[0, 0] = 1.0
    drawn = overlay(picture, heatmap)
    assert drawn.shape == (40, 30, 3) and drawn.dtype == np.uint8
    assert not np.array_equal(drawn[0, 0], drawn[-1, -1])  # hot corner vs cold corner
    assert upsampled(heatmap, (40, 30)).shape == (40, 30)


def test_grad_cam_reads_a_mixed_precision_model():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = build_catdog_convnet((80, 80))
    finally:
        keras.config.set_dtype_policy(previous)
    rng = np.random.default_rng(1)
    heatmaps = grad_cam(model, rng.integers(0, 255, (2, 80, 80, 3)).astype("float32"))
    assert heatmaps.shape == (2, 1, 1) and heatmaps.dtype == np.float32


def test_mnist_models_have_activations_filters_and_a_heatmap_of_the_predicted_digit():
    from convnets.ml.models import build_mnist_convnet  # noqa: PLC0415

    model = build_mnist_convnet()
    digits = np.random.default_rng(2).random((2, 28, 28, 1)).astype("float32")
    assert len(intermediate_activations(model, digits[0])) == 5  # three convolutions, two poolings
    patterns = filter_patterns(
        model, model.layers[1].name, [0], steps=2, learning_rate=1.0, pixel_scale=1.0
    )  # the MNIST model reads [0, 1]
    assert patterns.shape == (1, 22, 22, 1)  # an eighth cropped each side
    heatmaps = grad_cam(model, digits)
    assert heatmaps.shape == (2, 3, 3) and 0 <= heatmaps.min() and heatmaps.max() <= 1
