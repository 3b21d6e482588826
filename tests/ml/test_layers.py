"""The project's registered Keras layers."""

import keras
import numpy as np

from convnets.ml.layers import HorizontalFlip


def test_horizontal_flip_mirrors_exactly():
    images = np.random.default_rng(0).integers(0, 256, (2, 6, 7, 3)).astype("float32")
    flipped = keras.ops.convert_to_numpy(HorizontalFlip()(images))
    np.testing.assert_array_equal(flipped, images[:, :, ::-1, :])
