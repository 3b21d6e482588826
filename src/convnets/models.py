"""The chapter 8 convnets of "Deep Learning with Python" (2nd ed.), one builder per listing.

Each builder returns an uncompiled ``keras.Model`` laid out as in the book, so the
listing numbers in the docstrings can be read beside the code. Compilation lives in
``convnets.training`` because optimizer and loss are parameters.
"""

from __future__ import annotations

import keras
from keras import layers

from convnets.parameters import Convnet, ConvnetAugmented


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


def build_data_augmentation(rotation: float, zoom: float) -> keras.Sequential:
    """Listing 8.14: the augmentation stage added to the image model."""
    return keras.Sequential(
        [
            layers.RandomFlip("horizontal"),
            layers.RandomRotation(rotation),
            layers.RandomZoom(zoom),
        ],
        name="data_augmentation",
    )


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


def build_catdog_model(
    image_size: tuple[int, int], architecture: Convnet | ConvnetAugmented
) -> keras.Model:
    """The cats-vs-dogs model ``architecture.name`` names (listing 8.7 or 8.16)."""
    if isinstance(architecture, ConvnetAugmented):
        return build_catdog_convnet_augmented(
            image_size,
            dropout=architecture.dropout,
            rotation=architecture.augmentation.rotation,
            zoom=architecture.augmentation.zoom,
        )
    return build_catdog_convnet(image_size)
