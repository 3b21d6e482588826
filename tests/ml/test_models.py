"""The model builders match the book's listings, checked by parameter counts."""

import keras
import numpy as np
import pytest

from convnets.ml.layers import HorizontalFlip
from convnets.ml.models import (
    build_catdog_convnet,
    build_catdog_convnet_augmented,
    build_catdog_convnet_fast,
    build_catdog_model,
    build_mnist_convnet,
    with_flip_averaging,
)
from convnets.parameters import Architecture
from tests.conftest import typed_parameters


def test_mnist_convnet_has_the_books_104202_parameters():
    model = build_mnist_convnet()
    assert [layer.count_params() for layer in model.layers if layer.count_params()] == [
        320,
        18_496,
        73_856,
        11_530,
    ]
    assert model.count_params() == 104_202


@pytest.mark.parametrize("key", ["catdog", "catdog_baseline"])
def test_catdog_convnets_have_the_books_991041_parameters(key):
    # Listing 8.7's summary: 991,041 parameters at 180x180; augmentation and dropout add none.
    architecture = typed_parameters(Architecture, f"{key}.architecture")
    assert build_catdog_model((180, 180), architecture.root).count_params() == 991_041


def test_augmented_model_has_augmentation_and_dropout_and_baseline_has_neither():
    book = {"dropout": 0.5, "rotation": 0.1, "zoom": 0.2}
    augmented = {
        layer.__class__.__name__
        for layer in build_catdog_convnet_augmented((180, 180), **book).layers
    }
    baseline = {layer.__class__.__name__ for layer in build_catdog_convnet((180, 180)).layers}
    assert {"Sequential", "Dropout"} <= augmented
    assert not {"Sequential", "Dropout"} & baseline


FAST = {"dropout": 0.3, "rotation": 0.1, "zoom": 0.2}


@pytest.mark.parametrize(
    "block, widths, convolution, parameters",
    [
        # plain + standard is listing 8.16's convnet with batch normalisation and a
        # global-average-pooling head: the book's 991,041 less Flatten's dense weights.
        ("plain", (32, 64, 128, 256, 256), "standard", 980_961),
        ("plain", (32, 64, 128, 256, 256), "separable", 116_929),
        ("residual", (32, 32, 64, 128, 256), "standard", 1_229_249),
        ("residual", (32, 32, 64, 128, 256), "separable", 187_297),
    ],
)
def test_fast_convnet_variants(block, widths, convolution, parameters):
    model = build_catdog_convnet_fast(
        (128, 128), widths=widths, block=block, convolution=convolution, **FAST
    )
    assert model.count_params() == parameters
    assert model.output_shape == (None, 1)
    names = {layer.__class__.__name__ for layer in model.layers}
    assert {"BatchNormalization", "GlobalAveragePooling2D", "Dropout"} <= names
    assert ("SeparableConv2D" in names) == (convolution == "separable")
    assert ("Add" in names) == (block == "residual")


def test_the_fast_recipe_in_conf_builds():
    architecture = typed_parameters(Architecture, "catdog_fast.architecture")
    model = build_catdog_model((128, 128), architecture.root)
    assert model.name == "catdog_convnet_fast" and model.output_shape == (None, 1)


def test_mini_xception_is_the_notebooks_section_9_3_5_model():
    architecture = typed_parameters(Architecture, "catdog_xception.architecture")
    model = build_catdog_model((180, 180), architecture.root)
    assert model.name == "catdog_mini_xception" and model.output_shape == (None, 1)
    # The companion notebook's model: a 5x5 convolution, five residual blocks of two
    # separable convolutions (with biases) and a strided 1x1 shortcut, 724,865 in all.
    assert model.count_params() == 724_865
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("SeparableConv2D") == 10 and kinds.count("BatchNormalization") == 10
    assert kinds.count("Add") == 5 and "GlobalAveragePooling2D" in kinds
    assert model.get_layer("data_augmentation") is not None
    (dropout,) = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert dropout.rate == 0.5
    shortcuts = [
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.Conv2D) and layer.kernel_size == (1, 1)
    ]
    assert [layer.filters for layer in shortcuts] == [32, 64, 128, 256, 512]
    assert all(layer.strides == (2, 2) for layer in shortcuts)


def _exchange_flip_averaging(model: keras.Model) -> keras.Model:
    """Flip averaging as models saved before ``HorizontalFlip`` made it: the width axis
    times a fixed exchange matrix (ones on the anti-diagonal), built-in layers only."""
    height, width = model.input_shape[1:3]
    exchange = keras.layers.Dense(width, use_bias=False, trainable=False, name="exchange")
    flip = keras.Sequential(
        [
            keras.Input(shape=(height, width, 3)),
            keras.layers.Permute((1, 3, 2)),
            exchange,
            keras.layers.Permute((1, 3, 2)),
        ],
        name="horizontal_flip",
    )
    exchange.set_weights([np.fliplr(np.eye(width, dtype="float32"))])
    inputs = keras.Input(shape=(height, width, 3))
    pixels = keras.layers.Identity(dtype="float32")(inputs)
    outputs = keras.layers.Average(dtype="float32")([model(pixels), model(flip(pixels))])
    return keras.Model(inputs, outputs, name=f"{model.name}_flip_averaged")


def test_flip_averaging_survives_saving_and_loading(tmp_path):
    model = build_catdog_convnet_fast(
        (16, 20), widths=(4, 8), block="plain", convolution="standard", **FAST
    )
    averaged = with_flip_averaging(model)
    images = np.random.default_rng(1).integers(0, 256, (3, 16, 20, 3)).astype("float32")
    expected = (model.predict(images, verbose=0) + model.predict(images[:, :, ::-1], verbose=0)) / 2
    np.testing.assert_allclose(averaged.predict(images, verbose=0), expected, atol=1e-6)
    averaged.save(tmp_path / "averaged.keras")
    loaded = keras.models.load_model(tmp_path / "averaged.keras")  # the registered layer
    assert isinstance(loaded.get_layer("horizontal_flip"), HorizontalFlip)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), expected, atol=1e-6)


def test_a_model_saved_with_the_exchange_matrix_still_loads_and_predicts(tmp_path):
    model = build_catdog_convnet_fast(
        (16, 20), widths=(4, 8), block="plain", convolution="standard", **FAST
    )
    images = np.random.default_rng(2).integers(0, 256, (3, 16, 20, 3)).astype("float32")
    expected = (model.predict(images, verbose=0) + model.predict(images[:, :, ::-1], verbose=0)) / 2
    _exchange_flip_averaging(model).save(tmp_path / "earlier.keras")
    loaded = keras.models.load_model(tmp_path / "earlier.keras")
    np.testing.assert_allclose(loaded.predict(images, verbose=0), expected, atol=1e-5)
    np.testing.assert_allclose(
        loaded.predict(images, verbose=0),
        with_flip_averaging(model).predict(images, verbose=0),
        atol=1e-5,
    )


def test_a_translation_adds_a_random_translation_to_the_fast_convnets_augmentation():
    plain = typed_parameters(Architecture, "catdog_fast.architecture")
    assert plain.root.augmentation.translation == 0.0
    translated = typed_parameters(
        Architecture,
        "catdog_fast.architecture",
        augmentation={"rotation": 0.1, "zoom": 0.2, "translation": 0.1},
    )
    stages = {
        name: build_catdog_model((128, 128), architecture.root).get_layer("data_augmentation")
        for name, architecture in (("plain", plain), ("translated", translated))
    }
    names = {key: [type(layer).__name__ for layer in stage.layers] for key, stage in stages.items()}
    assert names["translated"] == [*names["plain"], "RandomTranslation"]
    shift = stages["translated"].layers[-1]
    assert (shift.height_factor, shift.width_factor) == (0.1, 0.1)
    assert (
        build_catdog_model((128, 128), plain.root).count_params()
        == build_catdog_model((128, 128), translated.root).count_params()
    )


def test_the_books_models_refuse_a_translation():
    with pytest.raises(ValueError, match="translation"):
        typed_parameters(
            Architecture,
            "catdog.architecture",
            augmentation={"rotation": 0.1, "zoom": 0.2, "translation": 0.1},
        )


def test_normalising_after_pooling_reorders_the_same_layers_of_the_fast_convnet():
    kinds = {}
    for normalization in ("convolution", "pooling"):
        architecture = typed_parameters(
            Architecture, "catdog_fast.architecture", normalization=normalization
        )
        model = build_catdog_model((128, 128), architecture.root)
        kinds[normalization] = [type(layer).__name__ for layer in model.layers]
        assert model.count_params() == 980_961 and model.output_shape == (None, 1)
    assert sorted(kinds["pooling"]) == sorted(kinds["convolution"])
    # Each of the first four stages: convolution, pooling, then its normalisation.
    stages = "".join(kind[0] for kind in kinds["pooling"] if kind != "Activation")
    assert "CMBCMBCMBCMBCB" in stages
    assert "CBM" not in stages


def test_normalising_after_pooling_needs_plain_blocks():
    with pytest.raises(ValueError, match="normalization: pooling is an option of block: plain"):
        typed_parameters(
            Architecture,
            "catdog_fast.architecture",
            block="residual",
            normalization="pooling",
        )
