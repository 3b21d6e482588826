"""One way from image bytes to model input, for training, ``predict`` and serving alike.

Training decodes the split with ``decode_and_resize`` inside ``tf.data``; ``predict``
calls ``to_model_input`` on each file. Both run the same TensorFlow ops, so one RGB
JPEG reaches the model as the same bytes on every path (no train/serve skew). The
split keeps other images re-encoded as RGB JPEG (``image_checks``), while ``predict``
decodes what it is given: for those, the pixels may differ by JPEG rounding.

A picture's EXIF orientation (a phone's "rotate 90 degrees to display") is applied in
``decode_and_resize``, so the model sees a picture the way a viewer shows it, on every
path. The tag is read from the header by Pillow (no pixel is decoded by it); TensorFlow
then turns the resized pixels.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import tensorflow as tf
from PIL import Image

# Part of the decoded cache's key: change it when decode_and_resize changes.
DECODER = "tf.image.decode_image+exif_orientation+resize_bilinear+round_uint8"
EXIF_ORIENTATION = 0x0112  # the TIFF/EXIF tag; 1 is upright, 2 to 8 a flip and/or rotation


class ImageTooLarge(ValueError):
    """An image whose header declares more pixels than allowed: refused before decoding."""


# Pillow's warnings on reading a header: a large picture (refused by check_pixels
# whatever Pillow says) and a damaged EXIF block (shown as stored). Filters set once:
# warnings.catch_warnings is not thread-safe, and tf.data decodes in threads.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
warnings.filterwarnings("ignore", message=r".*(EXIF|exif)", module=r"PIL\.")
warnings.filterwarnings("ignore", message=r"Truncated File Read", module=r"PIL\.")


def declared_pixels(content: bytes) -> int:
    """Width x height as the image's header declares them, without decoding the pixels.

    Raises ``PIL.UnidentifiedImageError`` for bytes that are not an image.
    """
    try:  # Pillow's own bomb warning is filtered above: the caller's limit applies
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


def exif_orientation(content: bytes) -> int:
    """The EXIF orientation (1 to 8) the image's header declares; 1 when none or invalid.

    Only the header is read. A malformed EXIF block is no reason to refuse a picture
    that decodes: it is shown as stored, as viewers do.
    """
    try:
        with Image.open(io.BytesIO(bytes(content))) as image:
            orientation = int(image.getexif().get(EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 - any unreadable header: no orientation to apply
        return 1
    return orientation if 1 <= orientation <= 8 else 1


def _orientation_tensor(content: bytes | np.ndarray) -> np.int32:
    # tf.data hands bytes; an eager call a 0-d array.
    return np.int32(exif_orientation(content if isinstance(content, bytes) else content.item()))


# EXIF orientation 1 to 8 as a transpose (5 to 8) followed by flips of the rows and of the
# columns: the eight cases of the specification, as Pillow's ``ImageOps.exif_transpose``.
_FLIP_ROWS = (False, False, True, True, False, False, True, True)
_FLIP_COLUMNS = (False, True, True, False, False, True, True, False)


def _oriented_resize(image: tf.Tensor, image_size: tuple[int, int], orientation) -> tf.Tensor:
    """``image`` resized to ``image_size`` as displayed under EXIF ``orientation``.

    The resize comes first, at the size before the turn, so the turn moves few pixels;
    bilinear resizing commutes with transposes and flips. Tensor ops without branches,
    as a ``tf.switch_case`` here slows ``tf.data``'s decoding.
    """
    index = tf.clip_by_value(tf.reshape(tf.cast(orientation, tf.int32), []) - 1, 0, 7)
    transposed = index >= 4
    size = tf.where(transposed, tf.constant(image_size[::-1]), tf.constant(image_size))
    image = tf.image.resize(image, size, method="bilinear")
    image = tf.transpose(image, tf.where(transposed, [1, 0, 2], [0, 1, 2]))
    flips = tf.stack([tf.gather(_FLIP_ROWS, index), tf.gather(_FLIP_COLUMNS, index)])
    image = tf.reverse(image, tf.boolean_mask([0, 1], flips))
    image.set_shape((*image_size, image.shape[-1]))
    return image


def decode_and_resize(
    content: tf.Tensor, image_size: tuple[int, int], channels: int = 3, orientation=None
):
    """Decode (RGB, or grayscale with ``channels=1``), turn upright, resize, round to uint8.

    ``orientation`` is the EXIF orientation when the caller has read it
    (``exif_orientation``); otherwise it is read from ``content`` here (inside
    ``tf.data``, through ``tf.numpy_function``). The resize is
    ``image_dataset_from_directory``'s (listing 8.9); rounding to whole grey levels
    moves a pixel by at most half a level.
    """
    image = tf.image.decode_image(content, channels=channels, expand_animations=False)
    if orientation is None:
        orientation = tf.numpy_function(_orientation_tensor, [content], tf.int32, stateful=False)
    image = _oriented_resize(image, tuple(image_size), orientation)
    return tf.cast(tf.round(tf.clip_by_value(image, 0.0, 255.0)), tf.uint8)


def to_model_input(
    content: bytes, image_size: tuple[int, int], max_pixels: int, channels: int = 3
) -> np.ndarray:
    """One image file's bytes as the model's uint8 input, checked against ``max_pixels``."""
    check_pixels(content, max_pixels)
    orientation = exif_orientation(content)
    return decode_and_resize(
        tf.constant(content), tuple(image_size), channels, orientation=orientation
    ).numpy()
