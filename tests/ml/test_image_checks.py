"""check_image: what training can decode is kept, converted or skipped, with a reason."""

import io

import numpy as np
import pytest
from PIL import Image

from convnets.ml.image_checks import check_image
from tests.conftest import exif_rotated_jpeg, jpeg_bytes, png_header, upright_pixels


def _encode(mode: str, fmt: str) -> bytes:
    pixels = np.random.default_rng(1).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, format=fmt)
    return buffer.getvalue()


def _decoded_mode(content: bytes) -> tuple[str, str]:
    with Image.open(io.BytesIO(content)) as image:
        return image.format, image.mode


def test_an_rgb_jpeg_is_kept_byte_for_byte():
    content = jpeg_bytes(3)
    check = check_image(content)
    assert (check.action, check.content) == ("kept", content)


@pytest.mark.parametrize(
    "mode, fmt",
    [("L", "JPEG"), ("CMYK", "JPEG"), ("RGB", "PNG"), ("RGBA", "PNG"), ("P", "GIF")],
)
def test_non_rgb_jpegs_are_converted_to_rgb_jpeg(mode, fmt):
    check = check_image(_encode(mode, fmt), non_rgb="convert")
    assert check.action == "converted"
    assert check.reason == f"converted from {fmt} {mode}"
    assert _decoded_mode(check.content) == ("JPEG", "RGB")


@pytest.mark.parametrize("mode, fmt", [("L", "JPEG"), ("CMYK", "JPEG"), ("RGB", "PNG")])
def test_non_rgb_jpegs_are_skipped_when_asked(mode, fmt):
    check = check_image(_encode(mode, fmt), non_rgb="skip")
    assert (check.action, check.content) == ("skipped", None)
    assert "not an RGB JPEG" in check.reason


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "empty file"),
        (b"<html>404 not found</html>", "not an image"),
        (jpeg_bytes(4, size=64)[:300], "corrupt image"),
    ],
    ids=["zero-byte", "text-named-jpg", "truncated-jpeg"],
)
def test_unusable_files_are_skipped_with_the_reason(content, reason):
    check = check_image(content)
    assert check.action == "skipped" and check.content is None
    assert reason in check.reason


def test_an_unknown_policy_is_rejected():
    with pytest.raises(ValueError, match="non_rgb must be one of"):
        check_image(jpeg_bytes(0), non_rgb="maybe")


def test_a_decompression_bomb_is_skipped_not_fatal(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 16x16 = 256 > 2 x 100
    check = check_image(_encode("RGB", "PNG"))
    assert check.action == "skipped" and "too many pixels" in check.reason


def test_a_picture_over_the_pixel_limit_is_skipped_from_its_header():
    check = check_image(png_header(12000, 12000), max_pixels=40_000_000)  # never decoded
    assert check.action == "skipped"
    assert "144,000,000 pixels declared, more than the 40,000,000" in check.reason
    assert check_image(jpeg_bytes(0), max_pixels=24 * 24).action == "kept"
    assert check_image(jpeg_bytes(0), max_pixels=24 * 24 - 1).action == "skipped"


def test_a_converted_picture_keeps_its_orientation_for_training_to_apply():
    from convnets.ml.preprocessing import to_model_input  # noqa: PLC0415

    phone = Image.open(io.BytesIO(exif_rotated_jpeg(upright_pixels(), 6)))
    buffer = io.BytesIO()
    phone.convert("L").save(buffer, format="JPEG", exif=phone.getexif())  # grayscale
    check = check_image(buffer.getvalue(), "convert")
    assert check.action == "converted"
    decoded = to_model_input(check.content, (40, 60), max_pixels=10**6)
    assert np.abs(decoded.astype(int) - upright_pixels().mean(axis=-1, keepdims=True)).mean() < 3
