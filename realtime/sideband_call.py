"""A call another client placed through the studio (the SDP proxy), watched and served over its sideband.

The client's browser or app holds the media; the studio created the call with its own key and keeps
the call's sideband WebSocket (``client.realtime.connect(call_id=...)`` through the official SDK). On
it the studio sees every event, runs the configured tools (a ``function_call_output`` and a
``response.create`` for each call the model makes) and forwards the client's camera frames as
``input_image`` items. It keeps what an in-app call keeps for the pages (the event log, the
transcript, turn metrics and cost, the images sent) and tells the same listeners (History).

The call's state is the same fold as an in-app call's (``realtime.call_state``), driven by the
sideband: it is "connected" once the sideband is up and "closed" when it ends. The studio cannot
reconnect another client's media, so a lost sideband ends the call. Everything runs on the shared
bridge loop (``realtime.loop``); the public methods may be called from any thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Coroutine
from typing import Any

from openai import AsyncOpenAI

from realtime.bridge import BridgeSnapshot
from realtime.call_state import (
    CallCreated,
    CallState,
    Failure,
    Lifecycle,
    Note,
    RunTool,
    Signal,
    TellEnded,
    transition,
)
from realtime.errors import classify
from realtime.eventlog import EventLog
from realtime.events import ServerEvent, Unreadable, decode_message, read_client_event, read_server_event
from realtime.frames import EncodedImage
from realtime.image_log import ImageLog, SentImage
from realtime.loop import call_soon, run_coro
from realtime.metrics import TurnClock, TurnMetrics
from realtime.pricing import estimate_cost
from realtime.rtc_stats import RtcStats
from realtime.settings import Connection, Settings
from realtime.tools import ToolRegistry
from realtime.transcript import Transcript
from realtime.updates import BridgeUpdate, Listener

__all__ = ["SidebandCall"]

log = logging.getLogger(__name__)

HANGUP_TIMEOUT_S = 3.0


class SidebandCall:
    """One call placed for another client (see module docstring). ``source`` says who placed it."""

    def __init__(
        self,
        call_id: str,
        settings: Settings,
        connection: Connection,
        tools: ToolRegistry,
        *,
        source: str = "api",
    ) -> None:
        self.call_id = call_id
        self.settings = settings
        self.source = source
        self.started_at = time.time()
        self.ended_at: float | None = None
        self.events = EventLog()
        self.transcript = Transcript()
        self.image_log = ImageLog()
        self._connection = connection
        self._tools = tools
        self._clock = TurnClock()
        self._turns: tuple[TurnMetrics, ...] = ()
        self._listeners: list[Listener] = []
        self._call = CallState()
        self._sideband: Any = None  # the SDK's AsyncRealtimeConnection, while it is open
        self._client: AsyncOpenAI | None = None
        self._task: concurrent.futures.Future[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._hung_up = False
        self._step(Lifecycle("connect", at=time.monotonic()))
        self._step(CallCreated(call_id))

    # ------------------------------------------------------------------ public API (any thread)

    def start(self) -> None:
        """Attach the sideband in the background. Returns at once."""
        if self._task is None:
            self._task = run_coro(self._run())

    def add_listener(self, fn: Listener) -> None:
        self._listeners.append(fn)

    def send_image(self, image: EncodedImage) -> None:
        """Forward a frame the client posted: an ``input_image`` item (it answers nothing by itself)."""
        call_soon(self._send_image, image)

    def hangup(self) -> concurrent.futures.Future[None]:
        """Hang the call up at the provider and let the sideband go. Idempotent."""
        return run_coro(self._hangup())

    @property
    def state(self) -> str:
        return self._call.state

    @property
    def live(self) -> bool:
        return self._call.state in ("connecting", "connected")

    def snapshot(self) -> BridgeSnapshot:
        call, usage = self._call, self._clock.usage
        return BridgeSnapshot(
            state=call.state,
            activity=call.activity,
            error=call.error,
            transcript=self.transcript.snapshot(),
            turns=self._turns,
            usage=usage,
            cost_usd=estimate_cost(usage, self.settings.model),
            rtc=RtcStats(),
            call_id=self.call_id,
            sent_images=self.image_log.snapshot(),
        )

    # ------------------------------------------------------------------ the fold (loop)

    def _step(self, signal: Signal) -> None:
        self._call, effects = transition(self._call, signal, secrets=self._secrets())
        for effect in effects:
            if isinstance(effect, RunTool):
                self._spawn(self._run_tool(effect))
            elif isinstance(effect, TellEnded):
                self.ended_at = time.time()
                self._notify(effect.ended)
            elif isinstance(effect, Note):
                self._notify(self.transcript.add_system_note(effect.text, role=effect.role))
            # Act, Reconnect, Restore, ForgetImage: the client holds the media; nothing to do here

    def _secrets(self) -> tuple[str, ...]:
        return (self._connection.api_key,) if self._connection.api_key else ()

    def _notify(self, update: BridgeUpdate) -> None:
        for fn in list(self._listeners):
            try:
                fn(update)
            except Exception:
                log.exception("sideband call listener failed")

    def _feed(self, event: ServerEvent, now: float) -> None:
        for item in self.transcript.apply(event):
            self._notify(item)
        for metrics in self._clock.feed(event, now):
            self._turns = (*self._turns, metrics)
            self._notify(metrics)

    # ------------------------------------------------------------------ IO (loop)

    async def _run(self) -> None:
        conn = self._connection
        self._client = AsyncOpenAI(base_url=conn.base_url, api_key=conn.api_key, max_retries=0, timeout=15.0)
        try:
            async with self._client.realtime.connect(call_id=self.call_id) as sideband:
                self._sideband = sideband
                self._step(Lifecycle("channel_opened", at=time.monotonic()))
                while True:
                    message = await sideband.recv_bytes()
                    self._on_message(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not self._call.closing and self._call.state == "connecting":
                error = classify(exc, secrets=self._secrets(), base_url=self._connection.base_url)
                self._step(Failure(error, "setup", at=time.monotonic()))
            log.info("sideband of %s ended: %s", self.call_id, type(exc).__name__)
        finally:
            self._sideband = None
            self._step(Lifecycle("close_requested", at=time.monotonic()))
            self._step(Lifecycle("closed", at=time.monotonic()))
            await self._close_client()

    def _on_message(self, message: str | bytes) -> None:
        try:
            raw = decode_message(message)
        except ValueError as exc:
            self._notify(self.transcript.add_system_note(f"Ignored a malformed server event: {exc}", role="error"))
            return
        self.events.record("server", raw)
        event = read_server_event(raw)
        if isinstance(event, Unreadable):
            log.debug("unreadable server event %s: %s", event.type, event.reason)
        try:
            self._feed(event, time.monotonic())
            self._step(event)
        except Exception as exc:  # one bad event must not end the call
            log.exception("error handling server event %s", raw.get("type"))
            self._notify(
                self.transcript.add_system_note(f"Could not handle server event {raw.get('type')}: {exc}", role="error")
            )

    def _send(self, event: dict[str, Any]) -> None:
        sideband = self._sideband
        if sideband is None:
            return
        self.events.record("client", event)
        created = read_client_event(event)
        now = time.monotonic()
        if not isinstance(created, Unreadable):
            for item in self.transcript.apply(created):
                self._notify(item)
            self._clock.feed(created, now)
        self._spawn(sideband.send(event))

    def _send_image(self, image: EncodedImage) -> None:
        if self._sideband is None:
            return
        self._send(image.item_event)
        item_id = image.item_id or str(image.item_event["item"].get("id", ""))
        detail = str(image.item_event["item"]["content"][0].get("detail", "auto"))
        self.image_log.sent(
            SentImage(
                item_id=item_id,
                at=time.time(),
                source="client",
                width=image.width,
                height=image.height,
                size_bytes=len(image.jpeg),
                detail=detail,
                thumbnail=image.thumbnail,
            )
        )

    async def _run_tool(self, call: RunTool) -> None:
        output = await self._tools.run(call.name, call.arguments)
        item = {"type": "function_call_output", "call_id": call.call_id, "output": output}
        self._send({"type": "conversation.item.create", "item": item})
        self._send({"type": "response.create"})

    async def _hangup(self) -> None:
        if self._hung_up:
            return
        self._hung_up = True
        self._step(Lifecycle("close_requested", at=time.monotonic()))
        client = self._client or AsyncOpenAI(
            base_url=self._connection.base_url, api_key=self._connection.api_key, max_retries=0
        )
        try:
            await client.realtime.calls.hangup(self.call_id, timeout=HANGUP_TIMEOUT_S)
        except Exception as exc:  # the call may already be gone
            log.info("hangup of %s: %s", self.call_id, type(exc).__name__)
        if self._task is not None and not self._task.done():
            self._task.cancel()
        elif self._task is None:
            self._step(Lifecycle("closed", at=time.monotonic()))
        if client is not self._client:
            await client.close()

    async def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.close()
            except Exception:
                log.debug("closing the SDK client failed", exc_info=True)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
