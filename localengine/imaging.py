"""What an image is: its pixel size and dominant colour, from a ``data:`` URL.

``describe_image`` accepts ``data:image/<jpeg|png|webp|gif>;base64,...`` only. Anything else
raises ``ImageError`` with a message a person can act on. Decoding is bounded: images over
``MAX_PIXELS`` are refused before their pixels are decoded (decompression bombs).
"""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = ["MAX_DATA_URL_CHARS", "MAX_PIXELS", "PALETTE", "ImageError", "ImageFacts", "describe_image"]

PALETTE: tuple[str, ...] = (
    "red",
    "orange",
    "yellow",
    "green",
    "blue",
    "purple",
    "pink",
    "brown",
    "black",
    "white",
    "grey",
)

MAX_PIXELS = 40_000_000
"""Largest image (width x height) that is decoded."""

MAX_DATA_URL_CHARS = 30_000_000
"""Longest data URL accepted (about 22 MB of image bytes)."""

_FORMATS = {"jpeg": "JPEG", "jpg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF"}
_SAMPLE_SIDE = 64  # images are downscaled to at most this many pixels a side before counting


class ImageError(ValueError):
    """The input is not an image this module can describe. ``message`` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class ImageFacts:
    width: int
    height: int
    colour: str  # one of PALETTE


def describe_image(data_url: str) -> ImageFacts:
    """Pixel size and dominant palette colour of the image in ``data_url``."""
    _, payload = _split_data_url(data_url)
    raw = _decode_base64(payload)
    image = _open(raw)
    try:
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise ImageError(
                f"image is {width}x{height} pixels, more than the {MAX_PIXELS // 1_000_000} megapixel limit"
            )
        rgb = _small_rgb(image)
    finally:
        image.close()
    return ImageFacts(width=width, height=height, colour=dominant_colour(rgb))


def _split_data_url(data_url: object) -> tuple[str, str]:
    if not isinstance(data_url, str):
        raise ImageError(f"image_url must be a string, not {type(data_url).__name__}")
    if len(data_url) > MAX_DATA_URL_CHARS:
        raise ImageError(f"image data URL is too long ({len(data_url):,} characters)")
    head, sep, payload = data_url.partition(",")
    if not sep or head[:5].lower() != "data:":
        shown = data_url[:40] + ("..." if len(data_url) > 40 else "")
        raise ImageError(f"image_url must be a data URL (data:image/png;base64,...), got {shown!r}")
    params = head[5:].split(";")
    mime = params[0].strip().lower()
    if not mime.startswith("image/"):
        raise ImageError(f"data URL has media type {mime or 'none'!r}, expected an image")
    subtype = mime[len("image/") :]
    if subtype not in _FORMATS:
        raise ImageError(f"unsupported image type {mime!r}: use image/jpeg, image/png, image/webp or image/gif")
    if "base64" not in (p.strip().lower() for p in params[1:]):
        raise ImageError("image data URL must be base64-encoded (data:image/...;base64,...)")
    return _FORMATS[subtype], payload


def _decode_base64(payload: str) -> bytes:
    compact = "".join(payload.split())
    if not compact:
        raise ImageError("image data URL has no data")
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        try:  # tolerate URL-safe alphabet, which some clients emit
            return base64.urlsafe_b64decode(compact)
        except (binascii.Error, ValueError):
            raise ImageError("image data is not valid base64 (truncated or corrupted?)") from None


def _open(raw: bytes) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw))
            # Checks the declared size against Pillow's own bomb limit as well.
            w, h = image.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"image is too large to decode (limit {MAX_PIXELS // 1_000_000} megapixels)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise ImageError("image data could not be decoded as an image") from None
    if w <= 0 or h <= 0:
        image.close()
        raise ImageError("image has no pixels")
    if w * h > MAX_PIXELS:
        image.close()
        raise ImageError(f"image is {w}x{h} pixels, more than the {MAX_PIXELS // 1_000_000} megapixel limit")
    # The bytes decide what the image is: a mislabelled type (png bytes under image/jpeg) is
    # still an image we can read, so the declared subtype is only checked for being supported.
    return image


def _small_rgb(image: Image.Image) -> np.ndarray:
    try:
        if image.format == "JPEG":
            image.draft("RGB", (_SAMPLE_SIDE * 2, _SAMPLE_SIDE * 2))  # cheap DCT-domain downscale
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            converted = Image.alpha_composite(background, rgba).convert("RGB")
        else:
            converted = image.convert("RGB")
        converted.thumbnail((_SAMPLE_SIDE, _SAMPLE_SIDE), Image.Resampling.BOX)
        return np.asarray(converted, dtype=np.uint8).reshape(-1, 3)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise ImageError("image data is truncated or corrupted and could not be decoded") from None


def dominant_colour(rgb: np.ndarray) -> str:
    """Most common palette colour among ``rgb`` pixels (an (N, 3) uint8 array)."""
    buckets = classify_pixels(rgb)
    counts = np.bincount(buckets, minlength=len(PALETTE))
    return PALETTE[int(np.argmax(counts))]


def classify_pixels(rgb: np.ndarray) -> np.ndarray:
    """Palette index for each pixel of an (N, 3) uint8 array, by hue, saturation and value."""
    x = rgb.astype(np.float32) / 255.0
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    v = x.max(axis=1)
    mn = x.min(axis=1)
    c = v - mn
    s = np.where(v > 0, c / np.maximum(v, 1e-6), 0.0)
    safe_c = np.maximum(c, 1e-6)
    h = (
        np.where(
            v == r,
            ((g - b) / safe_c) % 6.0,
            np.where(v == g, (b - r) / safe_c + 2.0, (r - g) / safe_c + 4.0),
        )
        * 60.0
    )
    idx = {name: i for i, name in enumerate(PALETTE)}
    out = np.full(rgb.shape[0], idx["grey"], dtype=np.int64)

    # Chromatic pixels by hue.
    hue = np.select(
        [h < 15, h < 40, h < 70, h < 170, h < 255, h < 290, h < 335],
        [idx["red"], idx["orange"], idx["yellow"], idx["green"], idx["blue"], idx["purple"], idx["pink"]],
        default=idx["red"],
    )
    # Light, weakly saturated reds/purples read as pink.
    hue = np.where(((h >= 335) | (h < 15)) & (s < 0.6) & (v > 0.7), idx["pink"], hue)
    # Dark orange/red-orange/yellow is brown.
    warm = (h >= 10) & (h < 50)
    hue = np.where(warm & (v < 0.65), idx["brown"], hue)
    hue = np.where((h >= 50) & (h < 70) & (v < 0.45), idx["brown"], hue)

    chromatic = (s >= 0.25) & (v >= 0.2)
    out = np.where(chromatic, hue, out)
    # Achromatic pixels by value.
    achromatic = ~chromatic
    out = np.where(achromatic & (v < 0.2), idx["black"], out)
    out = np.where(achromatic & (v >= 0.2) & (v > 0.85) & (s < 0.15), idx["white"], out)
    return out
