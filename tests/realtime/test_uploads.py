"""Images from the chat box: decoding uploads safely and packing them with the text into one event."""

from __future__ import annotations

import base64
import io
import json
import zlib

import numpy as np
import pytest
from openai.types.realtime import RealtimeClientEvent
from PIL import Image, ImageSequence
from pydantic import TypeAdapter

from realtime.frames import DEFAULT_BUDGET_BYTES
from realtime.uploads import (
    MAX_FILE_BYTES,
    MAX_IMAGES,
    MAX_PIXELS,
    PreparedMessage,
    Upload,
    file_too_large,
    prepare_message,
)

CLIENT_EVENT = TypeAdapter(RealtimeClientEvent)
GREEN = (30, 200, 40)


def encoded(image: Image.Image, fmt: str = "PNG", **save) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **save)
    return buf.getvalue()


def solid_png(rgb=GREEN, size=(320, 240)) -> bytes:
    return encoded(Image.new("RGB", size, rgb))


def noisy(w: int, h: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def prepare(text: str, *files: Upload, **kw) -> PreparedMessage:
    kw.setdefault("max_side", 1024)
    kw.setdefault("detail", "auto")
    kw.setdefault("item_id", "msg_up1")
    return prepare_message(text, files, **kw)


def parts(msg: PreparedMessage) -> list[dict]:
    assert msg.event is not None
    return msg.event["item"]["content"]


def image_at(msg: PreparedMessage, index: int) -> Image.Image:
    url = [p for p in parts(msg) if p["type"] == "input_image"][index]["image_url"]
    head, _, payload = url.partition(",")
    assert head == "data:image/jpeg;base64"
    return Image.open(io.BytesIO(base64.b64decode(payload)))


def mean_rgb(image: Image.Image) -> tuple[int, ...]:
    return tuple(round(float(v)) for v in np.asarray(image.convert("RGB"), dtype=np.float64).mean(axis=(0, 1)))


def assert_valid(msg: PreparedMessage, budget: int = DEFAULT_BUDGET_BYTES) -> None:
    assert msg.event is not None
    CLIENT_EVENT.validate_python(msg.event)
    size = len(json.dumps(msg.event).encode())
    assert size == msg.message_bytes <= budget
    assert msg.event["type"] == "conversation.item.create"
    item = msg.event["item"]
    assert (item["type"], item["role"], item["id"]) == ("message", "user", "msg_up1")
    assert msg.images == sum(p["type"] == "input_image" for p in item["content"]) == len(msg.thumbnails)


def close(a, b, tol=8) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


# --------------------------------------------------------------------------- accepted images


def test_green_png_with_text_is_one_item_text_then_image():
    msg = prepare("what do you see?", Upload("green.png", solid_png()))
    assert_valid(msg)
    assert msg.problems == ()
    assert [p["type"] for p in parts(msg)] == ["input_text", "input_image"]
    assert parts(msg)[0]["text"] == "what do you see?"
    assert parts(msg)[1]["detail"] == "auto"
    image = image_at(msg, 0)
    assert image.size == (320, 240)
    assert close(mean_rgb(image), GREEN)
    assert close(mean_rgb(Image.open(io.BytesIO(msg.thumbnails[0]))), GREEN)


def test_jpeg_and_detail_are_kept():
    data = encoded(Image.new("RGB", (200, 100), (200, 30, 30)), "JPEG", quality=90)
    msg = prepare("look", Upload("red.jpg", data), detail="low")
    assert_valid(msg)
    assert parts(msg)[1]["detail"] == "low"
    assert close(mean_rgb(image_at(msg, 0)), (200, 30, 30))


def test_a_phone_photo_is_turned_upright_from_its_exif_orientation():
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned 90 degrees
    data = encoded(Image.new("RGB", (200, 100), GREEN), "JPEG", exif=exif)
    msg = prepare("", Upload("phone.jpg", data))
    assert_valid(msg)
    assert image_at(msg, 0).size == (100, 200)


def test_webp_and_grayscale_are_accepted():
    msg = prepare(
        "",
        Upload("a.webp", encoded(Image.new("RGB", (64, 64), (10, 20, 220)), "WEBP")),
        Upload("g.png", encoded(Image.new("L", (64, 64), 128))),
    )
    assert_valid(msg)
    assert msg.images == 2 and msg.problems == ()
    assert close(mean_rgb(image_at(msg, 1)), (128, 128, 128))


def test_huge_image_is_scaled_to_max_side_and_fits():
    big = noisy(3000, 2000)
    msg = prepare("big one", Upload("big.png", encoded(big, compress_level=1)), max_side=1024)
    assert_valid(msg)
    image = image_at(msg, 0)
    assert max(image.size) <= 1024
    assert abs(image.size[0] / image.size[1] - 1.5) < 0.02  # the aspect ratio is kept


def test_rgba_png_is_laid_on_white():
    rgba = Image.new("RGBA", (100, 100), (0, 0, 0, 0))  # fully transparent black
    rgba.paste((30, 200, 40, 255), (0, 0, 100, 50))  # top half opaque green
    msg = prepare("", Upload("alpha.png", encoded(rgba)))
    assert_valid(msg)
    pixels = np.asarray(image_at(msg, 0))
    assert close(tuple(pixels[10, 50]), GREEN, tol=12)
    assert close(tuple(pixels[90, 50]), (255, 255, 255), tol=12)  # transparent is white, not black


def test_palette_png_with_transparency():
    p = Image.new("P", (40, 40), 0)
    p.putpalette([0, 0, 0, 30, 200, 40] + [0] * (256 * 3 - 6))
    p.paste(1, (0, 0, 40, 40))
    msg = prepare("", Upload("pal.png", encoded(p, transparency=0)))
    assert_valid(msg)
    assert close(mean_rgb(image_at(msg, 0)), GREEN)


def test_animated_gif_sends_its_first_frame():
    frames = [Image.new("RGB", (80, 60), c) for c in (GREEN, (220, 20, 20), (20, 20, 220))]
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert sum(1 for _ in ImageSequence.Iterator(Image.open(io.BytesIO(data)))) == 3
    msg = prepare("what is this", Upload("anim.gif", data))
    assert_valid(msg)
    assert msg.images == 1
    assert close(mean_rgb(image_at(msg, 0)), GREEN, tol=20)


def test_several_images_share_the_budget():
    files = [Upload(f"n{i}.png", encoded(noisy(800, 600, seed=i), compress_level=1)) for i in range(4)]
    msg = prepare("compare these", *files)
    assert_valid(msg)
    assert msg.images == 4 and msg.problems == ()
    assert [p["type"] for p in parts(msg)] == ["input_text"] + ["input_image"] * 4
    one = prepare("compare these", files[0])
    assert image_at(msg, 0).size[0] < image_at(one, 0).size[0]  # each got a quarter of the room


@pytest.mark.parametrize("budget", [12 * 1024, 20 * 1024, 60 * 1024])
def test_any_budget_is_respected(budget):
    files = [Upload(f"n{i}.png", encoded(noisy(640, 480, seed=i), compress_level=1)) for i in range(2)]
    msg = prepare("two noisy ones", *files, budget_bytes=budget)
    assert_valid(msg, budget)
    assert msg.images == 2


def test_images_only_has_no_text_part():
    msg = prepare("   ", Upload("green.png", solid_png()))
    assert_valid(msg)
    assert [p["type"] for p in parts(msg)] == ["input_image"]


def test_text_only():
    msg = prepare("  hello there  ")
    assert_valid(msg)
    assert parts(msg) == [{"type": "input_text", "text": "hello there"}]
    assert msg.images == 0 and msg.problems == ()


def test_nothing_to_send():
    assert prepare("") == PreparedMessage(event=None)


# --------------------------------------------------------------------------- rejected files


def only_problem(msg: PreparedMessage) -> str:
    assert len(msg.problems) == 1, msg.problems
    return msg.problems[0]


def test_text_file_renamed_png_is_not_an_image_and_the_text_still_goes():
    msg = prepare("what do you see?", Upload("notes.png", b"shopping list:\n- milk\n- eggs\n"))
    problem = only_problem(msg)
    assert "\u201cnotes.png\u201d" in problem and "not an image" in problem
    assert_valid(msg)
    assert parts(msg) == [{"type": "input_text", "text": "what do you see?"}]


def test_rejected_file_alone_sends_nothing():
    msg = prepare("", Upload("notes.png", b"just text"))
    assert msg.event is None and msg.images == 0
    assert "not an image" in only_problem(msg)


def test_zero_bytes():
    problem = only_problem(prepare("", Upload("empty.png", b"")))
    assert "\u201cempty.png\u201d" in problem and "empty" in problem.split("\u201d", 1)[1]


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.9])
def test_truncated_png_is_damaged(keep):
    data = encoded(noisy(200, 150), compress_level=1)
    problem = only_problem(prepare("x", Upload("cut.png", data[: int(len(data) * keep)])))
    assert "\u201ccut.png\u201d" in problem and "damaged" in problem


def test_png_with_a_bad_checksum_is_damaged():
    data = bytearray(encoded(noisy(50, 50)))
    idat = data.index(b"IDAT")
    data[idat + 10] ^= 0xFF  # flip a byte of the compressed pixels: the chunk's CRC no longer matches
    assert "damaged" in only_problem(prepare("", Upload("flip.png", bytes(data))))


def test_truncated_jpeg_is_damaged():
    data = encoded(noisy(200, 150), "JPEG", quality=90)
    assert "damaged" in only_problem(prepare("", Upload("cut.jpg", data[: len(data) // 2])))


def png_header(width: int, height: int) -> bytes:
    """A PNG signature and IHDR declaring width x height, with one tiny IDAT: a decompression bomb's header."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [7000, 20_000, 60_000])
def test_decompression_bomb_is_refused_from_its_header(side):
    assert side * side > MAX_PIXELS
    problem = only_problem(prepare("", Upload("bomb.png", png_header(side, side))))
    assert "\u201cbomb.png\u201d" in problem and "megapixel" in problem


def test_file_over_the_size_limit_is_refused_unread():
    assert file_too_large("x.png", MAX_FILE_BYTES) is None
    sentence = file_too_large("big.png", MAX_FILE_BYTES + 1)
    assert sentence is not None and "\u201cbig.png\u201d" in sentence and "MB" in sentence
    assert "limit" in only_problem(prepare("", Upload("big.png", b"\0" * (MAX_FILE_BYTES + 1))))


def test_unsupported_format_says_which():
    problem = only_problem(prepare("", Upload("scan.tif", encoded(Image.new("RGB", (20, 20)), "TIFF"))))
    assert "TIFF" in problem and "not supported" in problem


def test_too_many_images():
    files = [Upload(f"g{i}.png", solid_png(size=(32, 32))) for i in range(MAX_IMAGES + 2)]
    msg = prepare("", *files)
    assert_valid(msg)
    assert msg.images == MAX_IMAGES
    assert len(msg.problems) == 2 and all(f"at most {MAX_IMAGES}" in p for p in msg.problems)


def test_text_that_leaves_no_room_for_the_image():
    msg = prepare("y" * (DEFAULT_BUDGET_BYTES - 2000), Upload("green.png", solid_png()))
    assert "too little room" in only_problem(msg)
    assert_valid(msg)
    assert msg.images == 0


def test_text_over_the_budget_alone():
    msg = prepare("z" * DEFAULT_BUDGET_BYTES)
    assert msg.event is None
    assert "shorter" in only_problem(msg)


def test_good_and_bad_files_together_keep_the_good_ones():
    msg = prepare(
        "both",
        Upload("notes.png", b"hello"),
        Upload("green.png", solid_png()),
        Upload("empty.gif", b""),
    )
    assert_valid(msg)
    assert msg.images == 1
    assert [p.split("\u201d")[0] for p in msg.problems] == ["\u201cnotes.png", "\u201cempty.gif"]


def test_long_names_are_shortened_in_sentences():
    problem = only_problem(prepare("", Upload("a" * 300 + ".png", b"nope")))
    assert len(problem) < 200 and "\u2026" in problem


def test_upload_repr_hides_the_bytes():
    assert repr(Upload("a.png", b"\x89PNG" * 100)) == "Upload(name='a.png', 400 bytes)"
