"""localengine.imaging: size and dominant colour from data URLs, clear errors for bad input."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from localengine.imaging import MAX_PIXELS, PALETTE, ImageError, ImageFacts, describe_image
from tests.media import solid_jpeg_data_url, solid_png_data_url

SWATCHES = {
    "red": [(220, 20, 30), (180, 0, 0)],
    "orange": [(255, 140, 0), (240, 120, 40)],
    "yellow": [(250, 230, 30), (255, 255, 0)],
    "green": [(30, 170, 60), (0, 255, 0), (20, 90, 30)],
    "blue": [(20, 60, 220), (0, 0, 255), (40, 120, 200)],
    "purple": [(130, 40, 180), (100, 0, 140)],
    "pink": [(255, 150, 200), (255, 105, 180)],
    "brown": [(120, 70, 30), (140, 90, 50)],
    "black": [(10, 10, 10), (0, 0, 0)],
    "white": [(250, 250, 250), (255, 255, 255)],
    "grey": [(128, 128, 128), (180, 180, 180), (70, 70, 70)],
}


def data_url(image: Image.Image, fmt: str, mime: str, **save) -> str:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **save)
    return f"data:{mime};base64," + base64.b64encode(buf.getvalue()).decode()


def png_header_only(width: int, height: int) -> str:
    """A PNG that declares ``width`` x ``height`` but carries almost no pixel data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    raw = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    return "data:image/png;base64," + base64.b64encode(raw).decode()


def test_palette_is_the_documented_one():
    assert set(PALETTE) == set(SWATCHES)


@pytest.mark.parametrize("name", sorted(SWATCHES))
def test_each_palette_colour_is_recognized_in_jpeg_and_png(name):
    for rgb in SWATCHES[name]:
        assert describe_image(solid_jpeg_data_url(rgb)).colour == name, rgb
        assert describe_image(solid_png_data_url(rgb)).colour == name, rgb


def test_sizes_are_reported_exactly():
    assert describe_image(solid_jpeg_data_url((0, 0, 255), size=(640, 480))) == ImageFacts(640, 480, "blue")
    assert describe_image(solid_png_data_url((255, 0, 0), size=(33, 17))) == ImageFacts(33, 17, "red")
    assert describe_image(solid_png_data_url((0, 0, 0), size=(1, 1))) == ImageFacts(1, 1, "black")


def test_webp_and_gif_are_accepted():
    green = Image.new("RGB", (50, 40), (30, 170, 60))
    assert describe_image(data_url(green, "WEBP", "image/webp")) == ImageFacts(50, 40, "green")
    assert describe_image(data_url(green.convert("P"), "GIF", "image/gif")) == ImageFacts(50, 40, "green")


def test_mostly_blue_image_with_noise_and_clutter_is_blue():
    rng = np.random.default_rng(7)
    pixels = np.clip(rng.normal((30, 70, 210), 25, size=(120, 160, 3)), 0, 255)
    # A third of the picture is other things: random colours and a white block.
    pixels[:40, :] = rng.integers(0, 256, size=(40, 160, 3))
    pixels[80:, 120:] = 255
    image = Image.fromarray(pixels.astype(np.uint8), "RGB")
    assert describe_image(data_url(image, "JPEG", "image/jpeg", quality=80)) == ImageFacts(160, 120, "blue")


def test_transparent_areas_read_as_white_background():
    image = Image.new("RGBA", (40, 40), (255, 0, 0, 0))  # fully transparent "red"
    image.paste((0, 0, 255, 255), (0, 0, 10, 10))
    assert describe_image(data_url(image, "PNG", "image/png")).colour == "white"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("https://example.com/cat.png", "data URL"),
        ("", "data URL"),
        ("data:text/plain;base64,aGVsbG8=", "expected an image"),
        ("data:image/bmp;base64,Qk0=", "unsupported image type"),
        ("data:image/png,rawbytes", "base64"),
        ("data:image/png;base64,", "no data"),
        ("data:image/png;base64,@@@not base64@@@", "not valid base64"),
        ("data:image/png;base64," + base64.b64encode(b"hello, not an image").decode(), "could not be decoded"),
    ],
)
def test_bad_input_raises_a_clear_image_error(url, words):
    with pytest.raises(ImageError) as caught:
        describe_image(url)
    assert words in caught.value.message
    assert str(caught.value) == caught.value.message


def test_non_string_input_is_an_image_error():
    with pytest.raises(ImageError, match="string"):
        describe_image(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("maker", [solid_png_data_url, solid_jpeg_data_url])
def test_truncated_image_data_is_an_image_error(maker):
    url = maker((0, 200, 0), size=(200, 150))
    head, payload = url.split(",", 1)
    for cut in (len(payload) // 2, len(payload) // 2 + 1, 30):
        with pytest.raises(ImageError):
            describe_image(f"{head},{payload[:cut]}")


def test_decompression_bombs_are_refused_before_decoding():
    just_over = int((MAX_PIXELS + 1_000_000) ** 0.5)
    for width, height in [(just_over, just_over), (50_000, 50_000)]:
        with pytest.raises(ImageError, match="megapixel"):
            describe_image(png_header_only(width, height))
