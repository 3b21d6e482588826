"""The chapter 8 convnets of "Deep Learning with Python" (2nd ed.), one builder per listing.

Each builder returns an uncompiled ``keras.Model`` laid out as in the book, so the
listing numbers in the docstrings can be read beside the code. Compilation lives in
``convnets.ml.training`` because optimizer and loss are parameters.
"""

from __future__ import annotations

import keras
from keras import layers

from convnets.ml.layers import HorizontalFlip
from convnets.parameters import Convnet, ConvnetAugmented, ConvnetFast, ConvnetXception


def build_mnist_convnet(
    input_shape: tuple[int, int, int] = (28, 28, 1), num_classes: int = 10
) -> keras.Model:
    """Listing 8.1: a small convnet for MNIST (104,202 parameters)."""
    inputs = keras.Input(shape=input_shape)
    x = layers.Conv2D(filters=32, kernel_size=3, activation="relu")(inputs)
    x = layers.MaxPooling2D(pool_size=2)(x)
    x = layers.Conv2D(filters=64, kernel_size=3, activation="relu")(x)
    x = layers.MaxPooling2D(pool_size=2)(x)
    x = layers.Conv2D(filters=128, kernel_size=3, activation="relu")(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs=inputs, outputs=outputs, name="mnist_convnet")


def build_data_augmentation(
    rotation: float, zoom: float, translation: float = 0.0
) -> keras.Sequential:
    """Listing 8.14: the augmentation stage added to the image model.

    ``translation`` (not the book's) appends a ``RandomTranslation`` of that fraction.
    """
    stages = [
        layers.RandomFlip("horizontal"),
        layers.RandomRotation(rotation),
        layers.RandomZoom(zoom),
    ]
    if translation:
        stages.append(layers.RandomTranslation(translation, translation))
    return keras.Sequential(stages, name="data_augmentation")


def _catdog_convnet(
    inputs: keras.KerasTensor, x: keras.KerasTensor, dropout: float | None, name: str
) -> keras.Model:
    """The shared trunk of listings 8.7 and 8.16, from ``Rescaling`` to the sigmoid."""
    x = layers.Rescaling(1.0 / 255)(x)
    x = layers.Conv2D(filters=32, kernel_size=3, activation="relu")(x)
    x = layers.MaxPooling2D(pool_size=2)(x)
    x = layers.Conv2D(filters=64, kernel_size=3, activation="relu")(x)
    x = layers.MaxPooling2D(pool_size=2)(x)
    x = layers.Conv2D(filters=128, kernel_size=3, activation="relu")(x)
    x = layers.MaxPooling2D(pool_size=2)(x)
    x = layers.Conv2D(filters=256, kernel_size=3, activation="relu")(x)
    x = layers.MaxPooling2D(pool_size=2)(x)
    x = layers.Conv2D(filters=256, kernel_size=3, activation="relu")(x)
    x = layers.Flatten()(x)
    if dropout:
        x = layers.Dropout(dropout)(x)
    # float32 output under a mixed precision policy, for a stable loss.
    outputs = layers.Dense(1, activation="sigmoid", dtype="float32")(x)
    return keras.Model(inputs=inputs, outputs=outputs, name=name)


def build_catdog_convnet(image_size: tuple[int, int]) -> keras.Model:
    """Listing 8.7 (trained in 8.10): the small cats-vs-dogs convnet from scratch."""
    inputs = keras.Input(shape=(*image_size, 3))
    return _catdog_convnet(inputs, inputs, dropout=None, name="catdog_convnet")


def build_catdog_convnet_augmented(
    image_size: tuple[int, int], dropout: float, rotation: float, zoom: float
) -> keras.Model:
    """Listing 8.16: the same convnet with data augmentation and dropout."""
    inputs = keras.Input(shape=(*image_size, 3))
    x = build_data_augmentation(rotation=rotation, zoom=zoom)(inputs)
    return _catdog_convnet(inputs, x, dropout=dropout, name="catdog_convnet_augmented")


def _conv_bn_relu(
    x: keras.KerasTensor,
    filters: int,
    separable: bool,
    padding: str = "valid",
    pool: bool = False,
) -> keras.KerasTensor:
    """A convolution without bias, batch normalisation, ReLU (section 9.3.3); with
    ``pool``, a 2x2 max pool between the convolution and the normalisation."""
    convolution = layers.SeparableConv2D if separable else layers.Conv2D
    x = convolution(filters, 3, padding=padding, use_bias=False)(x)
    if pool:
        x = layers.MaxPooling2D(pool_size=2)(x)
    x = layers.BatchNormalization()(x)
    return layers.Activation("relu")(x)


def build_catdog_convnet_fast(
    image_size: tuple[int, int],
    *,
    widths: tuple[int, ...],
    block: str,
    convolution: str,
    dropout: float,
    rotation: float,
    zoom: float,
    translation: float = 0.0,
    normalization: str = "convolution",
) -> keras.Model:
    """The book's convnet with chapter 9's patterns (sections 9.3.2 to 9.3.4).

    Listing 8.16's augmentation and rescaling, then ``plain``: listing 8.16's
    convolutions and pooling, each convolution normalised (``normalization:
    pooling``: each pooled output instead, the same layers in another order); or
    ``residual``: a first
    convolution and pooling, then per width two convolutions, pooling and a 1x1
    projected shortcut added back. ``separable`` makes every convolution after the
    first depthwise-separable. Global average pooling instead of ``Flatten``, dropout,
    the sigmoid.
    """
    separable = convolution == "separable"
    inputs = keras.Input(shape=(*image_size, 3))
    x = build_data_augmentation(rotation=rotation, zoom=zoom, translation=translation)(inputs)
    x = layers.Rescaling(1.0 / 255)(x)
    if block == "plain" and normalization == "pooling":
        for index, filters in enumerate(widths):
            last = index == len(widths) - 1
            x = _conv_bn_relu(x, filters, separable=separable and index > 0, pool=not last)
    elif block == "plain":
        for index, filters in enumerate(widths):
            if index:
                x = layers.MaxPooling2D(pool_size=2)(x)
            x = _conv_bn_relu(x, filters, separable=separable and index > 0)
    else:
        x = _conv_bn_relu(x, widths[0], separable=False, padding="same")
        x = layers.MaxPooling2D(pool_size=2)(x)
        for filters in widths[1:]:
            residual = x
            x = _conv_bn_relu(x, filters, separable=separable, padding="same")
            x = _conv_bn_relu(x, filters, separable=separable, padding="same")
            x = layers.MaxPooling2D(pool_size=2, padding="same")(x)
            residual = layers.Conv2D(filters, 1, strides=2, padding="same")(residual)
            x = layers.add([x, residual])
    x = layers.GlobalAveragePooling2D()(x)
    if dropout:
        x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(1, activation="sigmoid", dtype="float32")(x)
    return keras.Model(inputs=inputs, outputs=outputs, name="catdog_convnet_fast")


def build_catdog_mini_xception(
    image_size: tuple[int, int],
    *,
    widths: tuple[int, ...],
    dropout: float,
    rotation: float,
    zoom: float,
) -> keras.Model:
    """Section 9.3.5: a mini Xception-like model, as the companion notebook writes it.

    The notebook's order (batch normalisation, separable convolution, ReLU; every
    convolution with a bias) is kept where the printed listing differs.
    """
    inputs = keras.Input(shape=(*image_size, 3))
    x = build_data_augmentation(rotation=rotation, zoom=zoom)(inputs)
    x = layers.Rescaling(1.0 / 255)(x)
    x = layers.Conv2D(filters=32, kernel_size=5)(x)
    for size in widths:
        residual = x

        x = layers.BatchNormalization()(x)
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = layers.Activation("relu")(x)

        x = layers.BatchNormalization()(x)
        x = layers.SeparableConv2D(size, 3, padding="same")(x)
        x = layers.Activation("relu")(x)

        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)

        residual = layers.Conv2D(size, 1, strides=2, padding="same")(residual)
        x = layers.add([x, residual])
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(1, activation="sigmoid", dtype="float32")(x)
    return keras.Model(inputs=inputs, outputs=outputs, name="catdog_mini_xception")


def with_flip_averaging(model: keras.Model) -> keras.Model:
    """``model`` predicting the mean of its outputs on each image and on its mirror image."""
    image_size = tuple(model.input_shape[1:3])
    inputs = keras.Input(shape=(*image_size, 3))
    pixels = layers.Identity(dtype="float32")(inputs)
    mirrored = HorizontalFlip(name="horizontal_flip")(pixels)
    outputs = layers.Average(dtype="float32")([model(pixels), model(mirrored)])
    return keras.Model(inputs, outputs, name=f"{model.name}_flip_averaged")


def build_catdog_model(
    image_size: tuple[int, int],
    architecture: Convnet | ConvnetAugmented | ConvnetFast | ConvnetXception,
) -> keras.Model:
    """The cats-vs-dogs model ``architecture.name`` names (listing 8.7, 8.16, section
    9.3.5's mini Xception, or the fast one)."""
    if isinstance(architecture, ConvnetXception):
        return build_catdog_mini_xception(
            image_size,
            widths=architecture.widths,
            dropout=architecture.dropout,
            rotation=architecture.augmentation.rotation,
            zoom=architecture.augmentation.zoom,
        )
    if isinstance(architecture, ConvnetFast):
        return build_catdog_convnet_fast(
            image_size,
            widths=architecture.widths,
            block=architecture.block,
            convolution=architecture.convolution,
            dropout=architecture.dropout,
            rotation=architecture.augmentation.rotation,
            zoom=architecture.augmentation.zoom,
            translation=architecture.augmentation.translation,
            normalization=architecture.normalization,
        )
    if isinstance(architecture, ConvnetAugmented):
        return build_catdog_convnet_augmented(
            image_size,
            dropout=architecture.dropout,
            rotation=architecture.augmentation.rotation,
            zoom=architecture.augmentation.zoom,
        )
    if isinstance(architecture, Convnet):
        return build_catdog_convnet(image_size)
    raise TypeError(f"No cats-vs-dogs builder for {architecture!r}")
