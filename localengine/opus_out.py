"""The engine's voice as Opus packets: encoded on the call's loop, mono, silence copied.

Handed a raw ``AudioFrame``, aiortc's sender computes the frame's audio level in a pure-Python loop,
hops to the default thread pool and encodes stereo at 96 kb/s, 50 times a second per call, silence
included (the engine listens most of a call). Handed an ``av.Packet``, it only packs it. ``OpusOut``
encodes the 20 ms mono frames ``VoiceTrack`` paces out (CELT only, as a provider's low-delay voice)
and, once the encoder has turned out the same tiny silence packet twice running (its look-ahead
flushed), hands out copies of that packet for silent frames without calling libopus again.

The studio's relay does the same for its own legs (``realtime.opus_track``); the engine keeps its own
few lines because the wire protocol is the only link between the two.
"""

from __future__ import annotations

import fractions
from typing import TYPE_CHECKING

import av

if TYPE_CHECKING:
    from av.packet import Packet as AnyPacket
    from av.stream import Stream

    Packet = AnyPacket[Stream]

__all__ = ["OpusOut"]

RATE = 48_000
SAMPLES = 960  # 20 ms
TIME_BASE = fractions.Fraction(1, RATE)
BITRATE = 32_000
OPTIONS = {"application": "lowdelay", "compression_level": "5"}
SILENCE_MAX_BYTES = 3  # a CELT silence frame: the TOC byte and an empty range-coded frame
_ZEROS = bytes(SAMPLES * 2)


class OpusOut:
    """20 ms of mono s16 PCM at 48 kHz in, one Opus packet out, stamped ``pts``. One per track."""

    def __init__(self) -> None:
        self._codec = av.CodecContext.create("libopus", "w")
        self._codec.bit_rate = BITRATE
        self._codec.format = "s16"
        self._codec.layout = "mono"
        self._codec.sample_rate = RATE
        self._codec.time_base = TIME_BASE
        self._codec.options = dict(OPTIONS)
        self._last_silent: bytes | None = None  # the packet for the last frame, if that frame was zeros
        self._silence: bytes | None = None  # the steady silence packet, once seen twice running
        self.encoded = 0  # frames given to libopus (the rest were silence, copied)

    def packet(self, pcm: bytes, pts: int) -> Packet:
        if len(pcm) != len(_ZEROS):
            raise ValueError(f"OpusOut takes 20 ms of 48 kHz mono s16 ({len(_ZEROS)} bytes), got {len(pcm)}")
        silent = pcm == _ZEROS
        if silent and self._silence is not None:
            packet = av.Packet(self._silence)
        else:
            frame = av.AudioFrame(format="s16", layout="mono", samples=SAMPLES)
            frame.planes[0].update(pcm)
            frame.sample_rate = RATE
            frame.pts, frame.time_base = pts, TIME_BASE
            packets = self._codec.encode(frame)
            if len(packets) != 1:  # libopus: one packet per 20 ms frame, at once
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
