"""Voice tracks that hand aiortc Opus packets instead of raw frames: the encode on the loop, mono.

aiortc's `RTCRtpSender` encodes a raw `AudioFrame` in the loop's default thread pool
(``run_in_executor``), as stereo at 96 kb/s, after computing the RFC 6465 audio level over the frame's
960 samples in a pure-Python loop. For 20 ms of speech the thread hop costs more than the encode
(measured with py-spy on `bench/capacity.py`'s server: the pool's submit, its wake-ups and the loop's
self-pipe were about a fifth of a voice conversation's CPU). Given an `av.Packet` instead, the sender
only packs it (``Encoder.pack``), on the loop, with no audio level.

`EncodedVoice` wraps a voice track (the assistant's voice to the browser, the mic to the provider): each
``recv()`` takes the inner track's frame and encodes it here, mono 48 kHz Opus (`OPTIONS`), about
0.17 ms a frame. The browser leg's voice track (``realtime.voice_source``) does the
same itself, once the leg has settled on Opus. Opus packets say in their first byte whether they are mono or
stereo, so the peer's ``opus/48000/2`` decoder plays them as they are (WebRTC browsers always do).
Timestamps are the frames' own (see `OpusVoice`).

Digital silence is not encoded again and again. A voice track is silent most of a call (the assistant
listens), and libopus takes longer over a frame of zeros (0.17 ms) than over speech (0.08). Once the encoder
has flushed its look-ahead and turned out the same tiny CELT silence packet twice running, `OpusVoice`
hands out copies of that packet for zero frames without calling it. Measured on the pinned PyAV: a decoder
given any number of those copies decodes the speech after them bit-identically
(tests/realtime/test_opus_track.py).
"""

from __future__ import annotations

import fractions
from typing import TYPE_CHECKING

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from realtime.mono import MonoS16

if TYPE_CHECKING:
    from av.packet import Packet as AnyPacket
    from av.stream import Stream

    Packet = AnyPacket[Stream]

__all__ = ["BITRATE", "EncodedVoice", "OpusVoice"]

RATE = 48000
SAMPLES = 960  # 20 ms: one Opus frame per RTP packet, as aiortc sends
BITRATE = 32000  # the target; CELT-only ("lowdelay") VBR speech comes out at about 50 kb/s (aiortc: 96 stereo)
# CELT only, at half the effort: 0.17 ms a frame of speech, against 0.34 for aiortc's stereo VoIP encode
# and 0.43 for mono VoIP at 32 kb/s, whose SILK modes cost more (measured with the pinned PyAV).
OPTIONS = {"application": "lowdelay", "compression_level": "5"}
TIME_BASE = fractions.Fraction(1, RATE)
SILENCE_MAX_BYTES = 3  # a CELT silence frame: the TOC byte and a flagged, empty range-coded frame


class OpusVoice:
    """The encoder: 20 ms frames at 48 kHz in (s16, mono or interleaved stereo), one mono Opus packet
    out for each, with the frame's own pts. A track can switch from raw frames to packets mid-call:
    aiortc's encoder stamps its packets with the same running sample count, so the RTP timestamps
    run on without a jump. Not thread-safe: one per track."""

    def __init__(self) -> None:
        self._codec = av.CodecContext.create("libopus", "w")
        self._codec.bit_rate = BITRATE
        self._codec.format = "s16"
        self._codec.layout = "mono"
        self._codec.sample_rate = RATE
        self._codec.time_base = TIME_BASE
        self._codec.options = dict(OPTIONS)
        self._mono = MonoS16(RATE)
        self._next_pts = 0
        self._last_silent: bytes | None = None  # the encoder's packet for the last frame, if it was zeros
        self._silence: bytes | None = None  # the steady silence packet, once seen twice running
        self.encoded = 0  # frames given to libopus (the rest were silence, copied)

    def packet(self, frame: av.AudioFrame) -> Packet:
        if frame.sample_rate != RATE or frame.samples != SAMPLES:
            raise ValueError(f"OpusVoice takes 20 ms frames at 48 kHz, got {frame.samples} at {frame.sample_rate} Hz")
        if frame.pts is None:
            pts = self._next_pts
        elif frame.time_base in (None, TIME_BASE):
            pts = frame.pts
        else:
            pts = round(frame.pts * frame.time_base * RATE)
        self._next_pts = pts + SAMPLES
        is_mono = frame.format.name == "s16" and frame.layout.name == "mono"
        pcm = frame.to_ndarray() if is_mono else self._mono.convert(frame)  # the browser's mic: interleaved stereo
        silent = not pcm.any()
        if silent and self._silence is not None:
            packet = av.Packet(self._silence)
        else:
            mono = frame if is_mono else av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
            mono.sample_rate = RATE
            mono.pts, mono.time_base = pts, TIME_BASE
            packets = self._codec.encode(mono)
            if len(packets) != 1:  # libopus: one packet per 20 ms frame, at once (tests/realtime/test_opus_track.py)
                raise RuntimeError(f"the Opus encoder gave {len(packets)} packets for one frame")
            self.encoded += 1
            packet = packets[0]
            data = bytes(packet) if silent else None
            if data is not None and data == self._last_silent and len(data) <= SILENCE_MAX_BYTES:
                self._silence = data
            self._last_silent = data
        if not silent:
            self._silence = None
        packet.pts = pts
        packet.time_base = TIME_BASE
        return packet


class EncodedVoice(MediaStreamTrack):
    """``inner``'s audio as Opus packets (see the module docstring). Stopping it stops ``inner``."""

    kind = "audio"

    def __init__(self, inner: MediaStreamTrack) -> None:
        super().__init__()
        self.inner = inner
        self._voice = OpusVoice()
        self._ready: list[Packet] = []  # a frame longer than 20 ms gives several packets

    async def recv(self) -> Packet:
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self.inner.recv()
        if not isinstance(frame, av.AudioFrame):
            raise TypeError(f"EncodedVoice wraps audio frames, not {type(frame).__name__}")
        return self._voice.packet(frame)

    def stop(self) -> None:
        super().stop()
        self.inner.stop()
