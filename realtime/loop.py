"""The one background asyncio loop thread per process.

Every Bridge in the process runs on this loop. Streamlit threads and media
callbacks cross into it with `run_coro` / `call_soon`, which never block.

A heartbeat (`LoopLag`) measures how late the loop runs what is due: the media it carries (the
mic to the provider, the provider's voice back) is late by as much. `behind_s()` is the running
total the bridges' overload watch reads (``realtime.overload``).

Starting the loop also lowers the interpreter's GIL switch interval to `SWITCH_INTERVAL_S` (1 ms; Python's
default is 5 ms) for the whole process. The media loops (this one and the browser leg's, on the Streamlit
server's loop) make many short C calls that let go of the GIL: an Opus encode, an SRTP protect, a
``sendto``. Each must win the GIL back, and while another thread runs Python it waits until that thread is
made to yield, up to the switch interval. Measured: a 0.08 ms Opus encode took 7.0 ms of wall time next to
a thread running Python, 1.3 ms at 1 ms. There are several such calls per 20 ms frame per conversation.
(With 4 Chromium tabs on 2 cores the browser leg still read its voice late about as often: there the
machine's CPU runs short, not the GIL.)

At process exit the functions given to `before_exit` run (the bridges hang up their calls), then
`shutdown` cancels and awaits whatever is left and stops the loop, so that no task is destroyed
while pending. That happens in the interpreter's first exit hook, before ``concurrent.futures``
shuts its executors down (aiortc encodes audio in the loop's) and before ``atexit`` handlers run
(one of them stops the app's local engine, which must outlive the hang-ups).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

log = logging.getLogger(__name__)

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_before_exit: list[Callable[[], None]] = []
_exit_hooked = False

THREAD_NAME = "realtime-bridge-loop"


WORKER_PREFIX = "realtime-bridge-worker"
SWITCH_INTERVAL_S = 0.001  # see the module docstring
MAX_WORKERS = 4  # frame encoding, settings.connection(), blocking tools

HEARTBEAT_S = 0.05  # 20 wake-ups a second, whatever the number of calls: negligible work
LATE_S = 0.02  # later than one 20 ms audio frame: the media timers on this loop missed their slot


class LoopLag:
    """How long a loop ran late: a heartbeat every ``HEARTBEAT_S`` adds how late it fired, when
    that is more than ``LATE_S``. The next beat is due ``HEARTBEAT_S`` after this one ran, so a
    stall is counted once, by its length. Runs on the loop; ``behind_s`` may be read anywhere."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._due = 0.0
        self._handle: asyncio.TimerHandle | None = None
        self.beats = 0
        self.behind_s = 0.0

    def start(self) -> None:
        self._due = self._loop.time() + HEARTBEAT_S
        self._handle = self._loop.call_at(self._due, self._beat)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _beat(self) -> None:
        now = self._loop.time()
        late = now - self._due
        self.beats += 1
        if late > LATE_S:
            self.behind_s += late
        self._due = now + HEARTBEAT_S
        self._handle = self._loop.call_at(self._due, self._beat)


_lag: LoopLag | None = None


def _serve(loop: asyncio.AbstractEventLoop, ready: threading.Event, lag: LoopLag) -> None:
    asyncio.set_event_loop(loop)
    loop.set_default_executor(
        concurrent.futures.ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix=WORKER_PREFIX)
    )
    loop.call_soon(lag.start)
    loop.call_soon(ready.set)
    loop.run_forever()


def get_loop() -> asyncio.AbstractEventLoop:
    """The shared loop, started lazily in a daemon thread (thread-safe)."""
    global _loop, _thread, _lag
    with _lock:
        if _loop is not None and _thread is not None and _thread.is_alive():
            return _loop
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        lag = LoopLag(loop)
        thread = threading.Thread(target=_serve, args=(loop, ready, lag), name=THREAD_NAME, daemon=True)
        thread.start()
        ready.wait()
        _loop, _thread, _lag = loop, thread, lag
        _hook_exit()
        return loop


def before_exit(fn: Callable[[], None]) -> None:
    """Call ``fn()`` (from the exiting thread) at process exit while the loop still runs; once per
    ``fn``, the last given first. It may wait for work it hands to the loop."""
    with _lock:
        if fn not in _before_exit:
            _before_exit.append(fn)
        _hook_exit()


def _hook_exit() -> None:
    """Register `_at_exit` once (called under ``_lock``)."""
    global _exit_hooked
    if _exit_hooked:
        return
    _exit_hooked = True
    # threading's exit hooks run first, newest first: this one before concurrent.futures' (registered
    # when it was imported), which shuts every executor down. Private, but the one way to run before it.
    register = getattr(threading, "_register_atexit", None)
    try:
        if register is None:
            raise RuntimeError("no threading._register_atexit")
        register(_at_exit)
    except RuntimeError:  # (exit has begun, or another Python): atexit still runs before the end
        atexit.register(_at_exit)


def _at_exit() -> None:
    with _lock:
        hooks = list(reversed(_before_exit))
    for fn in hooks:
        try:
            fn()
        except Exception:
            log.exception("an exit hook of the bridge loop failed")
    shutdown()


EXIT_WAIT_S = 5.0


def shutdown(timeout: float = EXIT_WAIT_S) -> None:
    """Cancel whatever still runs on the shared loop, wait for it (at most ``timeout`` s) and stop
    the loop: at process exit, so that no task is destroyed while still pending. Idempotent; a
    later `get_loop()` starts a new loop."""
    global _loop, _thread, _lag
    with _lock:
        loop, thread = _loop, _thread
        _loop, _thread, _lag = None, None, None
    if loop is None or thread is None or not thread.is_alive():
        return

    async def finish() -> None:
        me = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not me]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        await loop.shutdown_asyncgens()

    try:
        asyncio.run_coroutine_threadsafe(finish(), loop).result(timeout + 1.0)
    except Exception as exc:
        log.warning("the bridge loop did not finish its tasks at exit: %s", type(exc).__name__)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout)
    if not thread.is_alive():
        loop.close()


def behind_s() -> float:
    """Seconds the shared loop has run late since it started (0 before it has)."""
    lag = _lag
    return lag.behind_s if lag is not None else 0.0


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
