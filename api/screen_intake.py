"""Frames of a tab's shared screen, posted by the page's Share screen control to ``/studio/screen/{token}``.

A frame sent as a component value would rerun the page (or its fragment) for every picture, and a rerun
that lands while the user moves between pages could blank the page; so the browser posts the JPEG here
instead, beside the app, and only starting or stopping a share reruns anything. The route needs no API
token: ``token`` is a random capability the server gave to that one tab's page, naming its conversation
(held weakly: a closed session's conversation is not kept alive by its token). Always on, unlike the
``/api/v1`` routes: it hands out nothing, it only feeds a conversation its own user's screen.
"""

from __future__ import annotations

import io
import secrets
import threading
import weakref
from typing import Protocol

import numpy as np
from PIL import Image, UnidentifiedImageError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["MAX_SCREEN_FRAME_BYTES", "ScreenTarget", "screen_route", "screen_targets"]

ROUTE = "/studio/screen/{token}"
MAX_SCREEN_FRAME_BYTES = 4 * 1024 * 1024  # a 1280 px JPEG is a few hundred KB
MAX_SIDE = 4096


class ScreenTarget(Protocol):
    def on_screen_frame(self, frame: np.ndarray) -> None: ...


class ScreenTargets:
    """token -> the conversation its frames go to. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._targets: weakref.WeakValueDictionary[str, ScreenTarget] = weakref.WeakValueDictionary()

    def register(self, target: ScreenTarget) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._targets[token] = target
        return token

    def get(self, token: str) -> ScreenTarget | None:
        with self._lock:
            return self._targets.get(token)


_targets = ScreenTargets()


def screen_targets() -> ScreenTargets:
    return _targets


def _decode(data: bytes) -> np.ndarray:
    """RGB pixels of a JPEG or PNG, or ValueError saying what is wrong."""
    try:
        with Image.open(io.BytesIO(data), formats=("JPEG", "PNG")) as image:
            width, height = image.size
            if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
                raise ValueError(f"a frame of {width}x{height} px is outside 1..{MAX_SIDE}")
            return np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError("the body is not a readable JPEG or PNG image") from exc


async def _post_frame(request: Request) -> Response:
    target = _targets.get(request.path_params["token"])
    if target is None:
        return JSONResponse({"error": "This screen share is not known here (reload the page)."}, status_code=404)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_SCREEN_FRAME_BYTES:
            return JSONResponse({"error": f"A frame is at most {MAX_SCREEN_FRAME_BYTES:,} bytes."}, status_code=413)
    try:
        frame = await run_in_threadpool(_decode, bytes(body))
    except ValueError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    target.on_screen_frame(frame)
    return Response(status_code=204)


def screen_route() -> Route:
    return Route(ROUTE, _post_frame, methods=["POST"])
