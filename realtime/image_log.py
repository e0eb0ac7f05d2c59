"""Every image this conversation showed the model: what, from where, how big, and whether it is still
in the conversation (the "last K images" window deletes older ones). Sans-IO and thread-safe: the
bridge loop writes, the page reads ``snapshot()``. The vision inspector draws it."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import io
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from PIL import Image

from realtime.transcript import thumbnail_from_data_url

__all__ = ["ImageLog", "ImageSource", "SentImage", "uploaded_images"]

ImageSource = Literal["camera", "screen", "upload", "client"]  # client: posted to the frame route


@dataclass(frozen=True)
class SentImage:
    item_id: str
    at: float  # wall-clock time it was sent
    source: ImageSource
    width: int  # pixels as sent (after resizing)
    height: int
    size_bytes: int  # the encoded image
    detail: str
    thumbnail: bytes = dataclasses.field(repr=False, default=b"")  # small JPEG for the page
    in_conversation: bool = True  # False once deleted (the image window) or lost with a call


class ImageLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._images: dict[str, SentImage] = {}

    def sent(self, image: SentImage) -> None:
        with self._lock:
            self._images[image.item_id] = image

    def left(self, item_id: str) -> None:
        """The item is no longer in the conversation (deleted by the image window): its images left."""
        with self._lock:
            for key, image in self._images.items():
                if (key == item_id or key.startswith(f"{item_id}#")) and image.in_conversation:
                    self._images[key] = dataclasses.replace(image, in_conversation=False)

    def snapshot(self) -> tuple[SentImage, ...]:
        with self._lock:
            return tuple(self._images.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._images)


def uploaded_images(event: Mapping[str, Any], detail: str) -> tuple[SentImage, ...]:
    """The images of a user message event (the chat box), as the log lists them. One item may hold
    several; each gets ``<item id>#<n>`` as its id, and leaves with the item."""
    item = event.get("item") or {}
    found: list[SentImage] = []
    for n, part in enumerate(p for p in item.get("content") or () if p.get("type") == "input_image"):
        url = str(part.get("image_url") or "")
        try:
            raw = base64.b64decode(url.split(",", 1)[1], validate=False)
            with Image.open(io.BytesIO(raw)) as img:
                width, height = img.size
        except (IndexError, binascii.Error, ValueError, OSError):
            continue
        found.append(
            SentImage(
                f"{item.get('id')}#{n + 1}",
                time.time(),
                "upload",
                width,
                height,
                len(raw),
                str(part.get("detail") or detail),
                thumbnail_from_data_url(url) or b"",
            )
        )
    return tuple(found)
