"""Checks that an image file is one training can use, converting it when asked."""

from __future__ import annotations

import io
from dataclasses import dataclass

import tensorflow as tf
from PIL import Image, UnidentifiedImageError

from convnets.ml.preprocessing import (
    EXIF_ORIENTATION,
    ImageTooLarge,
    check_pixels,
    exif_orientation,
)

NON_RGB_POLICIES = ("convert", "skip")
DEFAULT_MAX_PIXELS = 40_000_000


@dataclass(frozen=True)
class ImageCheck:
    """The bytes to keep (None when skipped) and what was done, for the report."""

    content: bytes | None
    action: str  # "kept", "converted" or "skipped"
    reason: str = ""


def _tensorflow_decodes(content: bytes) -> str | None:
    try:
        tf.io.decode_image(content, channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as exc:
        return f"TensorFlow cannot decode it: {exc.message.splitlines()[0][:160]}"
    return None


def check_image(  # noqa: PLR0911
    content: bytes, non_rgb: str = "convert", max_pixels: int = DEFAULT_MAX_PIXELS
) -> ImageCheck:
    # One return per outcome (kept, converted, each skip reason) reads best here.
    """Decode ``content`` fully; keep an RGB JPEG, convert or skip anything else.

    A picture whose header declares more than ``max_pixels`` pixels is skipped before
    it is decoded (``preprocessing.check_pixels``, as ``predict`` and serving do).

    Grayscale, CMYK, RGBA or palette images, and PNG/GIF/BMP files named ``.jpg``,
    are re-encoded as RGB JPEG (quality 95) when ``non_rgb`` is ``convert`` and
    skipped when it is ``skip``. Empty, truncated and non-image files are skipped.
    The final bytes must decode with TensorFlow's decoder, the one training uses. A
    converted picture keeps its EXIF orientation, which training's decoding applies.
    """
    if non_rgb not in NON_RGB_POLICIES:
        raise ValueError(f"non_rgb must be one of {NON_RGB_POLICIES}, not {non_rgb!r}")
    if not content:
        return ImageCheck(None, "skipped", "empty file")
    try:
        check_pixels(content, max_pixels)
        with Image.open(io.BytesIO(content)) as image:
            image.load()  # a full decode: truncated files fail here
            kind = f"{image.format} {image.mode}"
            if image.format == "JPEG" and image.mode == "RGB":
                problem = _tensorflow_decodes(content)
                if problem:
                    return ImageCheck(None, "skipped", problem)
                return ImageCheck(content, "kept")
            if non_rgb == "skip":
                return ImageCheck(None, "skipped", f"{kind}, not an RGB JPEG")
            buffer = io.BytesIO()
            exif = Image.Exif()
            if (orientation := exif_orientation(content)) != 1:
                exif[EXIF_ORIENTATION] = orientation
            image.convert("RGB").save(buffer, format="JPEG", quality=95, exif=exif)
    except UnidentifiedImageError:
        return ImageCheck(None, "skipped", "not an image")
    except (ImageTooLarge, Image.DecompressionBombError) as exc:
        return ImageCheck(None, "skipped", f"too many pixels: {str(exc)[:160]}")
    except (OSError, SyntaxError, ValueError) as exc:
        return ImageCheck(None, "skipped", f"corrupt image: {str(exc)[:160]}")
    converted = buffer.getvalue()
    problem = _tensorflow_decodes(converted)
    if problem:
        return ImageCheck(None, "skipped", problem)
    return ImageCheck(converted, "converted", f"converted from {kind}")
