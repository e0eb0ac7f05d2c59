"""Images typed into the chat box: a message plus uploaded files, made into one event (pure).

``prepare_message(text, files, ...)`` decodes each upload with Pillow (safely: a pixel limit before any
pixel is decoded, ``verify()`` then a full load, so a damaged file is caught here and not by the
service), encodes each accepted image with `realtime.frames.encode_frame`, exactly like a camera frame,
and builds ONE ``conversation.item.create`` whose user message holds the text (``input_text``) followed
by one ``input_image`` per image, the whole JSON under the data-channel byte budget (the images share
what the text leaves). A file that cannot be sent gets one sentence, naming it, in ``problems``; the
text and the other images still go out. No IO: the caller sends the event and shows the problems.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from realtime.frames import DEFAULT_BUDGET_BYTES, EncodedImage, encode_frame

__all__ = [
    "ACCEPTED_FORMATS",
    "FILE_TYPES",
    "MAX_FILE_BYTES",
    "MAX_IMAGES",
    "MAX_PIXELS",
    "ImageRejected",
    "PreparedMessage",
    "Upload",
    "file_too_large",
    "prepare_message",
    "read_image",
]

ACCEPTED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "GIF", "WEBP")
"""Pillow format names of the files we accept (and the service accepts as image inputs)."""
FILE_TYPES: tuple[str, ...] = ("png", "jpg", "jpeg", "gif", "webp")
"""File name extensions the chat box's file picker offers."""
MAX_FILE_BYTES = 20 * 1024 * 1024
"""Largest upload read at all; a bigger file is refused before its bytes are looked at."""
MAX_PIXELS = 40_000_000
"""Largest image (width x height) decoded: a decompression bomb is refused from its header."""
MAX_IMAGES = 8
"""Images per message: more would leave each one too few bytes of the budget to be worth seeing."""

_KINDS = "PNG, JPEG, GIF or WebP"
_NAME_CHARS = 60
# Smallest share of the budget one image is given (encode_frame accepts 2 KiB; this leaves a
# recognisable few-hundred-pixel JPEG rather than a 16-pixel smudge).
_MIN_SHARE_BYTES = 4 * 1024


@dataclass(frozen=True)
class Upload:
    """One file from the chat box: its name as the browser gave it, and its bytes."""

    name: str
    data: bytes = b""

    def __repr__(self) -> str:  # the bytes are never worth printing
        return f"Upload(name={self.name!r}, {len(self.data)} bytes)"


@dataclass(frozen=True)
class PreparedMessage:
    """What to send for one chat message, and what could not be sent.

    ``event`` is one ``conversation.item.create`` (None when nothing is left to send: no text and
    no accepted image). ``problems`` has one sentence per rejected file (or an over-long text).
    ``images`` counts the ``input_image`` parts in ``event``; ``thumbnails`` are their small JPEGs.
    """

    event: dict[str, Any] | None
    problems: tuple[str, ...] = ()
    images: int = 0
    thumbnails: tuple[bytes, ...] = ()
    message_bytes: int = 0  # len(json.dumps(event).encode()), 0 without an event


class ImageRejected(Exception):
    """An upload that cannot be sent; ``args[0]`` is the sentence for the user."""


def _shown(name: str) -> str:
    name = " ".join((name or "").split()) or "(unnamed file)"
    if len(name) > _NAME_CHARS:
        name = name[: _NAME_CHARS - 1] + "\u2026"
    return f"\u201c{name}\u201d"


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def file_too_large(name: str, size: int, limit: int = MAX_FILE_BYTES) -> str | None:
    """The sentence for a file too big to read at all, or None when ``size`` is within ``limit``."""
    if size <= limit:
        return None
    return f"{_shown(name)} was not sent: the file is {_mb(size)}, more than the {_mb(limit)} limit for an image."


def read_image(upload: Upload, formats: Sequence[str] = ACCEPTED_FORMATS) -> Image.Image:
    """The upload as a loaded, upright RGB Pillow image (first frame of an animation), or
    `ImageRejected` with one sentence naming the file. ``formats``: the Pillow formats accepted."""
    formats = tuple(formats)
    name, data = _shown(upload.name), upload.data
    too_big = file_too_large(upload.name, len(data))
    if too_big:
        raise ImageRejected(too_big)
    if not data:
        raise ImageRejected(f"{name} was not sent: the file is empty.")
    kinds = _KINDS if formats == ACCEPTED_FORMATS else " or ".join(formats)
    not_image = f"{name} was not sent: it is not an image ({kinds} files are accepted)."
    damaged = f"{name} was not sent: the image is damaged or incomplete and could not be read."
    # No warnings filter here (it is process-global, and this runs on worker threads): our pixel limit is
    # below Pillow's own, so Pillow's bomb warning and error only fire for images refused anyway.
    try:
        probe = Image.open(io.BytesIO(data), formats=formats)
    except Image.DecompressionBombError:
        raise ImageRejected(_pixels_problem(name, None)) from None
    except UnidentifiedImageError:
        raise ImageRejected(_unsupported(name, data) or not_image) from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error):
        raise ImageRejected(damaged) from None
    width, height = probe.size
    if width < 1 or height < 1:
        raise ImageRejected(damaged)
    if width * height > MAX_PIXELS:
        raise ImageRejected(_pixels_problem(name, (width, height)))
    try:
        probe.verify()  # checks structure and checksums without decoding pixels
        image = Image.open(io.BytesIO(data), formats=formats)
        frame = next(iter(ImageSequence.Iterator(image)))  # an animation's first frame
        frame.load()
        upright = ImageOps.exif_transpose(frame)  # a phone photo the way it was held
        return _to_rgb(upright if upright is not None else frame)
    except Image.DecompressionBombError:
        raise ImageRejected(_pixels_problem(name, (width, height))) from None
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, StopIteration, struct.error):
        raise ImageRejected(damaged) from None


def _pixels_problem(name: str, size: tuple[int, int] | None) -> str:
    limit = f"{MAX_PIXELS // 1_000_000}-megapixel limit"
    if size is None:
        return f"{name} was not sent: the image is too large to open safely (over the {limit})."
    return f"{name} was not sent: the image is {size[0]}\u00d7{size[1]} pixels, over the {limit} for opening it safely."


def _unsupported(name: str, data: bytes) -> str | None:
    """A sentence when Pillow knows the format but we do not send it (TIFF, BMP, ICO...), else None."""
    try:
        with Image.open(io.BytesIO(data)) as other:
            kind = other.format or "this"
    except Exception:  # any failure here just means "not an image we know"
        return None
    return f"{name} was not sent: {kind} images are not supported (use {_KINDS})."


def _to_rgb(frame: Image.Image) -> Image.Image:
    """RGB pixels; transparency (RGBA, LA, P with a transparent colour) is laid on white."""
    has_alpha = frame.mode in ("RGBA", "LA", "PA") or (frame.mode == "P" and "transparency" in frame.info)
    if not has_alpha:
        return frame.convert("RGB")
    rgba = frame.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _event(item_id: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    item = {"id": item_id, "type": "message", "role": "user", "content": content}
    return {"type": "conversation.item.create", "item": item}


def _size(event: dict[str, Any]) -> int:
    return len(json.dumps(event).encode("utf-8"))  # the bridge sends json.dumps(event)


def prepare_message(
    text: str,
    files: Sequence[Upload],
    *,
    max_side: int,
    detail: Literal["auto", "low", "high"],
    item_id: str,
    budget_bytes: int = DEFAULT_BUDGET_BYTES,
) -> PreparedMessage:
    """One user message with ``text`` and the images among ``files``, as a wire event under ``budget_bytes``.

    Images are resized to at most ``max_side`` and JPEG-encoded by `encode_frame`, each within an
    equal share of what the text leaves of the budget. CPU-bound (decoding, encoding): run it off
    the event loop.
    """
    problems: list[str] = []
    text = text.strip()
    content: list[dict[str, Any]] = [{"type": "input_text", "text": text}] if text else []
    base = _size(_event(item_id, content))
    if base > budget_bytes:
        problems.append(
            f"The message was not sent: its text is {base:,} bytes, over the {budget_bytes:,}-byte "
            "data-channel limit. Send a shorter message."
        )
        content, base = [], _size(_event(item_id, []))

    decoded: list[tuple[Upload, Image.Image]] = []
    for upload in files:
        try:
            image = read_image(upload)
        except ImageRejected as exc:
            problems.append(str(exc))
            continue
        if len(decoded) >= MAX_IMAGES:
            problems.append(f"{_shown(upload.name)} was not sent: a message takes at most {MAX_IMAGES} images.")
            continue
        decoded.append((upload, image))

    encoded: list[EncodedImage] = []
    if decoded:
        # Each image's own event counts its envelope, so the shares add up to more than the parts.
        share = (budget_bytes - base) // len(decoded)
        for upload, image in decoded:
            if share < _MIN_SHARE_BYTES:
                why = "the text leaves" if content else f"{len(decoded)} images leave"
                problems.append(
                    f"{_shown(upload.name)} was not sent: {why} too little room for it in one "
                    f"data-channel message ({budget_bytes:,} bytes). Send it with a shorter text or fewer images."
                )
                continue
            try:
                encoded.append(encode_frame(image, max_side=max_side, detail=detail, budget_bytes=share))
            except ValueError as exc:
                problems.append(
                    f"{_shown(upload.name)} was not sent: even shrunk it does not fit in its share of one "
                    f"data-channel message ({share:,} of {budget_bytes:,} bytes; {exc})."
                )
        content += [e.item_event["item"]["content"][0] for e in encoded]

    if not content:
        return PreparedMessage(event=None, problems=tuple(problems))
    event = _event(item_id, content)
    size = _size(event)
    if size > budget_bytes:  # cannot happen: every share is measured with a larger envelope
        raise AssertionError(f"prepared message is {size} bytes, over its {budget_bytes}-byte budget")
    return PreparedMessage(
        event=event,
        problems=tuple(problems),
        images=len(encoded),
        thumbnails=tuple(e.thumbnail for e in encoded),
        message_bytes=size,
    )
