"""Helpers for the engine's integration tests: schema validation, waiting, an aiortc client peer."""

from __future__ import annotations

import asyncio
import fractions
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import av
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from openai import AsyncOpenAI
from openai.types.realtime import RealtimeConversationItemUserMessageParam, RealtimeServerEvent
from pydantic import TypeAdapter

from localengine.pacing import FramePacer
from localengine.rtc import read_pcm

SERVER_EVENT: TypeAdapter[Any] = TypeAdapter(RealtimeServerEvent)
API_KEY = "sk-local-test-key"


def validated(event: Any) -> dict[str, Any]:
    """Validate one server event (dict or SDK model) against the SDK's union; return it as a dict."""
    if hasattr(event, "model_dump"):
        event = event.model_dump(mode="json", exclude_unset=True)
    SERVER_EVENT.validate_python(event)
    return event


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


def rms(pcm16: bytes) -> float:
    x = np.frombuffer(pcm16, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(x * x))) if x.size else 0.0


class PcmTrack(MediaStreamTrack):
    """Plays pcm16 mono 24 kHz (e.g. generated speech) as 20 ms 48 kHz frames, then silence."""

    kind = "audio"

    def __init__(self, pcm24k: bytes = b"") -> None:
        super().__init__()
        x = np.frombuffer(pcm24k, dtype="<i2")
        self._pcm = np.repeat(x, 2).astype("<i2").tobytes()  # 24 -> 48 kHz
        self._pos = 0
        self._pacer = FramePacer(50)

    def feed(self, pcm24k: bytes) -> None:
        x = np.frombuffer(pcm24k, dtype="<i2")
        self._pcm = self._pcm[self._pos :] + np.repeat(x, 2).astype("<i2").tobytes()
        self._pos = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        index = await self._pacer.wait()
        chunk = self._pcm[self._pos : self._pos + 1920]
        self._pos += len(chunk)
        frame = av.AudioFrame(format="s16", layout="mono", samples=960)
        frame.planes[0].update(chunk.ljust(1920, b"\x00"))
        frame.pts = index * 960
        frame.sample_rate = 48000
        frame.time_base = fractions.Fraction(1, 48000)
        return frame


class RtcClient:
    """A client peer like a browser tab: mic track out, records the voice in, ``oai-events`` channel."""

    def __init__(self, mic_pcm24k: bytes = b"") -> None:
        self.pc = RTCPeerConnection()
        self.mic = PcmTrack(mic_pcm24k)
        self.pc.addTrack(self.mic)
        self.channel = self.pc.createDataChannel("oai-events")
        self.events: list[dict[str, Any]] = []
        self.arrivals: list[float] = []  # time.monotonic() of each event
        self.received = bytearray()  # pcm16 mono 48 kHz
        self._reader: asyncio.Task[None] | None = None
        self.opened = asyncio.Event()
        self.channel.on("open", self.opened.set)
        self.channel.on("message", self._on_message)
        self.pc.on("track", self._on_track)
        self._call_id: str | None = None

    @property
    def call_id(self) -> str:
        """The id of the call ``start_call`` opened."""
        assert self._call_id is not None, "no call started"
        return self._call_id

    def _on_message(self, message: str | bytes) -> None:
        self.events.append(validated(json.loads(message)))
        self.arrivals.append(time.monotonic())

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._reader = asyncio.ensure_future(self._read(track))

    async def _read(self, track: MediaStreamTrack) -> None:
        await read_pcm(track, 48_000, self.received.extend)

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def answer(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        await asyncio.wait_for(self.opened.wait(), 10)

    async def start_call(self, client: Any, session: dict[str, Any] | None = None) -> Any:
        """Offer through ``client.realtime.calls.create`` (raw, to read ``Location``), apply the answer.
        Sets ``call_id``; returns the raw response for checks of its status and headers."""
        kwargs = {"session": session} if session is not None else {}
        raw = await client.realtime.calls.with_raw_response.create(sdp=await self.offer(), **kwargs)
        self._call_id = raw.headers["location"].rsplit("/", 1)[1]
        await self.answer(raw.content.decode())
        return raw

    def send(self, event: dict[str, Any]) -> None:
        self.channel.send(json.dumps(event))

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    async def wait_event(self, type_: str, timeout: float = 15.0, start: int = 0) -> dict[str, Any]:
        def found() -> bool:
            return any(e["type"] == type_ for e in self.events[start:])

        await wait_until(found, timeout, f"{type_!r} on the data channel (saw {self.types()[start:]})")
        return next(e for e in self.events[start:] if e["type"] == type_)

    def arrival(self, type_: str, start: int = 0) -> float:
        return next(t for e, t in zip(self.events[start:], self.arrivals[start:], strict=False) if e["type"] == type_)

    async def close(self) -> None:
        self.mic.stop()
        await self.pc.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)


@asynccontextmanager
async def text_call(base_url: str) -> AsyncIterator[tuple[AsyncOpenAI, RtcClient]]:
    """A WebRTC call in text mode, its ``session.created`` seen; hung up after a body that passed."""
    peer = RtcClient()
    async with AsyncOpenAI(base_url=base_url, api_key=API_KEY) as client:
        await peer.start_call(client, {"type": "realtime", "output_modalities": ["text"]})
        try:
            await peer.wait_event("session.created")
            yield client, peer
            await client.realtime.calls.hangup(peer.call_id)
        finally:
            await peer.close()


def user_text(text: str) -> RealtimeConversationItemUserMessageParam:
    """A user message item holding ``text``."""
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


class EventStream:
    """Reads raw server events from an SDK ``AsyncRealtimeConnection``, validating every one."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.events: list[dict[str, Any]] = []

    async def next(self, timeout: float = 15.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.conn.recv_bytes(), timeout)
        event = validated(json.loads(raw))
        self.events.append(event)
        return event

    async def until(self, type_: str, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Events up to and including the first ``type_``; fails on a timeout."""
        seen: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {type_!r} within {timeout}s; saw {[e['type'] for e in seen]}")
            try:
                event = await self.next(left)
            except TimeoutError:
                raise AssertionError(f"no {type_!r} within {timeout}s; saw {[e['type'] for e in seen]}") from None
            seen.append(event)
            if event["type"] == type_:
                return seen


def first(events: list[dict[str, Any]], type_: str) -> dict[str, Any]:
    for event in events:
        if event["type"] == type_:
            return event
    raise AssertionError(f"no {type_!r} among {[e['type'] for e in events]}")


def reply_text(events: list[dict[str, Any]]) -> str:
    """The assistant's words in a response: output text, else the audio transcript."""
    for type_ in ("response.output_text.done", "response.output_audio_transcript.done"):
        for event in events:
            if event["type"] == type_:
                return event.get("text") or event.get("transcript") or ""
    raise AssertionError(f"no reply text among {[e['type'] for e in events]}")


def voiced_ms(pcm16: bytes, rate: int = 48_000, threshold: float = 500.0) -> int:
    """Milliseconds of 20 ms windows whose RMS is above ``threshold`` (speech, not silence/noise)."""
    x = np.frombuffer(pcm16[: len(pcm16) - len(pcm16) % 2], dtype="<i2").astype(np.float64)
    win = rate // 50
    n = x.size // win
    if n == 0:
        return 0
    frames = x[: n * win].reshape(n, win)
    return int(np.sum(np.sqrt(np.mean(frames * frames, axis=1)) > threshold)) * 20
