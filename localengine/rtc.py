"""The engine's aiortc peer for one WebRTC call: mic in, voice out, the ``oai-events`` data channel.

``CallPeer`` only moves bytes: it hands decoded 24 kHz mic audio and data-channel messages to a
``CallListener`` (the session driver) and plays what the driver asks. ``VoiceTrack`` is an aiortc
``MediaStreamTrack`` with one ``recv()`` that paces 20 ms of 48 kHz audio as Opus packets and reports
playback start/progress/finish; ``ChannelSink`` queues server events until the channel is open.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import av
import numpy as np
from aioice import stun
from aiortc import RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import SessionDescription

from .opus_out import OpusOut
from .pacing import FramePacer
from .pcm import SAMPLE_RATE

if TYPE_CHECKING:
    from .opus_out import Packet

__all__ = ["CallListener", "CallPeer", "ChannelSink", "OfferError", "VoiceTrack", "read_pcm", "upsample_24k_to_48k"]

log = logging.getLogger("localengine.rtc")

# RFC 7675's consent freshness: consent expires 30 s after the last answered check; checks every 5 s,
# each retransmitted as STUN does (here twice: answered within 3.5 s). aioice's own check gives each
# request 0.5 s with no retransmission and gives up after 6 misses in a row, so a client whose machine
# is busy (measured: 4 Chromium tabs and the studio on 2 cores) lost its call where a provider keeps it.
CONSENT_INTERVAL_S = 5.0
CONSENT_EXPIRY_S = 30.0
CONSENT_RETRANSMISSIONS = 2
_kept: weakref.WeakSet[Any] = weakref.WeakSet()  # ICE connections whose checks follow RFC 7675


def keep_consent(
    pc: RTCPeerConnection, interval_s: float = CONSENT_INTERVAL_S, expiry_s: float = CONSENT_EXPIRY_S
) -> int:
    """Replace aioice's consent checks of ``pc``'s ICE connections (once connected) with RFC 7675's
    rule. Returns how many it replaced."""
    replaced = 0
    for transceiver in pc.getTransceivers():
        conn = getattr(getattr(transceiver.sender.transport, "transport", None), "_connection", None)
        task = getattr(conn, "_query_consent_task", None)
        if conn is None or task is None or task.done() or conn in _kept:
            continue
        task.cancel()
        conn._query_consent_task = asyncio.ensure_future(_consent(conn, interval_s, expiry_s))
        _kept.add(conn)
        replaced += 1
    return replaced


async def _consent(conn: Any, interval_s: float, expiry_s: float) -> None:
    loop = asyncio.get_running_loop()
    answered = loop.time()
    while loop.time() - answered < expiry_s:
        await asyncio.sleep(interval_s * (0.8 + 0.4 * random.random()))
        for pair in list(conn._nominated.values()):
            try:
                await pair.protocol.request(
                    conn.build_request(pair, nominate=False),
                    pair.remote_addr,
                    integrity_key=(conn.remote_password or "").encode("utf8"),
                    retransmissions=CONSENT_RETRANSMISSIONS,
                )
                answered = loop.time()
            except stun.TransactionError:
                pass
    log.info("no answer to consent checks for %.0f s: the client is gone", loop.time() - answered)
    conn._query_consent_task = None  # close() must not cancel the task running it
    await conn.close()


EVENTS_LABEL = "oai-events"
OUT_RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms at 48 kHz
MAX_LAG_S = 0.2  # how late a frame may be before the voice clock is re-anchored (a stall: no catch-up burst)
FRAME_BYTES = FRAME_SAMPLES * 2
PROGRESS_EVERY_FRAMES = 5  # report playback progress every 100 ms


class OfferError(ValueError):
    """The SDP offer cannot be answered; ``str(exc)`` is a message for the caller."""


class CallListener(Protocol):
    def receive(self, raw: str | bytes) -> None: ...

    def audio_in(self, pcm24k: bytes) -> None: ...

    def playback_started(self, item_id: str) -> None: ...

    def playback_progress(self, item_id: str, played_ms: int) -> None: ...

    def playback_finished(self, item_id: str) -> None: ...


def upsample_24k_to_48k(pcm24k: bytes) -> bytes:
    """pcm16 mono 24 kHz -> 48 kHz by linear interpolation (exact 2x, no phase shift)."""
    x = np.frombuffer(pcm24k[: len(pcm24k) // 2 * 2], dtype="<i2").astype(np.int32)
    if x.size == 0:
        return b""
    out = np.empty(x.size * 2, dtype=np.int32)
    out[0::2] = x
    out[1::2] = (x + np.append(x[1:], x[-1])) // 2
    return out.astype("<i2").tobytes()


async def read_pcm(track: MediaStreamTrack, rate: int, on_pcm: Callable[[bytes], None]) -> None:
    """Read an audio track until it ends, handing ``on_pcm`` its audio as pcm16 mono at ``rate``."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
    try:
        while True:
            frame = await track.recv()
            assert isinstance(frame, av.AudioFrame)  # an audio track's frames
            for out in resampler.resample(frame):
                on_pcm(bytes(out.planes[0])[: out.samples * 2])
    except MediaStreamError:
        pass


@dataclass
class _Segment:
    item_id: str
    pcm48k: bytes
    pos: int = 0


class VoiceTrack(MediaStreamTrack):
    """The assistant's voice: paced 20 ms Opus packets from a queue of segments, silence when idle."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._segments: deque[_Segment] = deque()
        self._listener: CallListener | None = None
        self._pacer = FramePacer(OUT_RATE / FRAME_SAMPLES, max_lag_s=MAX_LAG_S)
        self._current: str | None = None
        self._played_frames = 0
        self._opus = OpusOut()  # aiortc only packs what it is given as packets (localengine.opus_out)

    def bind(self, listener: CallListener) -> None:
        self._listener = listener

    def play(self, item_id: str, response_id: str, pcm24k: bytes) -> None:
        pcm48k = upsample_24k_to_48k(pcm24k)
        if pcm48k:
            self._segments.append(_Segment(item_id, pcm48k))

    def clear(self) -> None:
        self._segments.clear()
        self._current = None
        self._played_frames = 0

    @property
    def queued_ms(self) -> int:
        return sum(len(s.pcm48k) - s.pos for s in self._segments) * 1000 // (OUT_RATE * 2)

    def _notify(self, name: str, *args: Any) -> None:
        # Deferred: the listener may call play()/clear() back, never inside recv().
        if self._listener is not None:
            asyncio.get_running_loop().call_soon(getattr(self._listener, name), *args)

    def _next_chunk(self) -> bytes:
        if not self._segments:
            return bytes(FRAME_BYTES)
        segment = self._segments[0]
        if segment.item_id != self._current:
            self._current = segment.item_id
            self._played_frames = 0
            self._notify("playback_started", segment.item_id)
        chunk = segment.pcm48k[segment.pos : segment.pos + FRAME_BYTES]
        segment.pos += len(chunk)
        self._played_frames += 1
        if segment.pos >= len(segment.pcm48k):
            self._segments.popleft()
            if not self._segments or self._segments[0].item_id != segment.item_id:
                self._notify("playback_finished", segment.item_id)
                self._current = None
        elif self._played_frames % PROGRESS_EVERY_FRAMES == 0:
            self._notify("playback_progress", segment.item_id, self._played_frames * 20)
        return chunk.ljust(FRAME_BYTES, b"\x00")

    async def recv(self) -> Packet:
        if self.readyState != "live":
            raise MediaStreamError
        index = await self._pacer.wait()
        return self._opus.packet(self._next_chunk(), index * FRAME_SAMPLES)


class ChannelSink:
    """Server events onto the ``oai-events`` data channel; queued until the channel is open."""

    def __init__(self) -> None:
        self._channel: RTCDataChannel | None = None
        self._pending: deque[str] = deque()
        self.dropped = 0

    def bind(self, channel: RTCDataChannel) -> None:
        self._channel = channel
        if channel.readyState == "open":
            self._flush()
        else:
            channel.on("open", self._flush)

    def send(self, event: dict[str, Any]) -> None:
        text = json.dumps(event, separators=(",", ":"))
        channel = self._channel
        if channel is None or channel.readyState != "open" or self._pending:
            self._pending.append(text)
            if channel is not None and channel.readyState == "open":
                self._flush()
            return
        self._send_now(channel, text, event.get("type", "?"))

    def _flush(self) -> None:
        channel = self._channel
        while channel is not None and channel.readyState == "open" and self._pending:
            text = self._pending.popleft()
            self._send_now(channel, text, "queued")

    def _send_now(self, channel: RTCDataChannel, text: str, kind: str) -> None:
        try:
            channel.send(text)
        except ValueError as exc:  # over the peer's max-message-size: drop this event, keep the call
            self.dropped += 1
            log.warning("dropped a %s server event of %d bytes: %s", kind, len(text), exc)
        except Exception as exc:  # channel closing under us
            log.info("data channel send failed: %s", exc)

    def close(self, reason: str) -> None:
        self._pending.clear()

    async def drain(self, timeout: float) -> None:
        """Wait (bounded) until queued bytes have left, so a final error event reaches the peer."""
        channel = self._channel
        deadline = time.monotonic() + timeout
        while (
            channel is not None
            and channel.readyState == "open"
            and channel.bufferedAmount > 0
            and time.monotonic() < deadline
        ):
            await asyncio.sleep(0.02)


def check_offer(sdp: str) -> None:
    """Reject offers the engine cannot answer, with a message that says why."""
    if not sdp or not sdp.strip():
        raise OfferError("The SDP offer is empty.")
    if not sdp.lstrip().startswith("v=0"):
        raise OfferError("The SDP offer is not SDP: it must start with 'v=0'.")
    try:
        parsed = SessionDescription.parse(sdp)
    except Exception as exc:
        detail = str(exc) or "a line is malformed or a required field is missing"
        raise OfferError(f"The SDP offer could not be parsed: {detail}.") from None
    if not any(m.kind == "audio" for m in parsed.media):
        raise OfferError("The SDP offer has no audio media section (m=audio); the call needs one.")
    for media in parsed.media:
        # aiortc accepts an offer without a fingerprint and then fails inside its DTLS transport.
        if media.dtls is None or not media.dtls.fingerprints:
            raise OfferError(
                f"The SDP offer was rejected: its m={media.kind} section has no DTLS fingerprint "
                "(a=fingerprint); ICE and DTLS parameters are required."
            )


class CallPeer:
    """One call's RTCPeerConnection. ``accept`` answers an offer; ``close`` is idempotent."""

    def __init__(self, call_id: str, *, on_ended: Callable[[str], None]) -> None:
        self.call_id = call_id
        self.pc = RTCPeerConnection()
        self.voice = VoiceTrack()
        self.events = ChannelSink()
        self._on_ended = on_ended
        self._listener: CallListener | None = None
        self._mic_task: asyncio.Task[None] | None = None
        self._closed = False
        self.mic_frames = 0
        self.pc.on("datachannel", self._on_datachannel)
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)

    def bind(self, listener: CallListener) -> None:
        self._listener = listener
        self.voice.bind(listener)

    async def accept(self, offer_sdp: str) -> str:
        """Answer the offer (ICE gathered, no trickle). Raises ``OfferError`` for a bad offer."""
        check_offer(offer_sdp)
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        except Exception as exc:
            detail = str(exc) or type(exc).__name__
            raise OfferError(f"The SDP offer was rejected: {detail}.") from None
        self.pc.addTrack(self.voice)
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        return self.pc.localDescription.sdp

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label != EVENTS_LABEL:
            log.info("call %s: ignoring data channel %r", self.call_id, channel.label)
            return
        self.events.bind(channel)

        @channel.on("message")
        def _on_message(message: str | bytes) -> None:
            if self._listener is not None and not self._closed:
                self._listener.receive(message)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._mic_task is None:
            self._mic_task = asyncio.get_running_loop().create_task(self._read_mic(track), name=f"mic-{self.call_id}")

    async def _read_mic(self, track: MediaStreamTrack) -> None:
        await read_pcm(track, SAMPLE_RATE, self._mic_pcm)  # the session's wire rate

    def _mic_pcm(self, pcm: bytes) -> None:
        self.mic_frames += 1
        if self._listener is not None and not self._closed:
            self._listener.audio_in(pcm)

    def _on_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected":
            keep_consent(self.pc)
        if state in ("failed", "closed") and not self._closed:
            log.info("call %s: peer connection %s", self.call_id, state)
            self._on_ended(f"peer connection {state}")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.events.drain(timeout=0.5)
        self.voice.clear()
        self.voice.stop()
        await self.pc.close()
        if self._mic_task is not None:
            self._mic_task.cancel()
            await asyncio.gather(self._mic_task, return_exceptions=True)
