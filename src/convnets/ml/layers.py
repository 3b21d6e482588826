"""The project's own Keras layers, registered so that saved models name them.

Imports only Keras: the servable model loads this module (shipped with the model's
code) before it loads the Keras model.
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="convnets")
class HorizontalFlip(keras.layers.Layer):
    """Mirrors a batch of images ``(batch, height, width, channels)`` left to right.

    Exact: each output pixel is one input pixel. Models saved before this layer
    existed made the mirror image with a fixed exchange matrix (a ``Dense`` layer
    between two ``Permute``); they still load, with built-in layers only.
    """

    def call(self, inputs):
        return keras.ops.flip(inputs, axis=-2)

    def compute_output_shape(self, input_shape):
        return input_shape
