"""One way from image bytes to model input, for training, ``predict`` and serving alike.

Training decodes the split with ``decode_and_resize`` inside ``tf.data``; ``predict``
calls ``to_model_input`` on each file. Both run the same TensorFlow ops, so one RGB
JPEG reaches the model as the same bytes on every path (no train/serve skew). The
split keeps other images re-encoded as RGB JPEG (``image_checks``), while ``predict``
decodes what it is given: for those, the pixels may differ by JPEG rounding.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import tensorflow as tf
from PIL import Image

# Part of the decoded cache's key: change it when decode_and_resize changes.
DECODER = "tf.image.decode_image+resize_bilinear+round_uint8"


class ImageTooLarge(ValueError):
    """An image whose header declares more pixels than allowed: refused before decoding."""


def declared_pixels(content: bytes) -> int:
    """Width x height as the image's header declares them, without decoding the pixels.

    Raises ``PIL.UnidentifiedImageError`` for bytes that are not an image.
    """
    with warnings.catch_warnings():
        # Pillow's own bomb warning; the limit that applies here is the caller's.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(content)) as image:  # reads the header only
                width, height = image.size
        except Image.DecompressionBombError as error:
            raise ImageTooLarge(f"{error}; not decoded") from None
    return width * height


def check_pixels(content: bytes, max_pixels: int) -> None:
    """Refuse ``content`` from its header when it holds more than ``max_pixels`` pixels."""
    pixels = declared_pixels(content)
    if pixels > max_pixels:
        raise ImageTooLarge(
            f"{pixels:,} pixels declared, more than the {max_pixels:,} allowed "
            "(max_image_pixels); not decoded"
        )


def decode_and_resize(content: tf.Tensor, image_size: tuple[int, int], channels: int = 3):
    """Decode (RGB, or grayscale with ``channels=1``), resize bilinearly, round to uint8.

    The resize is ``image_dataset_from_directory``'s (listing 8.9); rounding to whole
    grey levels moves a pixel by at most half a level.
    """
    image = tf.image.decode_image(content, channels=channels, expand_animations=False)
    image = tf.image.resize(image, image_size, method="bilinear")
    return tf.cast(tf.round(tf.clip_by_value(image, 0.0, 255.0)), tf.uint8)


def to_model_input(
    content: bytes, image_size: tuple[int, int], max_pixels: int, channels: int = 3
) -> np.ndarray:
    """One image file's bytes as the model's uint8 input, checked against ``max_pixels``."""
    check_pixels(content, max_pixels)
    return decode_and_resize(tf.constant(content), tuple(image_size), channels).numpy()
