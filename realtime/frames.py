"""Camera frames: which ones to send (sans-IO) and how to encode them (pure).

Three independent pieces, none of which does IO:

- `FrameThrottle` picks at most one frame every ``interval_s`` seconds, and only one
  that changed enough since the last one sent (*when* to look is ``frame_policy.py``'s job:
  it sets ``interval_s`` and calls ``nudge()``). ``offer()`` runs on the streamlit-webrtc
  media loop at up to 15 fps, so it only keeps a reference; all pixel work happens in
  ``due()``, which the caller runs off that loop.
- `encode_frame` turns an image into a ``conversation.item.create`` event whose whole
  serialized JSON stays under a byte budget (aiortc caps a data-channel message at
  64 KiB), plus a small thumbnail JPEG for the transcript.
- `ImageWindow` keeps the ids of the last K image items so older ones can be deleted
  (``conversation.item.delete``) and image cost cannot grow without bound.
"""

from __future__ import annotations

import base64
import io
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import av
import numpy as np
from av.video.reformatter import VideoReformatter
from PIL import Image

__all__ = [
    "DEFAULT_BUDGET_BYTES",
    "DETAILS",
    "EncodedImage",
    "Frame",
    "FrameThrottle",
    "ImageWindow",
    "ThrottleStats",
    "encode_frame",
]

ImageLike = av.VideoFrame | np.ndarray | Image.Image

DETAILS: tuple[str, ...] = ("auto", "low", "high")
DEFAULT_BUDGET_BYTES = 60 * 1024
# Smallest budget we accept: envelope (~200 bytes) plus a tiny JPEG.
_MIN_BUDGET_BYTES = 2 * 1024
_THUMB_SIZE = (32, 24)
_Q_MAX = 85  # above this JPEG grows fast for no visible gain
_Q_MIN = 35  # below this, a smaller image at better quality reads better
_MIN_SIDE = 16


# --------------------------------------------------------------------------- helpers


def _scale_video(frame: av.VideoFrame, width: int, height: int, fmt: str) -> av.VideoFrame:
    """Scale + convert with swscale (fast, straight from yuv420p).

    Uses a private reformatter: ``VideoFrame.reformat`` caches one on the frame, and the
    media loop may be reformatting the same frame (the self-view echo) at the same time.
    """
    return VideoReformatter().reformat(frame, width=width, height=height, format=fmt, interpolation="AREA", threads=1)


def _to_rgb_array(image: ImageLike) -> np.ndarray:
    """An H x W x 3 uint8 RGB array from a VideoFrame, an ndarray or a PIL image."""
    if isinstance(image, av.VideoFrame):
        return _scale_video(image, image.width, image.height, "rgb24").to_ndarray()
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    if isinstance(image, np.ndarray):
        arr = image
        if arr.dtype != np.uint8:
            raise ValueError(f"image array must be uint8, got {arr.dtype}")
        if arr.ndim == 2:
            return np.repeat(arr[:, :, None], 3, axis=2)
        if arr.ndim == 3 and arr.shape[2] == 3:
            return arr
        if arr.ndim == 3 and arr.shape[2] == 4:
            return arr[:, :, :3]
        raise ValueError(f"image array must be HxW, HxWx3 or HxWx4, got shape {arr.shape}")
    raise TypeError(f"expected av.VideoFrame, numpy array or PIL image, got {type(image).__name__}")


def _thumbnail_gray(image: av.VideoFrame | np.ndarray) -> np.ndarray:
    """A 32x24 grayscale float32 thumbnail, for a cheap change measure."""
    w, h = _THUMB_SIZE
    if isinstance(image, av.VideoFrame):
        return _scale_video(image, w, h, "gray").to_ndarray().astype(np.float32)
    arr = _to_rgb_array(image)
    # Stride first so huge frames cost little, then box-average in PIL.
    step = max(1, min(arr.shape[0] // (h * 4), arr.shape[1] // (w * 4)))
    pil = Image.fromarray(np.ascontiguousarray(arr[::step, ::step])).convert("L")
    return np.asarray(pil.resize((w, h), Image.Resampling.BOX), dtype=np.float32)


def _fit(width: int, height: int, max_side: int) -> tuple[int, int]:
    longest = max(width, height)
    if longest <= max_side:
        return width, height
    scale = max_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


class _Scaler:
    """Produces the source image at a requested size, always from the full-size original."""

    def __init__(self, image: ImageLike) -> None:
        if isinstance(image, av.VideoFrame):
            self._video: av.VideoFrame | None = image
            self._pil: Image.Image | None = None
            self.size = (image.width, image.height)
        else:
            arr = _to_rgb_array(image)
            if arr.shape[0] < 1 or arr.shape[1] < 1:
                raise ValueError(f"image is empty: shape {arr.shape}")
            self._video = None
            self._pil = Image.fromarray(np.ascontiguousarray(arr))
            self.size = self._pil.size

    def at(self, size: tuple[int, int]) -> Image.Image:
        if self._video is not None:
            image: Image.Image = _scale_video(self._video, size[0], size[1], "rgb24").to_image()  # type: ignore[no-untyped-call]
            return image
        assert self._pil is not None
        if size == self._pil.size:
            return self._pil
        return self._pil.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)


# --------------------------------------------------------------------------- throttle


@dataclass(frozen=True, eq=False)
class Frame:
    """A frame picked for sending, still in its source form (no RGB conversion yet)."""

    source: av.VideoFrame | np.ndarray
    picked_at: float
    forced: bool
    change: float | None  # mean abs diff vs last sent thumbnail (None: first or forced)
    nudged: bool = False  # sent early because of ``nudge()`` (not forced)

    @property
    def width(self) -> int:
        s = self.source
        return s.width if isinstance(s, av.VideoFrame) else int(s.shape[1])

    @property
    def height(self) -> int:
        s = self.source
        return s.height if isinstance(s, av.VideoFrame) else int(s.shape[0])

    def to_rgb(self) -> np.ndarray:
        """H x W x 3 uint8 RGB pixels."""
        return _to_rgb_array(self.source)


@dataclass(frozen=True)
class ThrottleStats:
    offered: int
    sent: int
    skipped_unchanged: int
    forced: int
    nudged: int = 0  # frames sent by a due() that spent a nudge (and was not forced)


class FrameThrottle:
    """Sans-IO camera frame selection.

    ``offer(frame)`` is O(1): it keeps a reference to the latest frame. ``due(now)``
    returns a `Frame` when at least ``interval_s`` passed since the last frame sent and
    the latest frame differs from that one by at least ``change_threshold`` (mean
    absolute difference, 0..255, of 32x24 grayscale thumbnails). The first frame is
    always due. ``force()`` makes the next ``due()`` return the latest frame whatever
    the interval or change. ``nudge()`` makes the next ``due()`` that has a frame ignore
    the interval only: it returns the latest frame if it changed enough, and the nudge is
    spent either way. ``interval_s`` may be changed at any time; None means no automatic
    frames (only forced or nudged ones; the first frame is not sent by itself either).
    Thread-safe: offer() and due() may run on different threads.
    """

    def __init__(
        self,
        interval_s: float | None = 2.0,
        change_threshold: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if interval_s is not None and not interval_s >= 0:
            raise ValueError(f"interval_s must be >= 0 or None, got {interval_s!r}")
        if not change_threshold >= 0:
            raise ValueError(f"change_threshold must be >= 0, got {change_threshold!r}")
        self.interval_s: float | None = None if interval_s is None else float(interval_s)
        self.change_threshold = float(change_threshold)
        self._clock = clock
        self._lock = threading.Lock()
        self._latest: av.VideoFrame | np.ndarray | None = None
        self._latest_seq = 0
        self._evaluated_seq = 0  # last seq whose change was measured and found too small
        self._last_sent_at: float | None = None
        self._last_sent_thumb: np.ndarray | None = None
        self._force = False
        self._nudge = False
        self._offered = 0
        self._sent = 0
        self._skipped = 0
        self._forced = 0
        self._nudged = 0

    def offer(self, frame: av.VideoFrame | np.ndarray) -> bool:
        """Keep ``frame`` as the latest one. Cheap: no pixel work. Returns True."""
        if not isinstance(frame, (av.VideoFrame, np.ndarray)):
            raise TypeError(f"offer() takes av.VideoFrame or numpy array, got {type(frame).__name__}")
        with self._lock:
            self._latest = frame
            self._latest_seq += 1
            self._offered += 1
        return True

    def force(self) -> None:
        """Send the latest frame at the next ``due()``, ignoring interval and change."""
        with self._lock:
            self._force = True

    def nudge(self) -> None:
        """Send the latest frame at the next ``due()`` if it changed since the last one sent,
        ignoring the interval (unlike ``force()``, which also ignores the change). One-shot."""
        with self._lock:
            self._nudge = True

    @property
    def nudge_pending(self) -> bool:
        """True between ``nudge()`` and the next ``due()`` that had a frame to look at."""
        with self._lock:
            return self._nudge

    @property
    def force_pending(self) -> bool:
        """True between ``force()`` and the ``due()`` that honours it."""
        with self._lock:
            return self._force

    @property
    def has_frame(self) -> bool:
        with self._lock:
            return self._latest is not None

    def due(self, now: float | None = None) -> Frame | None:
        """The frame to send now, or None. Does the (small) pixel work; call off the media loop."""
        if now is None:
            now = self._clock()
        with self._lock:
            latest, seq, forced = self._latest, self._latest_seq, self._force
            last_at, last_thumb = self._last_sent_at, self._last_sent_thumb
            if latest is None:
                return None
            nudged, self._nudge = self._nudge, False
            if not forced:
                if not nudged:
                    if self.interval_s is None:
                        return None  # no automatic frames
                    if last_at is not None and now - last_at < self.interval_s:
                        return None
                if seq == self._evaluated_seq:
                    return None  # already measured this exact frame: unchanged
        thumb = _thumbnail_gray(latest)
        change: float | None = None
        if not forced and last_thumb is not None:
            change = float(np.mean(np.abs(thumb - last_thumb)))
            if change < self.change_threshold:
                with self._lock:
                    if self._evaluated_seq != seq:
                        self._evaluated_seq = seq
                        self._skipped += 1
                return None
        with self._lock:
            self._last_sent_at = now
            self._last_sent_thumb = thumb
            self._evaluated_seq = seq
            self._sent += 1
            if forced:
                self._force = False
                self._forced += 1
            elif nudged:
                self._nudged += 1
        return Frame(source=latest, picked_at=now, forced=forced, change=change, nudged=nudged and not forced)

    def stats(self) -> ThrottleStats:
        with self._lock:
            return ThrottleStats(self._offered, self._sent, self._skipped, self._forced, self._nudged)

    @property
    def skipped_unchanged(self) -> int:
        with self._lock:
            return self._skipped


# --------------------------------------------------------------------------- encoding


@dataclass(frozen=True, eq=False)
class EncodedImage:
    """A camera frame ready to send: the event (a wire dict) plus facts about it."""

    item_event: dict[str, Any]  # conversation.item.create, valid RealtimeClientEvent
    jpeg: bytes
    width: int
    height: int
    quality: int
    message_bytes: int  # len(json.dumps(item_event).encode()) with default separators
    thumbnail: bytes  # small JPEG for the transcript
    item_id: str | None = None
    encodes: int = 0  # how many JPEG encodes the size search took


def _build_event(
    data_url: str, detail: str, previous_item_id: str | None, event_id: str | None, item_id: str | None
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_image", "image_url": data_url, "detail": detail}],
    }
    if item_id is not None:
        item = {"id": item_id, **item}
    event: dict[str, Any] = {"type": "conversation.item.create", "item": item}
    if previous_item_id is not None:
        event["previous_item_id"] = previous_item_id
    if event_id is not None:
        event = {"event_id": event_id, **event}
    return event


def _jpeg(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality, optimize=False)
    return buf.getvalue()


def _search_quality(img: Image.Image, low: bytes, top_size: int | None, max_jpeg: int) -> tuple[tuple[bytes, int], int]:
    """Best quality in [_Q_MIN, _Q_MAX) that fits, given _Q_MIN fits and _Q_MAX does not.

    Interpolates on the (quality, size) bracket (JPEG size grows smoothly with quality)
    and stops once the bracket is 6 wide or a fitting candidate fills >= 92% of the room.
    """
    lo, lo_size, best = _Q_MIN, len(low), (low, _Q_MIN)
    hi = _Q_MAX
    hi_size = top_size if top_size is not None else None
    encodes = 0
    while hi - lo > 6 and lo_size < 0.92 * max_jpeg:
        if hi_size is None:
            q = (lo + hi) // 2
        else:
            guess = lo + (0.96 * max_jpeg - lo_size) * (hi - lo) / (hi_size - lo_size)
            q = int(min(max(round(guess), lo + 2), hi - 2))
        data = _jpeg(img, q)
        encodes += 1
        if len(data) <= max_jpeg:
            lo, lo_size, best = q, len(data), (data, q)
        else:
            hi, hi_size = q, len(data)
    return best, encodes


def encode_frame(
    image: ImageLike | Frame,
    *,
    max_side: int = 1024,
    detail: Literal["auto", "low", "high"] = "auto",
    budget_bytes: int = DEFAULT_BUDGET_BYTES,
    previous_item_id: str | None = None,
    event_id: str | None = None,
    item_id: str | None = None,
    thumb_side: int = 160,
) -> EncodedImage:
    """Encode ``image`` as a JPEG user-message item whose whole JSON fits ``budget_bytes``.

    The image is first scaled so its longer side is at most ``max_side`` (with swscale
    straight from yuv420p when given an ``av.VideoFrame``, else with Pillow). Then the
    best JPEG quality in [35, 85] that fits is found by interpolating between
    measured sizes (1 encode when the top quality fits, else typically 3 or 4); if even quality 35 is
    too big, the image is scaled down (from the original) by the square root of the overshoot and
    searched again. The JSON envelope is measured once, so each candidate's message size is exact without
    re-serializing. CPU-bound: call it off the media loop.
    """
    if detail not in DETAILS:
        raise ValueError(f"detail must be one of {DETAILS}, got {detail!r}")
    if not isinstance(max_side, int) or max_side < _MIN_SIDE:
        raise ValueError(f"max_side must be an int >= {_MIN_SIDE}, got {max_side!r}")
    if not isinstance(budget_bytes, int) or budget_bytes < _MIN_BUDGET_BYTES:
        raise ValueError(f"budget_bytes must be an int >= {_MIN_BUDGET_BYTES}, got {budget_bytes!r}")

    scaler = _Scaler(image.source if isinstance(image, Frame) else image)

    prefix = "data:image/jpeg;base64,"
    envelope = json.dumps(_build_event(prefix, detail, previous_item_id, event_id, item_id))
    overhead = len(envelope.encode("utf-8"))
    # Base64 of n bytes is 4*ceil(n/3) ASCII chars, none of which JSON escapes.
    max_jpeg = ((budget_bytes - 1 - overhead) // 4) * 3
    if max_jpeg <= 0:
        raise ValueError(f"budget_bytes={budget_bytes} leaves no room for an image after {overhead} bytes of JSON")

    img = scaler.at(_fit(*scaler.size, max_side))
    encodes = 0
    chosen: tuple[bytes, int] | None = None
    shrunk = False
    while chosen is None:
        if not shrunk:  # after a shrink sized for _Q_MIN, the top quality cannot fit
            top = _jpeg(img, _Q_MAX)
            encodes += 1
            if len(top) <= max_jpeg:
                chosen = (top, _Q_MAX)
                break
        low = _jpeg(img, _Q_MIN)
        encodes += 1
        if len(low) <= max_jpeg:
            chosen, n = _search_quality(img, low, len(top) if not shrunk else None, max_jpeg)
            encodes += n
            break
        w, h = img.size
        if max(w, h) <= _MIN_SIDE:
            raise ValueError(f"cannot fit the image in {budget_bytes} bytes even at {w}x{h}")
        scale = min(0.9, math.sqrt(max_jpeg / len(low)) * 0.95)
        shrunk = True
        img = scaler.at((max(1, int(w * scale)), max(1, int(h * scale))))

    jpeg, quality = chosen
    data_url = prefix + base64.b64encode(jpeg).decode("ascii")
    event = _build_event(data_url, detail, previous_item_id, event_id, item_id)
    message_bytes = overhead + len(data_url) - len(prefix)
    thumb_size = _fit(*img.size, thumb_side)
    thumb = img if thumb_size == img.size else img.resize(thumb_size, Image.Resampling.BOX)
    return EncodedImage(
        item_event=event,
        jpeg=jpeg,
        width=img.size[0],
        height=img.size[1],
        quality=quality,
        message_bytes=message_bytes,
        thumbnail=_jpeg(thumb, 70),
        item_id=item_id,
        encodes=encodes,
    )


# --------------------------------------------------------------------------- window


class ImageWindow:
    """Ids of the image items currently in the conversation, oldest first (sans-IO).

    ``added(item_id)`` records a new image item and returns the ids of older ones
    beyond ``max_images`` that the caller should delete (``conversation.item.delete``).
    ``removed(item_id)`` forgets an id (e.g. after the provider deleted it, or a
    failed create) so it is never asked to be deleted twice.
    """

    def __init__(self, max_images: int = 3) -> None:
        if not isinstance(max_images, int) or max_images < 1:
            raise ValueError(f"max_images must be an int >= 1, got {max_images!r}")
        self.max_images = max_images
        self._ids: list[str] = []
        self._lock = threading.Lock()

    def added(self, item_id: str) -> list[str]:
        if not item_id:
            raise ValueError("item_id must be a non-empty string")
        with self._lock:
            if item_id in self._ids:
                return []
            self._ids.append(item_id)
            excess = len(self._ids) - self.max_images
            if excess <= 0:
                return []
            evicted, self._ids = self._ids[:excess], self._ids[excess:]
            return evicted

    def removed(self, item_id: str) -> bool:
        with self._lock:
            if item_id in self._ids:
                self._ids.remove(item_id)
                return True
            return False

    @property
    def ids(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._ids)

    def __len__(self) -> int:
        with self._lock:
            return len(self._ids)
