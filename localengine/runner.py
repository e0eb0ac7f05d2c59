"""Run the engine in a background thread (its own asyncio loop, uvicorn) on a loopback port.

    with start_engine() as engine:
        client = AsyncOpenAI(base_url=engine.base_url, api_key="anything")

``stop()`` closes every call, peer and WebSocket, stops uvicorn, shuts the speech pool down and
joins the thread. It is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

import uvicorn

from .config import EngineConfig
from .server import EngineState, EngineStats, build_app

__all__ = ["RunningEngine", "start_engine"]

T = TypeVar("T")
START_TIMEOUT = 15.0


class _DenialLogFilter(logging.Filter):
    """uvicorn's websockets-sansio protocol logs a false error after a handshake denial, and a
    traceback for a client's text frame that is not UTF-8 (client input must not put a traceback
    in the log: that one becomes a one-line WARNING).

    The engine refuses bad WebSocket keys with an HTTP 401 through the ASGI denial-response
    extension; uvicorn 0.54 writes that response correctly and then, because it does not mark the
    handshake complete, logs "ASGI callable returned without completing handshake." (and sends
    nothing more). Only that one message is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message == "ASGI callable returned without completing handshake.":
            return False
        if message == "Invalid UTF-8 sequence received from client.":
            # A client's bad text frame (uvicorn answers it with close 1007): one line, no traceback.
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


_denial_filter = _DenialLogFilter()


class RunningEngine:
    """A started engine. ``base_url`` is e.g. ``http://127.0.0.1:41234/v1``."""

    def __init__(self, config: EngineConfig, host: str, port: int) -> None:
        self.config = config
        self.host = host
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, port))
        except OSError:
            self._sock.close()
            raise
        self.port: int = self._sock.getsockname()[1]
        uvicorn_error = logging.getLogger("uvicorn.error")
        if _denial_filter not in uvicorn_error.filters:
            uvicorn_error.addFilter(_denial_filter)
        self.app = build_app(config)
        self.state: EngineState = self.app.state.engine
        self._server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                log_level="warning",
                access_log=False,
                ws="websockets-sansio",
                lifespan="on",
                timeout_graceful_shutdown=5,
            )
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._baseline: set[asyncio.Task[Any]] = set()
        self.leftover_tasks: tuple[str, ...] = ()
        self._error: BaseException | None = None
        self._ready = threading.Event()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=f"localengine-{self.port}", daemon=True)

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1) + "/realtime"

    # -- thread ----------------------------------------------------------------------------

    def _start(self) -> None:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT) or self._error is not None:
            self.stop()
            raise RuntimeError(f"localengine did not start: {self._error or 'timed out'}")

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to the starter; nothing else to do on this thread
            self._error = exc
        finally:
            try:
                rest = [t for t in asyncio.all_tasks(loop) if not t.done()]
                self.leftover_tasks = tuple(sorted(t.get_name() for t in rest))
                for task in rest:
                    task.cancel()
                if rest:
                    loop.run_until_complete(asyncio.gather(*rest, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                asyncio.set_event_loop(None)
                loop.close()
                self._ready.set()

    async def _serve(self) -> None:
        serve = asyncio.ensure_future(self._server.serve(sockets=[self._sock]))
        while not self._server.started and not serve.done():
            await asyncio.sleep(0.01)
        if serve.done():
            serve.result()
            return
        self._baseline = set(asyncio.all_tasks())
        self._ready.set()
        await serve

    # -- control ---------------------------------------------------------------------------

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        """Run a coroutine on the engine's loop and wait for its result (from another thread)."""
        if self._loop is None or self._loop.is_closed():
            coro.close()
            raise RuntimeError("engine is not running")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stats(self) -> EngineStats:
        async def get() -> EngineStats:
            return self.state.stats()

        return self.call(get())

    def live_tasks(self) -> tuple[str, ...]:
        """Names of engine-loop tasks started since the server came up (sessions, peers, jobs)."""

        async def get() -> tuple[str, ...]:
            me = asyncio.current_task()
            return tuple(sorted(t.get_name() for t in asyncio.all_tasks() if t is not me and t not in self._baseline))

        return self.call(get())

    def stop(self, timeout: float = 15.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        loop = self._loop
        if loop is not None and not loop.is_closed() and self._thread.is_alive():
            with contextlib.suppress(Exception):  # still stop the server below
                self.call(self.state.close_all(), timeout=timeout)
            self._server.should_exit = True
        if self._thread.is_alive() or self._thread.ident is not None:
            self._thread.join(timeout)
        self.state.executor.shutdown(wait=True, cancel_futures=True)
        self.state.recognizer.shutdown(wait=True, cancel_futures=True)
        self._sock.close()
        if self._thread.is_alive():
            raise RuntimeError("localengine thread did not stop in time")

    def __enter__(self) -> RunningEngine:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_engine(config: EngineConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> RunningEngine:
    """Start the engine in a background thread and return once it accepts connections."""
    engine = RunningEngine(config or EngineConfig(), host, port)
    engine._start()
    return engine
