"""One conversation's upstream leg: an aiortc peer to the realtime provider.

The Bridge owns, per conversation, an `RTCPeerConnection` with one sendrecv audio
transceiver (the browser's mic, through `MicTrack`) and the `oai-events` data
channel. The SDP offer goes out through the official SDK
(`AsyncOpenAI(...).realtime.calls.create`), the call id comes from the
`Location` header, and the call is always hung up on close.

It is the IO edge around three folds: provider events are read once by
`realtime.events`, then fed to the call's state (`realtime.call_state`, whose
effects the Bridge carries out), the `Transcript` and the `TurnClock`.

Everything runs on the process's one background loop (`realtime.loop`). The
public methods are called from Streamlit threads or the browser leg's media
loop: they only hand work over (`call_soon` / `run_coro`) and never block,
except `close()`, which waits at most `timeout` seconds. The page reads
`snapshot()`, an immutable value built when it is read.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import logging
import threading
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, cast

import av
from aiortc import MediaStreamTrack, RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from openai import AsyncOpenAI
from openai.types.realtime import RealtimeSessionCreateRequestParam

from realtime import loop as bg
from realtime.call_state import (
    Act,
    Activity,
    CallCreated,
    CallState,
    Effect,
    Failure,
    ForgetImage,
    Lifecycle,
    RunTool,
    Signal,
    State,
    TellEnded,
    transition,
)
from realtime.codecs import negotiated_codec, offer_only
from realtime.errors import BridgeError, classify
from realtime.eventlog import EventLog
from realtime.events import ItemCreate, ServerEvent, Unreadable, decode_message, read_client_event, read_server_event
from realtime.frames import FrameThrottle, ImageWindow, encode_frame
from realtime.metrics import TurnClock, TurnMetrics
from realtime.mic_track import MicTrack
from realtime.pricing import estimate_cost
from realtime.rtc_stats import RtcStats, read_rtc_stats
from realtime.rtc_tuning import tune_peer_connection
from realtime.sdp import normalize_answer
from realtime.settings import Settings, live_changes, restart_required
from realtime.tools import DEFAULT_TOOLS, ToolRegistry
from realtime.transcript import Transcript, TranscriptItem
from realtime.updates import BridgeUpdate, Listener
from realtime.usage import UsageTotals
from realtime.voice_out import PcmSink, VoiceOut

__all__ = ["MAX_MESSAGE_BYTES", "Bridge", "BridgeSnapshot", "RtcStats", "SettingsChange"]

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 65_536  # aiortc's data-channel message cap
STATS_INTERVAL_S = 1.0
CAMERA_TICK_S = 0.25
HANGUP_TIMEOUT_S = 1.5
CONNECT_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class SettingsChange:
    applied: tuple[str, ...]
    needs_restart: tuple[str, ...]


@dataclass(frozen=True)
class BridgeSnapshot:
    state: State
    activity: Activity
    error: BridgeError | None
    transcript: tuple[TranscriptItem, ...]
    turns: tuple[TurnMetrics, ...]
    usage: UsageTotals
    cost_usd: float
    rtc: RtcStats
    call_id: str | None
    images_in_context: int = 0


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def _call_id_from_location(location: str | None) -> str | None:
    if not location:
        return None
    tail = location.rstrip("/").rsplit("/", 1)[-1]
    return tail or None


class Bridge:
    """One conversation's upstream aiortc peer (see module docstring)."""

    def __init__(self, settings: Settings, audio_out: PcmSink, tools: ToolRegistry | None = None) -> None:
        self.settings = settings  # what the caller last asked for; the loop applies it (`_applied`)
        self.tools = tools if tools is not None else DEFAULT_TOOLS
        self.events = EventLog()
        self.transcript = Transcript()
        self.mic = MicTrack()
        self.voice = VoiceOut(audio_out)
        camera = settings.camera
        self.throttle = FrameThrottle(interval_s=float(camera.interval_s))
        self.images = ImageWindow(max_images=int(camera.max_images))
        self.hung_up = False
        self._clock = TurnClock()
        self._turns: tuple[TurnMetrics, ...] = ()
        self._listeners: list[Listener] = []
        self._rtc = RtcStats()
        self._call = CallState()
        self._call_lock = threading.Lock()  # `start()` steps the fold off the loop; the loop does the rest

        # loop-side objects (created/used only on the bridge loop)
        self._applied = settings
        self._pc: RTCPeerConnection | None = None
        self._dc: RTCDataChannel | None = None
        self._client: AsyncOpenAI | None = None
        self._pending: list[str] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._camera_wake: asyncio.Event | None = None
        self._run_future: concurrent.futures.Future[None] | None = None
        self._close_future: concurrent.futures.Future[None] | None = None
        self._api_key: str | None = None
        self._base_url: str | None = None
        self._codec: str | None = None  # what the answer settled on (realtime.codecs)

    # ------------------------------------------------------------------ public API (any thread)

    def start(self) -> None:
        """Connect in the background loop thread. Returns at once."""
        if self._run_future is not None or self._close_future is not None:
            return
        self._step(Lifecycle("connect"))
        self._run_future = bg.run_coro(self._run())

    def on_mic_frame(self, frame: av.AudioFrame) -> None:
        self.mic.push(frame)

    def on_video_frame(self, frame: av.VideoFrame) -> None:
        self.throttle.offer(frame)

    def set_muted(self, muted: bool) -> None:
        self.mic.muted = muted

    def send_text(self, text: str) -> None:
        text = (text or "").strip()
        if text:
            bg.call_soon(self._send_text, text)

    def send_frame_now(self) -> None:
        self.throttle.force()
        bg.call_soon(self._wake_camera)

    def interrupt(self) -> None:
        self.voice.clear()
        bg.call_soon(self._interrupt)

    def start_talking(self) -> None:
        """Push to talk, press: forget what the mic sent since the last turn (input_audio_buffer.clear)."""
        bg.call_soon(self._send, {"type": "input_audio_buffer.clear"})

    def commit_and_respond(self) -> None:
        """Push to talk, release: the user's turn is what the buffer holds; commit it and ask for a reply."""
        bg.call_soon(self._commit_and_respond)

    def add_listener(self, fn: Listener) -> None:
        self._listeners.append(fn)

    def update_settings(self, new: Settings) -> SettingsChange:
        """Report what changed: applied live (one session.update, sent on the loop) or needing a new call.

        The voice cannot change once the assistant has produced audio: it is then
        reported in `needs_restart` (and left out of the update), never silently dropped.
        """
        old, self.settings = self.settings, new
        needs = list(restart_required(old, new))
        live = live_changes(old, new)
        if "voice" in live and self._call.audio_started:
            needs.append("voice")
        bg.call_soon(self._apply_settings, new)
        return SettingsChange(applied=tuple(n for n in live if n not in needs), needs_restart=tuple(needs))

    def snapshot(self) -> BridgeSnapshot:
        call = self._call
        usage = self._clock.usage
        return BridgeSnapshot(
            state=call.state,
            activity=call.activity,
            error=call.error,
            transcript=self.transcript.snapshot(),
            turns=self._turns,
            usage=usage,
            cost_usd=estimate_cost(usage, self.settings.model),
            rtc=self._rtc,
            call_id=call.call_id,
            images_in_context=len(self.images),
        )

    @property
    def call_id(self) -> str | None:
        return self._call.call_id

    @property
    def state(self) -> State:
        return self._call.state

    def close_soon(self) -> concurrent.futures.Future[None]:
        """Start closing (hang up, close the peer) without waiting. Idempotent."""
        if self._close_future is None:
            self._close_future = bg.run_coro(self._close())
        return self._close_future

    def close(self, timeout: float = 2.0) -> None:
        """Hang up the call and close the peer; waits at most `timeout` s. Idempotent."""
        future = self.close_soon()
        if bg.in_loop_thread():
            return  # cannot wait on our own loop; the close runs right after this callback
        try:
            future.result(timeout)
        except concurrent.futures.TimeoutError:
            log.warning("bridge close did not finish within %.1fs", timeout)
        except Exception:
            log.exception("bridge close failed")  # close must not raise into the page

    # ------------------------------------------------------------------ the fold and its effects (loop)

    def _step(self, signal: Signal) -> None:
        with self._call_lock:
            old = self._call
            self._call, effects = transition(old, signal, secrets=self._secrets())
        new = self._call
        if new.error is not None and new.error is not old.error:
            log.warning("bridge error (%s): %s", new.error.kind, new.error.message)
        for effect in effects:
            self._run_effect(effect)

    def _run_effect(self, effect: Effect) -> None:
        if isinstance(effect, Act):
            if effect.kind == "clear_voice":
                self.voice.clear()
            elif effect.kind == "flush_pending":
                pending, self._pending = self._pending, []
                for message in pending:
                    self._channel_send(message)
            else:
                self.close_soon()
        elif isinstance(effect, RunTool):
            self._spawn(self._run_tool(effect))
        elif isinstance(effect, ForgetImage):
            self.images.removed(effect.item_id)
        elif isinstance(effect, TellEnded):
            self._notify(effect.ended)

    def _feed(self, event: ServerEvent | ItemCreate, now: float) -> None:
        """What was said and when: the transcript and the turn clock."""
        for item in self.transcript.apply(event):
            self._notify(item)
        self._completed(self._clock.feed(event, now))

    # ------------------------------------------------------------------ connection (loop)

    async def _run(self) -> None:
        try:
            await self._connect()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._step(Failure(classify(exc, secrets=self._secrets(), base_url=self._base_url), "setup"))
            await self._teardown()

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        # may start the local engine child process (blocking): keep it off the loop
        conn = await loop.run_in_executor(None, self._applied.connection)
        self._api_key, self._base_url = conn.api_key, conn.base_url
        self._client = AsyncOpenAI(base_url=conn.base_url, api_key=conn.api_key, max_retries=0, timeout=15.0)
        pc = RTCPeerConnection()
        self._pc = pc
        offer_only(pc.addTransceiver(self.mic, direction="sendrecv"), self._applied.audio_codec)
        tune_peer_connection(pc)  # the voice is handed on as it arrives (aiortc would hold it 80 ms)
        dc = pc.createDataChannel("oai-events")
        self._dc = dc
        dc.on("open", lambda: self._step(Lifecycle("channel_opened")))
        dc.on("message", self._on_message)
        dc.on("close", lambda: self._step(Lifecycle("channel_closed")))
        pc.on("track", self._on_track)
        pc.on("connectionstatechange", self._on_connection_state)

        await pc.setLocalDescription(await pc.createOffer())
        offer = pc.localDescription.sdp
        # the one rendering of `session` (tests validate it against the SDK's models)
        session = cast(RealtimeSessionCreateRequestParam, self._applied.session_payload(registry=self.tools))
        raw = await self._client.realtime.calls.with_raw_response.create(sdp=offer, session=session)
        self._step(CallCreated(_call_id_from_location(raw.headers.get("location"))))
        answer = raw.http_response.text
        if self._call.closing:
            return
        answer = normalize_answer(offer, answer)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        self._codec = negotiated_codec(answer)
        self._spawn(self._stats_loop())
        self._spawn(self._connect_watchdog())
        self._camera_wake = asyncio.Event()
        self._spawn(self._camera_loop())

    async def _connect_watchdog(self) -> None:
        await asyncio.sleep(CONNECT_TIMEOUT_S)
        message = (
            f"No media connection to the realtime server after {CONNECT_TIMEOUT_S:.0f} s. "
            "Outbound UDP (port 3478 and high ports) must be allowed from this server."
        )
        self._step(Failure(BridgeError("connection", message), "deadline"))

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._spawn(self.voice.run(track))

    def _on_connection_state(self) -> None:
        if self._pc is None:
            return
        state = self._pc.connectionState
        if state == "failed":
            error = BridgeError("connection", "The connection to the realtime server failed (ICE/DTLS).")
            self._step(Failure(error, "peer"))
        elif state == "closed":
            self._step(Lifecycle("peer_closed"))

    # ------------------------------------------------------------------ sending (loop)

    def _send(self, event: dict[str, Any]) -> bool:
        if not self._call.accepts_sends:
            return False
        event.setdefault("event_id", _new_id("evt"))
        message = json.dumps(event)
        size = len(message.encode("utf-8"))
        if size > MAX_MESSAGE_BYTES:
            self._local_error(
                f"A {event.get('type')} event of {size} bytes is over the "
                f"{MAX_MESSAGE_BYTES}-byte data-channel limit and was not sent."
            )
            return False
        self.events.record("client", event)
        sent = read_client_event(event)
        if isinstance(sent, ItemCreate):  # typed text, images, tool results
            self._feed(sent, time.monotonic())
        else:
            self._completed(self._clock.feed(sent, time.monotonic()))
        if self._call.channel_open:
            self._channel_send(message)
        else:
            self._pending.append(message)
        return True

    def _channel_send(self, message: str) -> None:
        if self._dc is not None and self._dc.readyState == "open":
            self._dc.send(message)
        else:
            self._pending.append(message)

    def _send_text(self, text: str) -> None:
        item = {
            "id": _new_id("msg"),
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        }
        self._send({"type": "conversation.item.create", "item": item})
        self._send({"type": "response.create"})

    def _interrupt(self) -> None:
        if self._call.response_active:
            self._send({"type": "response.cancel"})
        self._send({"type": "output_audio_buffer.clear"})

    def _commit_and_respond(self) -> None:
        if self._send({"type": "input_audio_buffer.commit"}):
            self._send({"type": "response.create"})

    def _apply_settings(self, new: Settings) -> None:
        """Send ONE session.update for what the provider can take mid-call."""
        old, self._applied = self._applied, new
        self.throttle.interval_s = float(new.camera.interval_s)
        voice_fixed = "voice" in live_changes(old, new) and self._call.audio_started
        omit = ("model", "voice") if voice_fixed else ("model",)
        session = new.session_payload(omit=omit, registry=self.tools)
        if session != old.session_payload(omit=omit, registry=self.tools):
            self._send({"type": "session.update", "session": session})

    def _wake_camera(self) -> None:
        if self._camera_wake is not None:
            self._camera_wake.set()

    # ------------------------------------------------------------------ receiving (loop)

    def _on_message(self, message: str | bytes) -> None:
        try:
            raw = decode_message(message)
        except ValueError as exc:
            self._local_error(f"Ignored a malformed server event ({len(message)} bytes): {exc}")
            return
        self.events.record("server", raw)
        event = read_server_event(raw)
        if isinstance(event, Unreadable):
            log.debug("unreadable server event %s: %s", event.type, event.reason)
        try:
            self._feed(event, time.monotonic())
            self._step(event)
        except Exception as exc:  # one bad event must not end the call
            log.exception("error handling server event %s", raw["type"])
            self._local_error(f"Could not handle server event {raw['type']}: {type(exc).__name__}: {exc}")

    def _completed(self, turns: tuple[TurnMetrics, ...]) -> None:
        for metrics in turns:
            self._turns = (*self._turns, metrics)
            self._notify(metrics)

    def _notify(self, update: BridgeUpdate) -> None:
        for fn in list(self._listeners):
            try:
                fn(update)
            except Exception:
                log.exception("bridge listener failed")

    # ------------------------------------------------------------------ tools (loop)

    async def _run_tool(self, call: RunTool) -> None:
        output = await self.tools.run(call.name, call.arguments)
        item = {"type": "function_call_output", "call_id": call.call_id, "output": output}
        if self._send({"type": "conversation.item.create", "item": item}):
            # let the model answer with the result (after any response still running ends)
            self._send({"type": "response.create"})

    # ------------------------------------------------------------------ camera (loop)

    async def _camera_loop(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._camera_wake is not None
        while True:
            try:
                await asyncio.wait_for(self._camera_wake.wait(), CAMERA_TICK_S)
            except TimeoutError:
                pass
            self._camera_wake.clear()
            camera = self._applied.camera
            if self._call.state != "connected" or not self.throttle.has_frame:
                continue
            if not camera.enabled and not self.throttle.force_pending:  # "send now" works with the camera off
                continue
            frame = await loop.run_in_executor(None, self.throttle.due)
            if frame is None:
                continue
            item_id = _new_id("img")
            try:
                encode = functools.partial(
                    encode_frame, frame, max_side=int(camera.max_side), detail=camera.detail, item_id=item_id
                )
                encoded = await loop.run_in_executor(None, encode)
            except ValueError as exc:
                self._local_error(f"Camera frame not sent: {exc}")
                continue
            if self._send(encoded.item_event):
                for old in self.images.added(item_id):
                    self._send({"type": "conversation.item.delete", "item_id": old})

    # ------------------------------------------------------------------ stats (loop)

    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(STATS_INTERVAL_S)
            pc = self._pc
            if pc is None:
                return
            try:
                report = await pc.getStats()
            except Exception:  # stats are best effort
                continue
            self._rtc = read_rtc_stats(report, self.voice.stats(), self.mic.stats(), self._codec)
            self._completed(self._clock.tick(time.monotonic()))  # spoken turns whose audio never started

    # ------------------------------------------------------------------ errors

    def _secrets(self) -> tuple[str, ...]:
        return tuple(k for k in (self.settings.api_key, self._api_key) if k)

    def _local_error(self, message: str) -> None:
        """An error the page should show that did not come from the provider."""
        log.warning("bridge: %s", message)
        self._notify(self.transcript.add_system_note(message, role="error"))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------------ close (loop)

    async def _close(self) -> None:
        self._step(Lifecycle("close_requested"))
        if self._run_future is not None and not self._run_future.done():
            # the connect is still in flight: let calls.create finish (so we learn the
            # call id and can hang up) but not longer than the hangup budget
            wrapped = asyncio.wrap_future(self._run_future)
            try:
                await asyncio.wait_for(asyncio.shield(wrapped), HANGUP_TIMEOUT_S)
            except Exception:
                self._run_future.cancel()
        await self._teardown()
        self._step(Lifecycle("closed"))

    async def _teardown(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._hangup()
        self.mic.stop()
        if self._pc is not None:
            try:
                await self._pc.close()
            except Exception:
                log.exception("closing the upstream peer failed")
        if self._client is not None:
            try:
                await self._client.close()
            except Exception:
                log.debug("closing the SDK client failed", exc_info=True)
            self._client = None

    async def _hangup(self) -> None:
        call_id, client = self._call.call_id, self._client
        if call_id is None or client is None or self.hung_up:
            return
        try:
            await client.realtime.calls.hangup(call_id, timeout=HANGUP_TIMEOUT_S)
            self.hung_up = True
        except Exception as exc:  # the call may already be gone
            log.warning("hangup of %s failed: %s", call_id, type(exc).__name__)
