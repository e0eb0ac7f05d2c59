"""Voice kept compressed: 24 kHz mono s16 to Ogg Opus and back (PyAV's libopus, already a dependency
through aiortc). Opus at 24 kb/s keeps speech clear at about a twentieth of the PCM's size, and an
Ogg Opus file plays in every browser as it is."""

from __future__ import annotations

import io
import wave

import av
import numpy as np

__all__ = ["OPUS_BITRATE", "decode_voice", "encode_voice", "wav_bytes"]

OPUS_BITRATE = 24_000
# libopus's least effort: a quarter of the default's CPU (5.7 vs 22 ms for 2.6 s of speech, measured with the
# pinned PyAV) for about 0.6 dB less SNR and a tenth more bytes. History keeps every turn's voice this way,
# on the server, while calls run.
OPTIONS = {"compression_level": "0"}


def encode_voice(pcm: bytes, rate: int, *, bitrate: int = OPUS_BITRATE) -> bytes:
    """``pcm`` (s16 mono at ``rate``: 8, 12, 16, 24 or 48 kHz) as an Ogg Opus file."""
    samples = np.frombuffer(pcm, dtype="<i2").reshape(1, -1)
    buf = io.BytesIO()
    with av.open(buf, "w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=rate, options=dict(OPTIONS))
        stream.bit_rate = bitrate
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def decode_voice(data: bytes, rate: int) -> bytes:
    """An audio file PyAV can read (Ogg Opus as ``encode_voice`` writes it) as s16 mono at ``rate``."""
    chunks: list[np.ndarray] = []
    resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
    with av.open(io.BytesIO(data), "r") as source:
        for frame in source.decode(audio=0):
            chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(frame))
    chunks.extend(f.to_ndarray().reshape(-1) for f in resampler.resample(None))
    return np.concatenate(chunks).astype("<i2").tobytes() if chunks else b""


def wav_bytes(pcm: bytes, rate: int) -> bytes:
    """s16 mono ``pcm`` as a WAV file."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return buf.getvalue()
