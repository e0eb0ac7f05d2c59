"""One conversation's upstream leg: an aiortc peer to the realtime provider.

The Bridge owns, per conversation, an `RTCPeerConnection` with one sendrecv audio
transceiver (the browser's mic, through `MicTrack`) and the `oai-events` data
channel. The SDP offer goes out through the official SDK
(`AsyncOpenAI(...).realtime.calls.create`), the call id comes from the
`Location` header, and the call is always hung up on close.

Everything runs on the process's one background loop (`realtime.loop`). The
public methods are called from Streamlit threads or the browser leg's media
loop: they only hand work over (`call_soon` / `run_coro`) and never block,
except `close()`, which waits at most `timeout` seconds.

State the page reads (`snapshot()`) is rebuilt on the loop after every change
and published as one immutable `BridgeSnapshot`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import av
from aiortc import RTCPeerConnection, RTCSessionDescription
from openai import AsyncOpenAI

from realtime import loop as bg
from realtime.errors import BridgeError, classify, from_error_event
from realtime.eventlog import EventLog
from realtime.frames import FrameThrottle, ImageWindow, encode_frame
from realtime.metrics import TurnClock, TurnMetrics, UsageTotals
from realtime.mic_track import MicTrack
from realtime.pricing import estimate_cost
from realtime.rtc_tuning import tune_peer_connection
from realtime.sdp import normalize_answer
from realtime.settings import Settings, live_changes, restart_required
from realtime.tools import DEFAULT_TOOLS, ToolRegistry
from realtime.transcript import Transcript, TranscriptItem
from realtime.updates import CallEnded
from realtime.voice_out import VoiceOut

__all__ = ["MAX_MESSAGE_BYTES", "Bridge", "BridgeSnapshot", "RtcStats", "SettingsChange"]

log = logging.getLogger(__name__)

State = Literal["idle", "connecting", "connected", "closed", "failed"]
Activity = Literal["idle", "listening", "user_speaking", "assistant_speaking"]

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
class RtcStats:
    rtt_ms: float | None = None
    jitter_ms: float | None = None
    packets_sent: int = 0
    packets_received: int = 0
    packets_lost: int = 0
    mic_level: float = 0.0  # rms of the mic sent upstream, 0..1
    voice_level: float = 0.0  # rms of the assistant's voice received, 0..1
    voice_buffer_ms: float = 0.0
    voice_dropped_ms: float = 0.0


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

    # the contract's names for the same things
    @property
    def items(self) -> tuple[TranscriptItem, ...]:
        return self.transcript


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


def _call_id_from_location(location: str | None) -> str | None:
    if not location:
        return None
    tail = location.rstrip("/").rsplit("/", 1)[-1]
    return tail or None


class Bridge:
    """One conversation's upstream aiortc peer (see module docstring)."""

    def __init__(
        self,
        settings: Settings,
        audio_out: Any,
        tools: ToolRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.tools = tools if tools is not None else DEFAULT_TOOLS
        self.events = EventLog()
        self.transcript = Transcript()
        self.mic = MicTrack()
        self.voice = VoiceOut(audio_out)
        camera = settings.camera
        self.throttle = FrameThrottle(interval_s=float(camera.interval_s))
        self.images = ImageWindow(max_images=int(camera.max_images))
        self._clock = TurnClock()
        self._turns: list[TurnMetrics] = []
        self._listeners: list[Callable[[Any], None]] = []

        self._state: State = "idle"
        self._activity: Activity = "idle"
        self._error: BridgeError | None = None
        self._call_id: str | None = None
        self._rtc = RtcStats()
        self._snapshot = self._build_snapshot()

        # loop-side objects (created/used only on the bridge loop)
        self._pc: RTCPeerConnection | None = None
        self._dc: Any = None
        self._client: AsyncOpenAI | None = None
        self._pending: list[str] = []
        self._tasks: set[asyncio.Task] = set()
        self._tool_calls: dict[str, asyncio.Task] = {}
        self._response_active = False
        self._audio_started = False
        self._camera_wake: asyncio.Event | None = None
        self._run_future: concurrent.futures.Future | None = None
        self._close_future: concurrent.futures.Future | None = None
        self._closing = False
        self._api_key: str | None = None
        self._base_url: str | None = None
        self.hung_up = False
        self._ended_told = False

    # ------------------------------------------------------------------ public API (any thread)

    def start(self) -> None:
        """Connect in the background loop thread. Returns at once."""
        if self._run_future is not None or self._closing:
            return
        self._state = "connecting"
        self._publish()
        self._run_future = bg.run_coro(self._run())

    def on_mic_frame(self, frame: av.AudioFrame) -> None:
        self.mic.push(frame)

    def on_video_frame(self, frame: av.VideoFrame) -> None:
        self.throttle.offer(frame)

    def set_muted(self, muted: bool) -> None:
        self.mic.muted = muted

    def send_text(self, text: str) -> None:
        text = (text or "").strip()
        if not text:
            return
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

    def add_listener(self, fn: Callable[[Any], None]) -> None:
        self._listeners.append(fn)

    def update_settings(self, new: Settings) -> SettingsChange:
        """Send ONE session.update for what changed; report what needs a new call.

        The voice cannot change once the assistant has produced audio: it is then
        reported in `needs_restart` (and left out of the update), never silently dropped.
        """
        old = self.settings
        needs = list(restart_required(old, new))
        live = live_changes(old, new)
        if "voice" in live and self._audio_started:
            needs.append("voice")
        applied = tuple(name for name in live if name not in needs)
        self.settings = new
        self.throttle.interval_s = float(new.camera.interval_s)
        omit = ("model", "voice") if "voice" in needs else ("model",)
        session = new.session_payload(omit=omit, registry=self.tools)
        if session != old.session_payload(omit=omit, registry=self.tools):
            bg.call_soon(self._send, {"type": "session.update", "session": session})
        return SettingsChange(applied=applied, needs_restart=tuple(needs))

    def snapshot(self) -> BridgeSnapshot:
        return self._snapshot

    @property
    def call_id(self) -> str | None:
        return self._call_id

    @property
    def state(self) -> State:
        return self._state

    def close_soon(self) -> concurrent.futures.Future[None]:
        """Start closing (hang up, close the peer) without waiting. Idempotent."""
        if self._close_future is None:
            self._closing = True
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
            log.exception("bridge close failed")

    # ------------------------------------------------------------------ connection (loop)

    async def _run(self) -> None:
        try:
            await self._connect()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(exc)
            await self._teardown()

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        # may start the local engine child process (blocking): keep it off the loop
        conn = await loop.run_in_executor(None, self.settings.connection)
        self._api_key, self._base_url = conn.api_key, conn.base_url
        self._client = AsyncOpenAI(base_url=conn.base_url, api_key=conn.api_key, max_retries=0, timeout=15.0)
        pc = RTCPeerConnection()
        self._pc = pc
        pc.addTransceiver(self.mic, direction="sendrecv")
        tune_peer_connection(pc)  # the voice is handed on as it arrives (aiortc would hold it 80 ms)
        dc = pc.createDataChannel("oai-events")
        self._dc = dc
        dc.on("open", self._on_channel_open)
        dc.on("message", self._on_message)
        dc.on("close", self._on_channel_close)
        pc.on("track", self._on_track)
        pc.on("connectionstatechange", self._on_connection_state)

        await pc.setLocalDescription(await pc.createOffer())
        offer = pc.localDescription.sdp
        session = self.settings.session_payload(registry=self.tools)
        raw = await self._client.realtime.calls.with_raw_response.create(sdp=offer, session=session)
        self._call_id = _call_id_from_location(raw.headers.get("location"))
        answer = raw.http_response.text
        self._publish()
        if self._closing:
            return
        await pc.setRemoteDescription(RTCSessionDescription(sdp=normalize_answer(offer, answer), type="answer"))
        self._spawn(self._stats_loop())
        self._spawn(self._connect_watchdog())
        self._camera_wake = asyncio.Event()
        self._spawn(self._camera_loop())

    async def _connect_watchdog(self) -> None:
        await asyncio.sleep(CONNECT_TIMEOUT_S)
        if self._state == "connecting":
            self._set_error(
                BridgeError(
                    "connection",
                    f"No media connection to the realtime server after {CONNECT_TIMEOUT_S:.0f} s. "
                    "Outbound UDP (port 3478 and high ports) must be allowed from this server.",
                ),
                fatal=True,
            )
            self.close_soon()

    def _on_track(self, track: Any) -> None:
        if track.kind == "audio":
            self._spawn(self.voice.run(track))

    def _on_connection_state(self) -> None:
        if self._pc is None or self._closing:
            return
        state = self._pc.connectionState
        if state == "failed":
            self._set_error(
                BridgeError("connection", "The connection to the realtime server failed (ICE/DTLS).", None), fatal=True
            )
        elif state == "closed" and self._state != "failed":
            self._state = "closed"
            self._publish()

    def _on_channel_open(self) -> None:
        if self._state == "connecting":
            self._state = "connected"
            self._activity = "listening"
        pending, self._pending = self._pending, []
        for message in pending:
            self._dc.send(message)
        self._publish()

    def _on_channel_close(self) -> None:
        if not self._closing and self._state == "connected":
            self._state = "closed"
            self._publish()

    # ------------------------------------------------------------------ sending (loop)

    def _send(self, event: dict) -> bool:
        if self._closing or self._state in ("closed", "failed"):
            return False
        event.setdefault("event_id", _new_id("evt"))
        message = json.dumps(event)
        if len(message.encode("utf-8")) > MAX_MESSAGE_BYTES:
            self._local_error(
                f"A {event.get('type')} event of {len(message.encode('utf-8'))} bytes is over the "
                f"{MAX_MESSAGE_BYTES}-byte data-channel limit and was not sent."
            )
            return False
        self.events.record("client", event)
        self._completed(self._clock.feed(event, time.monotonic()))
        if event["type"] == "conversation.item.create":
            for item in self.transcript.apply(event):  # typed text, images, tool results
                self._notify(item)
        if self._dc is not None and self._dc.readyState == "open":
            self._dc.send(message)
        else:
            self._pending.append(message)
        return True

    def _send_text(self, text: str) -> None:
        item_id = _new_id("msg")
        self._send(
            {
                "type": "conversation.item.create",
                "item": {
                    "id": item_id,
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": text}],
                },
            }
        )
        self._send({"type": "response.create"})

    def _interrupt(self) -> None:
        if self._response_active:
            self._send({"type": "response.cancel"})
        self._send({"type": "output_audio_buffer.clear"})

    def _commit_and_respond(self) -> None:
        if self._send({"type": "input_audio_buffer.commit"}):
            self._send({"type": "response.create"})

    def _wake_camera(self) -> None:
        if self._camera_wake is not None:
            self._camera_wake.set()

    # ------------------------------------------------------------------ receiving (loop)

    def _on_message(self, message: str | bytes) -> None:
        try:
            event = json.loads(message)
            if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                raise ValueError("not a JSON object with a string 'type'")
        except ValueError as exc:
            size = len(message)
            self._local_error(f"Ignored a malformed server event ({size} bytes): {exc}")
            return
        try:
            self._on_event(event)
        except Exception as exc:
            log.exception("error handling server event %s", event.get("type"))
            self._local_error(f"Could not handle server event {event.get('type')}: {type(exc).__name__}: {exc}")
        self._publish()

    def _on_event(self, event: dict) -> None:
        kind = event["type"]
        now = time.monotonic()
        self.events.record("server", event)
        for item in self.transcript.apply(event):
            self._notify(item)
        self._feed_clock(event, now)

        if kind == "input_audio_buffer.speech_started":
            self.voice.clear()  # barge-in: the user talks over the assistant
            self._activity = "user_speaking"
        elif kind == "input_audio_buffer.speech_stopped":
            self._activity = "listening"
        elif kind == "response.created":
            self._response_active = True
        elif kind == "output_audio_buffer.started":
            self._audio_started = True
            self._activity = "assistant_speaking"
        elif kind in ("output_audio_buffer.stopped", "output_audio_buffer.cleared"):
            self._activity = "listening"
        elif kind in ("response.output_audio_transcript.delta", "response.audio_transcript.delta"):
            self._audio_started = True
        elif kind == "response.function_call_arguments.done":
            self._start_tool(event.get("call_id"), event.get("name"), event.get("arguments"))
        elif kind == "response.done":
            self._on_response_done(event)
        elif kind == "conversation.item.deleted":
            item_id = event.get("item_id")
            if isinstance(item_id, str):
                self.images.removed(item_id)
        elif kind == "error":
            self._set_error(from_error_event(event, secrets=self._secrets()), fatal=False)

    def _on_response_done(self, event: dict) -> None:
        self._response_active = False
        response = event.get("response") or {}
        if not isinstance(response, dict):
            return
        for item in response.get("output") or ():
            if isinstance(item, dict) and item.get("type") == "function_call":
                self._start_tool(item.get("call_id"), item.get("name"), item.get("arguments"))
        if response.get("status") == "failed":
            details = response.get("status_details") or {}
            error = details.get("error") if isinstance(details, dict) else None
            if isinstance(error, dict):
                self._set_error(
                    from_error_event({"type": "error", "error": error}, secrets=self._secrets()), fatal=False
                )

    def _feed_clock(self, event: dict, now: float) -> None:
        # TurnClock holds a spoken turn whose response.done came before its playback started
        self._completed(self._clock.feed(event, now))

    def _completed(self, turns: tuple[TurnMetrics, ...]) -> None:
        for metrics in turns:
            self._turns.append(metrics)
            self._notify(metrics)

    def _notify(self, update: Any) -> None:
        for fn in list(self._listeners):
            try:
                fn(update)
            except Exception:
                log.exception("bridge listener failed")

    # ------------------------------------------------------------------ tools (loop)

    def _start_tool(self, call_id: Any, name: Any, arguments: Any) -> None:
        if not isinstance(call_id, str) or not isinstance(name, str) or call_id in self._tool_calls:
            return
        self._tool_calls[call_id] = self._spawn(self._run_tool(call_id, name, arguments))

    async def _run_tool(self, call_id: str, name: str, arguments: Any) -> None:
        output = await self.tools.run(name, arguments if isinstance(arguments, (str, bytes)) else None)
        sent = self._send(
            {
                "type": "conversation.item.create",
                "item": {"type": "function_call_output", "call_id": call_id, "output": output},
            }
        )
        if sent:
            # let the model answer with the result (after any response still running ends)
            self._send({"type": "response.create"})
        self._publish()

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
            camera = self.settings.camera
            if self._state != "connected" or not self.throttle.has_frame:
                continue
            if not camera.enabled and not self.throttle._force:
                continue
            frame = await loop.run_in_executor(None, self.throttle.due)
            if frame is None:
                continue
            item_id = _new_id("img")
            try:
                encoded = await loop.run_in_executor(
                    None,
                    lambda: encode_frame(frame, max_side=int(camera.max_side), detail=camera.detail, item_id=item_id),
                )
            except ValueError as exc:
                self._local_error(f"Camera frame not sent: {exc}")
                continue
            if self._send(encoded.item_event):
                for old in self.images.added(item_id):
                    self._send({"type": "conversation.item.delete", "item_id": old})
                self._publish()

    # ------------------------------------------------------------------ stats (loop)

    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(STATS_INTERVAL_S)
            pc = self._pc
            if pc is None:
                return
            try:
                report = await pc.getStats()
            except Exception:
                continue
            self._rtc = _rtc_stats(report, self.voice.stats(), self.mic)
            self._completed(self._clock.tick(time.monotonic()))  # spoken turns whose audio never started
            self._publish()

    # ------------------------------------------------------------------ errors and state

    def _secrets(self) -> tuple[str, ...]:
        return tuple(k for k in (self.settings.api_key, self._api_key) if k)

    def _fail(self, exc: BaseException) -> None:
        self._set_error(classify(exc, secrets=self._secrets(), base_url=self._base_url), fatal=True)

    def _set_error(self, error: BridgeError, fatal: bool) -> None:
        self._error = error
        log.warning("bridge error (%s): %s", error.kind, error.message)
        if fatal:
            self._state = "failed"
            self._activity = "idle"
        self._publish()

    def _local_error(self, message: str) -> None:
        """An error the page should show that did not come from the provider."""
        log.warning("bridge: %s", message)
        self._notify(self.transcript.add_system_note(message, role="error"))
        self._publish()

    def _build_snapshot(self) -> BridgeSnapshot:
        return BridgeSnapshot(
            state=self._state,
            activity=self._activity,
            error=self._error,
            transcript=self.transcript.snapshot(),
            turns=tuple(self._turns),
            usage=self._clock.usage,
            cost_usd=estimate_cost(self._clock.usage, self.settings.model),
            rtc=self._rtc,
            call_id=self._call_id,
            images_in_context=len(self.images),
        )

    def _publish(self) -> None:
        self._snapshot = self._build_snapshot()
        if self._state in ("closed", "failed") and not self._ended_told:
            self._ended_told = True
            self._notify(CallEnded(self._state, self._error.message if self._error is not None else None))

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------------ close (loop)

    async def _close(self) -> None:
        self._closing = True
        if self._run_future is not None and not self._run_future.done():
            # the connect is still in flight: let calls.create finish (so we learn the
            # call id and can hang up) but not longer than the hangup budget
            wrapped = asyncio.wrap_future(self._run_future)
            try:
                await asyncio.wait_for(asyncio.shield(wrapped), HANGUP_TIMEOUT_S)
            except (TimeoutError, Exception):
                self._run_future.cancel()
        await self._teardown()
        if self._state != "failed":
            self._state = "closed"
        self._activity = "idle"
        self._publish()

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
                pass
            self._client = None

    async def _hangup(self) -> None:
        call_id, client = self._call_id, self._client
        if call_id is None or client is None or self.hung_up:
            return
        try:
            await client.realtime.calls.hangup(call_id, timeout=HANGUP_TIMEOUT_S)
            self.hung_up = True
        except Exception as exc:
            log.warning("hangup of %s failed: %s", call_id, type(exc).__name__)


def _rtc_stats(report: Any, voice: Any, mic: MicTrack) -> RtcStats:
    rtt = jitter = None
    sent = received = lost = 0
    for stat in report.values():
        kind = getattr(stat, "type", "")
        if kind == "remote-inbound-rtp":
            rtt = stat.roundTripTime * 1000 if stat.roundTripTime is not None else rtt
            lost += int(stat.packetsLost or 0)
        elif kind == "inbound-rtp":
            received += int(stat.packetsReceived or 0)
            lost += int(stat.packetsLost or 0)
            jitter = float(stat.jitter) / 48.0 if stat.jitter is not None else jitter  # RTP units at 48 kHz
        elif kind == "outbound-rtp":
            sent += int(stat.packetsSent or 0)
    return RtcStats(
        rtt_ms=rtt,
        jitter_ms=jitter,
        packets_sent=sent,
        packets_received=received,
        packets_lost=lost,
        mic_level=float(getattr(mic.stats(), "level", 0.0)),
        voice_level=float(voice.level),
        voice_buffer_ms=float(voice.current_buffer_ms),
        voice_dropped_ms=float(voice.dropped_ms),
    )
