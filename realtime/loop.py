"""The one background asyncio loop thread per process.

Every Bridge in the process runs on this loop. Streamlit threads and media
callbacks cross into it with `run_coro` / `call_soon`, which never block.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None

THREAD_NAME = "realtime-bridge-loop"


WORKER_PREFIX = "realtime-bridge-worker"
MAX_WORKERS = 4  # frame encoding, settings.connection(), blocking tools


def _serve(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.set_default_executor(
        concurrent.futures.ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix=WORKER_PREFIX)
    )
    loop.call_soon(ready.set)
    loop.run_forever()


def get_loop() -> asyncio.AbstractEventLoop:
    """The shared loop, started lazily in a daemon thread (thread-safe)."""
    global _loop, _thread
    with _lock:
        if _loop is not None and _thread is not None and _thread.is_alive():
            return _loop
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        thread = threading.Thread(target=_serve, args=(loop, ready), name=THREAD_NAME, daemon=True)
        thread.start()
        ready.wait()
        _loop, _thread = loop, thread
        return loop


def loop_thread() -> threading.Thread | None:
    """The loop's thread, if it has been started."""
    return _thread


def in_loop_thread() -> bool:
    return _thread is not None and threading.current_thread() is _thread


def run_coro(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Schedule `coro` on the shared loop; returns at once with a Future."""
    return asyncio.run_coroutine_threadsafe(coro, get_loop())


def call_soon(fn: Callable[..., Any], *args: Any) -> None:
    """Call `fn(*args)` on the shared loop as soon as possible (never blocks)."""
    loop = get_loop()
    if in_loop_thread():
        loop.call_soon(fn, *args)
    else:
        loop.call_soon_threadsafe(fn, *args)
