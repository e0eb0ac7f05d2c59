"""Every image this conversation showed the model: what, from where, how big, and whether it is still
in the conversation (the "last K images" window deletes older ones). Sans-IO and thread-safe: the
bridge loop writes, the page reads ``snapshot()``. The vision inspector draws it."""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from typing import Literal

__all__ = ["ImageLog", "ImageSource", "SentImage"]

ImageSource = Literal["camera", "screen", "upload"]


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
        """The image is no longer in the conversation (deleted by the window, or cut by a restore)."""
        with self._lock:
            image = self._images.get(item_id)
            if image is not None and image.in_conversation:
                self._images[item_id] = dataclasses.replace(image, in_conversation=False)

    def snapshot(self) -> tuple[SentImage, ...]:
        with self._lock:
            return tuple(self._images.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._images)
