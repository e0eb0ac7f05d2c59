"""Push for the page's live parts: ``/studio/pulse/{token}/{topic}``, a WebSocket per live part of a tab.

A live part of the page (the call bar's status, the transcript, the sidebar's share link) used to be a
fragment rerun every 0.4-1 s, whether anything had changed or not: 5-7 s of server CPU per minute per open
tab, measured with ``bench/capacity.py``. Now each live part registers a *signature* (a cheap function of
what it shows: a state, a revision counter) on its tab's `PulseBoard`, and the page's pulse element
(``ui.pulse``) keeps a WebSocket here. The server compares the signature with the one the page last drew
every ``interval_s`` and sends the new one when it differs; the element then reruns its fragment, which
draws and sends the signature it drew. An idle tab costs a comparison every few tenths of a second and no
rerun at all.

A WebSocket, not a long poll: a browser opens at most 6 HTTP/1.1 connections to a host across all its tabs,
so long polls from a few tabs would starve the page's other requests.

``token`` is a random capability the server gave to that one tab's page, naming its board (held weakly: a
closed session's board is not kept alive by its socket), as for the screen-share intake. Always on: it hands
out nothing but whether the tab's own view has changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

__all__ = ["PulseBoard", "pulse_boards", "pulse_route", "signature"]

ROUTE = "/studio/pulse/{token}/{topic}"
MAX_SIGNATURE = 64  # what a page sends back is one of our digests; anything longer is cut
CLOSE_UNKNOWN = 4404  # the token or topic is not known here (the session ended, or the server restarted)

log = logging.getLogger(__name__)


def signature(read: Callable[[], object]) -> str:
    """A short, stable signature of what ``read()`` returns (its repr): equal values, equal signatures.

    A read that fails has a signature of its own (the fragment then shows the error it meets, once)."""
    try:
        value = read()
    except Exception as exc:
        return f"error:{type(exc).__name__}"
    return hashlib.blake2b(repr(value).encode(), digest_size=8).hexdigest()


@dataclass(frozen=True)
class Topic:
    read: Callable[[], object]  # what the live part shows, reduced to a small comparable value
    interval_s: float  # how often the server compares


class PulseBoard:
    """One tab's live parts: topic -> how to read what it shows. Registered from script threads, read
    by the server's event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._topics: dict[str, Topic] = {}
        self._failed: set[str] = set()

    def register(self, topic: str, read: Callable[[], object], *, interval_s: float) -> None:
        with self._lock:
            self._topics[topic] = Topic(read, interval_s)

    def topic(self, topic: str) -> Topic | None:
        with self._lock:
            return self._topics.get(topic)

    def signature(self, topic: str) -> str | None:
        """The topic's signature now, or None when the topic is not (or no longer) on this board."""
        entry = self.topic(topic)
        if entry is None:
            return None
        now = signature(entry.read)
        if now.startswith("error:") and topic not in self._failed:
            self._failed.add(topic)
            log.warning("pulse %s: reading the state failed: %s", topic, now.removeprefix("error:"))
        return now


class PulseBoards:
    """token -> the tab's board. Thread-safe; boards are held weakly (by their session)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._boards: weakref.WeakValueDictionary[str, PulseBoard] = weakref.WeakValueDictionary()

    def register(self, board: PulseBoard) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._boards[token] = board
        return token

    def get(self, token: str) -> PulseBoard | None:
        with self._lock:
            return self._boards.get(token)


_boards = PulseBoards()


def pulse_boards() -> PulseBoards:
    return _boards


async def _pulse(ws: WebSocket) -> None:
    """Send the topic's signature whenever it differs from the one the page says it drew.

    The page sends the signature it drew (on connect, and after every rerun); each new signature is
    sent once, so a page that is slow to rerun is not flooded."""
    board = _boards.get(ws.path_params["token"])
    topic = ws.path_params["topic"]
    entry = board.topic(topic) if board is not None else None
    await ws.accept()
    if board is None or entry is None:
        await ws.close(code=CLOSE_UNKNOWN)
        return
    drawn: list[str] = []  # the page's latest signature (set by the reader)
    wake = asyncio.Event()

    async def reader() -> None:
        with contextlib.suppress(WebSocketDisconnect):
            while True:
                drawn[:] = [(await ws.receive_text())[:MAX_SIGNATURE]]
                wake.set()

    reading = asyncio.create_task(reader())
    told: str | None = None
    try:
        while not reading.done():
            if drawn:
                now = board.signature(topic)
                if now is None:
                    await ws.close(code=CLOSE_UNKNOWN)
                    return
                if now != drawn[0] and now != told:
                    await ws.send_text(now)
                    told = now
            wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=entry.interval_s)
    except (WebSocketDisconnect, RuntimeError):  # closed under us (RuntimeError: sent after close)
        return
    finally:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
            await reading


def pulse_route() -> WebSocketRoute:
    return WebSocketRoute(ROUTE, _pulse)
