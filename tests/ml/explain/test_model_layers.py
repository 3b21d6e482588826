"""The layers the explanations read, and the refusals that list what a model has."""

import keras
import pytest
from keras import layers

from convnets.errors import UserError
from convnets.ml.explain import (
    NotExplainable,
    convolution_names,
    feature_layers,
    find_layer,
    spread_convolutions,
)
from convnets.ml.models import (
    build_catdog_convnet_augmented,
    build_catdog_convnet_fast,
    build_catdog_mini_xception,
    with_flip_averaging,
)


def dense_only() -> keras.Model:
    inputs = keras.Input((8, 8, 3))
    x = layers.Flatten(name="flat")(inputs)
    return keras.Model(inputs, layers.Dense(1, name="out")(x), name="dense_only")


def test_a_model_without_a_convolution_is_refused_with_its_layer_names():
    with pytest.raises(NotExplainable, match="no convolution layer") as error:
        find_layer(dense_only(), None)
    assert "flat, out" in str(error.value)
    assert isinstance(error.value, UserError)  # the CLI prints one message


def test_an_unknown_layer_name_is_refused_with_the_layer_names():
    model = build_catdog_convnet_augmented((80, 80), dropout=0.5, rotation=0.1, zoom=0.2)
    with pytest.raises(NotExplainable, match="no layer named 'conv9'") as error:
        find_layer(model, "conv9")
    assert "data_augmentation/random_flip" in str(error.value)
    assert "--params=explain.layer=" in str(error.value)


def test_a_layer_without_a_4d_output_is_refused():
    model = build_catdog_convnet_augmented((80, 80), 0.5, 0.1, 0.2)
    flatten = next(layer.name for layer in model.layers if isinstance(layer, layers.Flatten))
    with pytest.raises(NotExplainable, match="no 4-D output"):
        find_layer(model, flatten)


def test_the_last_feature_map_is_found_whatever_the_model():
    fast = build_catdog_convnet_fast(
        (32, 32),
        widths=(8, 16),
        block="plain",
        convolution="separable",
        dropout=0.1,
        rotation=0.1,
        zoom=0.1,
    )
    xception = build_catdog_mini_xception(
        (32, 32), widths=(8, 16), dropout=0.1, rotation=0.1, zoom=0.1
    )
    book = build_catdog_convnet_augmented((80, 80), 0.5, 0.1, 0.2)
    for model in (fast, xception, with_flip_averaging(fast), book):
        holder, layer = find_layer(model, None)
        assert holder.input_shape == model.input_shape
        # The map the classifier pools: the layer right before the global pooling.
        following = holder.layers[holder.layers.index(layer) + 1]
        assert isinstance(following, layers.GlobalAveragePooling2D | layers.Flatten)
    # The book's convnet: its last convolution; a plain block: the ReLU after it; a
    # residual model: the last block's sum, not the 1x1 shortcut that comes last.
    assert find_layer(book, None)[1].name == convolution_names(book)[-1]
    assert isinstance(find_layer(fast, None)[1], layers.Activation)
    assert isinstance(find_layer(xception, None)[1], layers.Add)
    assert find_layer(with_flip_averaging(fast), None)[0] is fast


def test_the_layers_drawn_are_convolutions_and_poolings_first_middle_last():
    model = build_catdog_convnet_augmented((80, 80), dropout=0.5, rotation=0.1, zoom=0.2)
    _, chosen = feature_layers(model)
    assert len(chosen) == 9  # five convolutions, four poolings
    names = convolution_names(model)
    assert spread_convolutions(model) == [names[0], names[2], names[4]]
