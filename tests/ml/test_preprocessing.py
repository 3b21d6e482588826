"""From bytes to model input: the pixel limit from the header, RGB or grayscale, upright."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image, UnidentifiedImageError

from convnets.ml.preprocessing import (
    ImageTooLarge,
    check_pixels,
    declared_pixels,
    decode_and_resize,
    exif_orientation,
    to_model_input,
)
from tests.conftest import exif_rotated_jpeg, jpeg_bytes, png_header, upright_pixels


@pytest.mark.parametrize("side", [7000, 12000, 20000])  # 20000: past Pillow's own limit
def test_too_many_pixels_are_refused_from_the_header(side):
    with pytest.raises(ImageTooLarge, match="not decoded"):
        check_pixels(png_header(side, side), max_pixels=40_000_000)


def test_the_header_gives_the_size():
    assert declared_pixels(png_header(12000, 300)) == 3_600_000
    check_pixels(png_header(12000, 300), max_pixels=40_000_000)  # under the limit


def test_bytes_that_are_not_an_image_are_named_so():
    with pytest.raises(UnidentifiedImageError):
        to_model_input(b"<html>not found</html>", (32, 32), max_pixels=40_000_000)


def test_rgb_and_grayscale_model_input():
    rgb = to_model_input(jpeg_bytes(3, size=64), (32, 40), max_pixels=40_000_000)
    assert rgb.shape == (32, 40, 3) and rgb.dtype == np.uint8
    buffer = io.BytesIO()
    Image.fromarray(np.full((28, 28), 200, dtype=np.uint8)).save(buffer, format="PNG")
    digit = to_model_input(buffer.getvalue(), (28, 28), max_pixels=1000, channels=1)
    assert digit.shape == (28, 28, 1) and int(digit[0, 0, 0]) == 200


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_as_a_viewer_shows_the_picture(orientation):
    content = exif_rotated_jpeg(upright_pixels(), orientation)
    assert exif_orientation(content) == orientation
    upright = upright_pixels().astype(int)
    served = to_model_input(content, (40, 60), max_pixels=40_000_000)  # predict, serving
    trained = decode_and_resize(tf.constant(content), (40, 60)).numpy()  # tf.data's way
    assert np.array_equal(served, trained)
    assert np.abs(served - upright).mean() < 2  # JPEG rounding only
    if orientation != 1:
        assert np.abs(np.rot90(served, 2) - upright).mean() > 40  # the turn is visible


def test_resizing_before_the_turn_gives_what_resizing_after_it_would():
    content = exif_rotated_jpeg(upright_pixels(), 6)  # stored 60 high, 40 wide
    stored = decode_and_resize(tf.constant(content), (60, 40), orientation=1).numpy()
    upright = np.rot90(stored, k=-1)  # 6: turned 90 degrees clockwise to display
    resized_after = decode_and_resize(tf.constant(_png(upright)), (24, 30)).numpy()
    turned = to_model_input(content, (24, 30), max_pixels=40_000_000)
    assert np.abs(turned.astype(int) - resized_after).max() <= 1  # rounding only


def test_training_decoding_inside_tf_data_applies_the_orientation(tmp_path):
    path = tmp_path / "phone.jpg"
    path.write_bytes(exif_rotated_jpeg(upright_pixels(), 8))
    decoded = next(
        iter(
            tf.data.Dataset.from_tensor_slices([str(path)]).map(
                lambda file: decode_and_resize(tf.io.read_file(file), (40, 60))
            )
        )
    ).numpy()
    assert decoded.shape == (40, 60, 3)
    assert np.abs(decoded.astype(int) - upright_pixels()).mean() < 2


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not an image",
        jpeg_bytes(1),
        png_header(10, 10),
        b"\xff\xd8\xff\xe1\x00\x10Exif\x00\x00MM",
    ],
)
def test_no_or_a_broken_exif_block_means_upright(content):
    assert exif_orientation(content) == 1


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
