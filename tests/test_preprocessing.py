"""From bytes to model input: the pixel limit from the header, RGB or grayscale."""

import io

import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError

from convnets.preprocessing import ImageTooLarge, check_pixels, declared_pixels, to_model_input
from tests.conftest import jpeg_bytes, png_header


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
