"""A fake browser tab for tests and benches.

`FakeBrowser` is an aiortc peer that plays speech (a generated WAV) and a
solid-colour camera, and records the audio it receives. `ServerLeg` is the
server side of the browser leg built from the SAME streamlit-webrtc track
types the app uses (`AudioSinkTrack` / `VideoSinkTrack` callbacks for mic and
camera, `PcmAudioSource` for the assistant's voice), instantiated directly
outside Streamlit. `openai_shaped_answer` reshapes a complete SDP answer the
way OpenAI's documentation shows one.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import time
import wave
from collections.abc import Awaitable, Callable

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from streamlit_webrtc.pcm_source import PcmAudioSource
from streamlit_webrtc.sink import AudioSinkTrack, VideoSinkTrack

from localengine.pacing import FramePacer

RATE = 48_000
PTIME = 0.020
SAMPLES = int(RATE * PTIME)
SILENCE_RMS = 200.0  # int16 rms above this counts as "real audio"


def rms(pcm: np.ndarray) -> float:
    if pcm.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)))


def read_wav_48k_mono(path) -> np.ndarray:
    """A WAV file as int16 mono samples at 48 kHz (linear resampling if needed)."""
    with wave.open(str(path), "rb") as wav:
        rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
        if width != 2:
            raise ValueError(f"{path}: expected 16-bit PCM, got {8 * width}-bit")
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    if channels > 1:
        pcm = pcm.reshape(-1, channels).mean(axis=1).astype(np.int16)
    if rate != RATE:
        n_out = int(len(pcm) * RATE / rate)
        pcm = np.interp(np.linspace(0, len(pcm) - 1, n_out), np.arange(len(pcm)), pcm).astype(np.int16)
    return pcm


class _PacedAudioTrack(MediaStreamTrack):
    """20 ms mono s16 frames at 48 kHz, paced in real time like a microphone."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pacer = FramePacer(RATE / SAMPLES)

    def _samples(self) -> np.ndarray:
        raise NotImplementedError

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        index = await self._pacer.wait()
        frame = av.AudioFrame.from_ndarray(self._samples().reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = index * SAMPLES
        frame.time_base = fractions.Fraction(1, RATE)
        return frame


class ToneTrack(_PacedAudioTrack):
    """A continuous sine tone (for plain connectivity tests)."""

    def __init__(self, hz: float, amplitude: int = 8000) -> None:
        super().__init__()
        self._hz, self._amplitude, self._n = hz, amplitude, 0

    def _samples(self) -> np.ndarray:
        t = (np.arange(SAMPLES) + self._n) / RATE
        self._n += SAMPLES
        return (self._amplitude * np.sin(2 * math.pi * self._hz * t)).astype(np.int16)


class SpeechTrack(_PacedAudioTrack):
    """Silence, except for utterances queued with `say`; remembers when each one ended."""

    def __init__(self) -> None:
        super().__init__()
        self._queue = np.zeros(0, dtype=np.int16)
        self.speech_ended_at: float | None = None
        self._ended = asyncio.Event()

    def say(self, pcm48k: np.ndarray) -> None:
        self._queue = np.concatenate([self._queue, pcm48k.astype(np.int16)])
        self.speech_ended_at = None
        self._ended.clear()

    async def wait_spoken(self, timeout: float = 30.0) -> float:
        await asyncio.wait_for(self._ended.wait(), timeout)
        assert self.speech_ended_at is not None
        return self.speech_ended_at

    def _samples(self) -> np.ndarray:
        out = np.zeros(SAMPLES, dtype=np.int16)
        if self._queue.size:
            chunk = self._queue[:SAMPLES]
            out[: chunk.size] = chunk
            self._queue = self._queue[SAMPLES:]
            if not self._queue.size:
                self.speech_ended_at = time.monotonic()
                self._ended.set()
        return out


class SolidVideoTrack(MediaStreamTrack):
    """A solid-colour camera at `fps`."""

    kind = "video"

    def __init__(self, rgb: tuple[int, int, int], size: tuple[int, int] = (320, 240), fps: int = 10) -> None:
        super().__init__()
        width, height = size
        image = np.empty((height, width, 3), dtype=np.uint8)
        image[:, :] = rgb
        self._image = image
        self._fps = fps
        self._pacer = FramePacer(fps)

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        index = await self._pacer.wait()
        frame = av.VideoFrame.from_ndarray(self._image, format="rgb24")
        frame.pts = index * (90_000 // self._fps)
        frame.time_base = fractions.Fraction(1, 90_000)
        return frame


class AudioRecorder:
    """Reads a remote audio track; keeps energy totals and the time of first real audio."""

    def __init__(self) -> None:
        self._sum_sq = 0.0
        self._count = 0
        self._first = asyncio.Event()
        self.first_audio_at: float | None = None
        self.last_audio_at: float | None = None
        self.frames = 0
        self._task: asyncio.Task | None = None

    def start(self, track: MediaStreamTrack) -> None:
        self._task = asyncio.ensure_future(self._run(track))

    def mark(self) -> None:
        """Forget what was heard so far (start of a new turn)."""
        self._sum_sq, self._count = 0.0, 0
        self.first_audio_at = None
        self._first.clear()

    def received_rms(self) -> float:
        return math.sqrt(self._sum_sq / self._count) if self._count else 0.0

    async def wait_for_audio(self, timeout: float) -> float:
        await asyncio.wait_for(self._first.wait(), timeout)
        assert self.first_audio_at is not None
        return self.first_audio_at

    async def wait_quiet(self, quiet_s: float = 1.0, timeout: float = 30.0) -> None:
        """Wait until no real audio has arrived for `quiet_s` (the reply finished playing)."""
        await wait_until(
            lambda: self.last_audio_at is None or time.monotonic() - self.last_audio_at > quiet_s,
            timeout,
            "the received audio to go quiet",
            step=0.05,
        )

    async def _run(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                assert isinstance(frame, av.AudioFrame)  # an audio track's frames
                now = time.monotonic()
                pcm = frame.to_ndarray().reshape(-1)
                self.frames += 1
                self._sum_sq += float(np.sum(pcm.astype(np.float64) ** 2))
                self._count += pcm.size
                if rms(pcm) > SILENCE_RMS:
                    self.last_audio_at = now
                    if self.first_audio_at is None:
                        self.first_audio_at = now
                        self._first.set()
        except (MediaStreamError, asyncio.CancelledError):
            return

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


Answerer = Callable[[str], Awaitable[str]]


class FakeBrowser:
    """The browser tab: mic (speech), camera (solid colour), speaker (recorder).

    ``ear_tuned``: False leaves the receiver's jitter buffer as aiortc sets it
    (it holds 4 frames = 80 ms of a paced stream, but hardly anything of a bursty
    one, so it is not a fair ear for comparing paths); True gives it
    `realtime.rtc_tuning`'s zero-delay audio buffer (the latency bench does, for
    every path).
    """

    def __init__(
        self,
        rgb: tuple[int, int, int] | None = (0, 0, 255),
        data_channel: bool = False,
        ear_tuned: bool = False,
    ) -> None:
        self.pc = RTCPeerConnection()
        self.mic = SpeechTrack()
        self.speaker = AudioRecorder()
        speaker = self.pc.addTransceiver(self.mic, direction="sendrecv")
        if ear_tuned:
            from realtime.rtc_tuning import tune_receiver

            tune_receiver(speaker.receiver)
        if rgb is not None:
            self.pc.addTransceiver(SolidVideoTrack(rgb), direction="sendrecv")
        self.channel = self.pc.createDataChannel("oai-events") if data_channel else None
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self.speaker.start(track)

    @property
    def first_audio_at(self) -> float | None:
        return self.speaker.first_audio_at

    def received_rms(self) -> float:
        return self.speaker.received_rms()

    async def connect(self, answerer: Answerer) -> None:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        answer = await answerer(self.pc.localDescription.sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    def play_wav(self, path) -> None:
        self.mic.say(read_wav_48k_mono(path))

    async def close(self) -> None:
        self.mic.stop()
        await self.speaker.stop()
        await self.pc.close()


class ServerLeg:
    """The server side of the browser leg, as streamlit-webrtc builds it, wired to a bridge.

    Mic frames go to `bridge.on_mic_frame` through an `AudioSinkTrack`, camera
    frames to `bridge.on_video_frame` through a `VideoSinkTrack`, and the
    assistant's voice comes from `self.voice` (a `PcmAudioSource`, 48 kHz) that
    the bridge is given as its `audio_out`. When the browser's mic track ends
    (the browser leg closed), `on_ended` is called. With `tune` (the default) the
    leg is set up for low latency as the app is asked to: its audio receiver gets
    `realtime.rtc_tuning`'s zero-delay buffer (`tune_streamlit_webrtc(ctx)` in the
    app) and its voice track reads each frame when due
    (`realtime.voice_source.just_in_time`).
    """

    def __init__(self, tune: bool = True) -> None:
        self.pc = RTCPeerConnection()
        self.tune_receive = tune
        self.voice = PcmAudioSource(sample_rate=RATE)
        if tune:
            from realtime.voice_source import just_in_time

            just_in_time(self.voice)
        self.bridge = None
        self.on_ended: Callable[[], object] | None = None
        self._sinks: list = []
        self.pc.on("track", self._on_track)

    def attach(self, bridge, on_ended: Callable[[], object] | None = None) -> None:
        self.bridge = bridge
        self.on_ended = on_ended

    def _on_track(self, track: MediaStreamTrack) -> None:
        if self.tune_receive:
            from realtime.rtc_tuning import tune_peer_connection

            tune_peer_connection(self.pc)
        sink: AudioSinkTrack | VideoSinkTrack
        if track.kind == "audio":
            sink = AudioSinkTrack(callback=self._mic)
            sink._on_ended_callback = self._ended
        else:
            sink = VideoSinkTrack(callback=self._video)
        sink.addTrack(track)
        sink.start()
        self._sinks.append(sink)

    def _mic(self, frame: av.AudioFrame) -> None:
        if self.bridge is not None:
            self.bridge.on_mic_frame(frame)

    def _video(self, frame: av.VideoFrame) -> None:
        if self.bridge is not None:
            self.bridge.on_video_frame(frame)

    def _ended(self) -> None:
        if self.on_ended is not None:
            self.on_ended()

    async def accept(self, offer_sdp: str) -> str:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind == "audio":
                transceiver.sender.replaceTrack(self.voice.track)
                transceiver.direction = "sendrecv"
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription.sdp

    async def close(self) -> None:
        for sink in self._sinks:
            sink.stop()
        self.voice.track.stop()
        await self.pc.close()


_TRANSPORT_PREFIXES = ("a=ice-ufrag:", "a=ice-pwd:", "a=fingerprint:", "a=setup:")
_DIRECTION_LINES = ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive")


def openai_shaped_answer(answer_sdp: str, where: str = "session") -> str:
    """Reshape a complete answer the way OpenAI's documentation shows one.

    ICE credentials, fingerprint and DTLS setup appear once (at session level,
    or only in the first media section with ``where="first"``) and no media
    section has a direction attribute. Only the first media section keeps its
    candidates (BUNDLE).
    """
    lines = [line for line in answer_sdp.replace("\r\n", "\n").split("\n") if line]
    session: list[str] = []
    media: list[list[str]] = []
    for line in lines:
        if line.startswith("m="):
            media.append([line])
        elif media:
            media[-1].append(line)
        else:
            session.append(line)
    transport = [line for line in media[0] if line.startswith(_TRANSPORT_PREFIXES)]
    # keep one fingerprint, like the documented answer
    fingerprint = next(line for line in transport if line.startswith("a=fingerprint:"))
    transport = [line for line in transport if not line.startswith("a=fingerprint:")] + [fingerprint]
    out_media = []
    for index, section in enumerate(media):
        kept = [
            line
            for line in section
            if not line.startswith(_TRANSPORT_PREFIXES)
            and line not in _DIRECTION_LINES
            and not (index > 0 and (line.startswith("a=candidate:") or line == "a=end-of-candidates"))
        ]
        if where == "first" and index == 0:
            kept.extend(transport)
        out_media.append(kept)
    if where == "session":
        session.extend(transport)
    out = session + [line for section in out_media for line in section]
    return "\r\n".join(out) + "\r\n"


class LoopbackServer:
    """An ASGI app served by uvicorn on a free loopback port, in its own thread; a context manager."""

    def __init__(self, app) -> None:
        import socket
        import threading

        import uvicorn

        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self):
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("loopback server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()


class ReshapingProxy(LoopbackServer):
    """A loopback HTTP proxy in front of an engine that reshapes SDP answers like OpenAI's docs.

    Forwards every request to `upstream` (e.g. ``http://127.0.0.1:1234/v1``) and,
    for ``POST .../realtime/calls`` answers, rewrites the SDP with
    `openai_shaped_answer(where=...)`. Counts answers rewritten. Runs uvicorn in
    its own thread; use as a context manager.
    """

    def __init__(self, upstream: str, where: str = "session") -> None:
        from starlette.applications import Starlette
        from starlette.responses import Response
        from starlette.routing import Route

        self.upstream = upstream.rstrip("/")
        self.where = where
        self.reshaped = 0

        async def forward(request):
            import httpx2

            tail = request.url.path.removeprefix("/v1")
            body = await request.body()
            headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
            async with httpx2.AsyncClient(timeout=20) as client:
                reply = await client.request(request.method, self.upstream + tail, content=body, headers=headers)
            content = reply.content
            out_headers = {k: v for k, v in reply.headers.items() if k.lower() in ("location", "content-type")}
            if request.method == "POST" and tail.rstrip("/") == "/realtime/calls" and reply.status_code < 300:
                content = openai_shaped_answer(reply.text, where=self.where).encode()
                self.reshaped += 1
            return Response(content, status_code=reply.status_code, headers=out_headers)

        super().__init__(Starlette(routes=[Route("/v1/{path:path}", forward, methods=["GET", "POST", "DELETE"])]))


async def wait_until(predicate: Callable[[], object], timeout: float, what: str = "condition", step: float = 0.02):
    """Poll a cheap predicate (e.g. on a bridge snapshot) until it is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}")
        await asyncio.sleep(step)


class BridgedCall:
    """FakeBrowser -> ServerLeg (streamlit-webrtc tracks) -> Bridge -> provider, as one context.

    Closing the browser leg closes the bridge (hang-up), as the app wires it.
    """

    def __init__(
        self,
        settings,
        rgb: tuple[int, int, int] | None = (0, 0, 255),
        tools=None,
        tune_leg: bool = True,
        ear_tuned: bool = False,
        policy=None,
    ) -> None:
        from realtime.bridge import Bridge
        from realtime.call_state import DEFAULT_POLICY

        self.leg = ServerLeg(tune=tune_leg)
        self.bridge = Bridge(settings, self.leg.voice, tools=tools, policy=policy or DEFAULT_POLICY)
        self.leg.attach(self.bridge, on_ended=self.bridge.close_soon)
        self.browser = FakeBrowser(rgb, ear_tuned=ear_tuned)

    async def __aenter__(self) -> BridgedCall:
        await self.browser.connect(self.leg.accept)
        self.bridge.start()
        await wait_until(
            lambda: self.bridge.snapshot().state in ("connected", "failed", "closed"), 20, "the bridge to connect"
        )
        return self

    async def __aexit__(self, *exc) -> None:
        await self.browser.close()
        await self.leg.close()
        await asyncio.to_thread(self.bridge.close, 5.0)

    def texts(self, role: str) -> list[str]:
        return [item.text for item in self.bridge.snapshot().transcript if item.role == role and item.final]

    async def reply_after(self, count_before: int, timeout: float = 30.0) -> str:
        """The text of the next final assistant item."""
        texts = await wait_until(lambda: self.texts("assistant")[count_before:], timeout, "a final assistant reply")
        return texts[0]
