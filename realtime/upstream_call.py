"""One call to the realtime provider: its aiortc peer, the ``oai-events`` data channel, the call id.

A conversation (``realtime.bridge.Bridge``) outlives its calls: a drop, a pause or a rollover
replaces the ``UpstreamCall`` while the browser leg, the transcript and the mic stay. This class
is the IO of one call only: it sends the SDP offer through the official SDK
(``AsyncOpenAI(...).realtime.calls.create``), learns the call id from the ``Location`` header,
reports what happens to it as ``realtime.call_state`` signals (stamped with the monotonic time),
hands the provider's messages and voice track to the bridge, and is always hung up on close.
Everything runs on the bridge loop.

A hang-up that times out (a busy server, ours or the provider's) is tried once more; if that
fails too, `hangup_failure` says why (the bridge reports it: the call may still be running at the
provider until it ends it). A call the provider no longer knows (404) needs no hang-up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, cast

from aiortc import MediaStreamTrack, RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from openai import APITimeoutError, AsyncOpenAI, NotFoundError
from openai.types.realtime import RealtimeSessionCreateRequestParam

from realtime.call_state import CallCreated, Failure, Lifecycle, Signal
from realtime.codecs import negotiated_codec, offer_only
from realtime.errors import BridgeError
from realtime.opus_track import EncodedVoice
from realtime.rtc_tuning import tune_peer_connection, watch_consent
from realtime.sdp import normalize_answer
from realtime.settings import Connection, Settings
from realtime.tools import ToolRegistry

__all__ = [
    "CONNECT_TIMEOUT_S",
    "HANGUP_ATTEMPTS",
    "HANGUP_TIMEOUT_S",
    "HangupFailure",
    "UpstreamCall",
    "hangup_budget_s",
]

log = logging.getLogger(__name__)

HANGUP_TIMEOUT_S = 1.5
HANGUP_ATTEMPTS = 2  # the first try, and one more when it timed out
CONNECT_TIMEOUT_S = 20.0
QUIET_AFTER_PACKETS = 25  # 0.5 s of one silence packet repeated (realtime.rtc_tuning.ImmediateAudioBuffer)


def hangup_budget_s() -> float:
    """The longest a hang-up can take, retry included (read when needed: tests shorten the timeout)."""
    return HANGUP_TIMEOUT_S * HANGUP_ATTEMPTS


@dataclass(frozen=True)
class HangupFailure:
    """Why a call could not be hung up: ``reason`` (words, never an SDK message: those may quote a
    key); ``timed_out``: every try timed out, so the call may well still be running."""

    reason: str
    timed_out: bool


def _call_id_from_location(location: str | None) -> str | None:
    if not location:
        return None
    tail = location.rstrip("/").rsplit("/", 1)[-1]
    return tail or None


class UpstreamCall:
    """One provider call (see module docstring). ``number`` counts the conversation's calls from 1."""

    def __init__(
        self,
        number: int,
        mic: MediaStreamTrack,
        *,
        on_signal: Callable[[UpstreamCall, Signal], None],
        on_message: Callable[[UpstreamCall, str | bytes], None],
        on_voice: Callable[[UpstreamCall, MediaStreamTrack], Coroutine[Any, Any, None]],
    ) -> None:
        self.number = number
        self.mic = mic
        self._sent: MediaStreamTrack = mic  # what the sender reads: the mic, or its Opus packets
        self._on_signal = on_signal
        self._on_message = on_message
        self._on_voice = on_voice
        self.pc: RTCPeerConnection | None = None
        self.dc: RTCDataChannel | None = None
        self.client: AsyncOpenAI | None = None
        self.connection: Connection | None = None
        self.settings: Settings | None = None  # what its `session` was made from
        self.call_id: str | None = None
        self.codec: str | None = None  # what the answer settled on (realtime.codecs)
        self.opened_at: float | None = None  # monotonic time the data channel opened
        self.hung_up = False
        self.hangup_failure: HangupFailure | None = None  # why the hang-up failed in the end
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def channel_open(self) -> bool:
        return self.dc is not None and self.dc.readyState == "open"

    def _signal(self, signal: Signal) -> None:
        if not self._closed:
            self._on_signal(self, signal)

    @property
    def closed(self) -> bool:
        """`close()` has begun: the call is being (or was) hung up."""
        return self._closed

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        if self._closed:  # close() cancelled the call's tasks already: one started now would be left behind
            coro.close()
            return
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def open(self, settings: Settings, tools: ToolRegistry, stop_if: Callable[[], bool]) -> None:
        """Create the peer, place the call, apply the answer. Raises what the SDK or aiortc raise;
        returns early (the call placed, its id known) when ``stop_if()`` says the conversation closes."""
        loop = asyncio.get_running_loop()
        # may start (or restart) the local engine child process, which blocks: keep it off the loop
        conn = await loop.run_in_executor(None, settings.connection)
        self.connection, self.settings = conn, settings
        self.client = AsyncOpenAI(base_url=conn.base_url, api_key=conn.api_key, max_retries=0, timeout=15.0)
        pc = RTCPeerConnection()
        self.pc = pc
        # Opus: the mic goes as packets we encode on the loop (realtime.opus_track), not via aiortc's pool
        self._sent = EncodedVoice(self.mic) if settings.audio_codec == "opus" else self.mic
        offer_only(pc.addTransceiver(self._sent, direction="sendrecv"), settings.audio_codec)
        # the voice is handed on as it arrives (aiortc would hold it 80 ms); a run of silence, past the first
        # half second (VoiceOut's hangover is 0.2 s), not at all
        tune_peer_connection(pc, quiet_after=QUIET_AFTER_PACKETS)
        dc = pc.createDataChannel("oai-events")
        self.dc = dc
        dc.on("open", self._channel_opened)
        dc.on("message", lambda message: self._closed or self._on_message(self, message))
        dc.on("close", lambda: self._signal(Lifecycle("channel_closed", at=time.monotonic())))
        pc.on("track", self._on_track)
        pc.on("connectionstatechange", self._on_connection_state)

        await pc.setLocalDescription(await pc.createOffer())
        offer = pc.localDescription.sdp
        # the one rendering of `session` (tests validate it against the SDK's models)
        session = cast(RealtimeSessionCreateRequestParam, settings.session_payload(registry=tools))
        raw = await self.client.realtime.calls.with_raw_response.create(sdp=offer, session=session)
        self.call_id = _call_id_from_location(raw.headers.get("location"))
        self._signal(CallCreated(self.call_id))
        answer = raw.http_response.text
        if stop_if():
            return
        answer = normalize_answer(offer, answer)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
        self.codec = negotiated_codec(answer)
        self._spawn(self._connect_watchdog())

    def _channel_opened(self) -> None:
        self.opened_at = time.monotonic()
        self._signal(Lifecycle("channel_opened", at=self.opened_at))

    async def _connect_watchdog(self) -> None:
        await asyncio.sleep(CONNECT_TIMEOUT_S)
        if self.opened_at is not None:
            return
        message = (
            f"No media connection to the realtime server after {CONNECT_TIMEOUT_S:.0f} s. "
            "Outbound UDP (port 3478 and high ports) must be allowed from this server."
        )
        self._signal(Failure(BridgeError("connection", message), "deadline", at=time.monotonic()))

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._spawn(self._on_voice(self, track))

    def _on_connection_state(self) -> None:
        if self.pc is None:
            return
        state = self.pc.connectionState
        if state == "connected":
            try:
                watch_consent(self.pc)  # a provider that dies silently is noticed in ~5 s, not ~30 s
            except Exception:
                log.warning("could not shorten the consent checks", exc_info=True)
        elif state == "failed":
            error = BridgeError("connection", "The connection to the realtime server failed (ICE/DTLS).")
            self._signal(Failure(error, "peer", at=time.monotonic()))
        elif state == "closed":
            self._signal(Lifecycle("peer_closed", at=time.monotonic()))

    def send(self, message: str) -> bool:
        """Send on the data channel now; False when it is not open."""
        if self.dc is not None and self.dc.readyState == "open":
            self.dc.send(message)
            return True
        return False

    async def close(self) -> None:
        """Hang up and close the peer and the SDK client. Idempotent; reports nothing more."""
        if self._closed:
            return
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._hangup()
        self._sent.stop()  # (the packets' track stops the mic too)
        self.mic.stop()
        if self.pc is not None:
            try:
                await self.pc.close()
            except Exception:
                log.exception("closing the upstream peer failed")
        if self.client is not None:
            try:
                await self.client.close()
            except Exception:
                log.debug("closing the SDK client failed", exc_info=True)

    async def _hangup(self) -> None:
        call_id, client = self.call_id, self.client
        if call_id is None or client is None or self.hung_up:
            return
        for attempt in range(1, HANGUP_ATTEMPTS + 1):
            try:
                await client.realtime.calls.hangup(call_id, timeout=HANGUP_TIMEOUT_S)
                self.hung_up = True
                return
            except APITimeoutError:
                if attempt < HANGUP_ATTEMPTS:
                    log.info("hangup of %s timed out after %.1f s; trying once more", call_id, HANGUP_TIMEOUT_S)
                    continue
                failure = HangupFailure(f"timed out {HANGUP_ATTEMPTS} times ({HANGUP_TIMEOUT_S:g} s each)", True)
            except NotFoundError:
                # gone: the provider ended it, or (on the retry) the try that timed out did reach it
                log.info("hangup of %s: the call is gone already", call_id)
                self.hung_up = attempt > 1
                return
            except Exception as exc:
                failure = HangupFailure(f"failed: {type(exc).__name__}", False)
            self.hangup_failure = failure
            log.warning("hangup of %s %s", call_id, failure.reason)
            return
