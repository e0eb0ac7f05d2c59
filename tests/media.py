"""Test media generated at run time (never committed): speech, silence, video and images.

Shared by every test suite. Speech comes from the local engine's offline synthesizer
(``localengine.speech.synthesize``), so it needs no network and no model download.
"""

from __future__ import annotations

import base64
import io
import wave
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = [
    "resample_pcm16",
    "rms",
    "silence_pcm24k",
    "solid_jpeg_data_url",
    "solid_png_data_url",
    "solid_y4m",
    "speech_pcm24k",
    "speech_wav",
]

PCM_RATE = 24_000


def speech_pcm24k(text: str, voice: str = "alloy") -> bytes:
    """``text`` spoken by the offline synthesizer: pcm16 LE mono 24 kHz."""
    from localengine.speech import synthesize

    return synthesize(text, voice)


def silence_pcm24k(ms: int) -> bytes:
    """``ms`` milliseconds of digital silence, pcm16 LE mono 24 kHz."""
    if ms < 0:
        raise ValueError("ms must not be negative")
    return bytes(PCM_RATE * ms // 1000 * 2)


def rms(pcm16: bytes) -> float:
    """Root mean square of pcm16 LE samples (0 for no samples); full scale is 32768."""
    samples = np.frombuffer(pcm16[: len(pcm16) - len(pcm16) % 2], dtype="<i2")
    if samples.size == 0:
        return 0.0
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


def resample_pcm16(pcm16: bytes, src_rate: int, dst_rate: int) -> bytes:
    """Linear-interpolation resampling of mono pcm16 LE (good enough for test signals)."""
    x = np.frombuffer(pcm16[: len(pcm16) - len(pcm16) % 2], dtype="<i2").astype(np.float64)
    if src_rate == dst_rate or x.size == 0:
        return x.astype("<i2").tobytes()
    n_out = x.size * dst_rate // src_rate
    y = np.interp(np.arange(n_out) * (src_rate / dst_rate), np.arange(x.size), x)
    return np.clip(np.rint(y), -32768, 32767).astype("<i2").tobytes()


def speech_wav(
    path: str | Path,
    text: str,
    rate: int = 48_000,
    lead_silence_ms: int = 500,
    tail_silence_ms: int = 1500,
    voice: str = "alloy",
) -> Path:
    """Write ``text`` as speech to a 16-bit mono WAV at ``rate``, wrapped in silence.

    Chromium's ``--use-file-for-fake-audio-capture`` loops the file, so the tail silence is what
    lets a VAD see the end of the turn before the speech comes round again.
    """
    speech = speech_pcm24k(text, voice)
    pcm = silence_pcm24k(lead_silence_ms) + speech + silence_pcm24k(tail_silence_ms)
    pcm = resample_pcm16(pcm, PCM_RATE, rate)
    path = Path(path)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return path


def _rgb_to_yuv(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """BT.601 limited-range Y'CbCr, as Chromium's y4m reader expects."""
    r, g, b = (float(c) for c in rgb)
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b

    def clamp(c: float) -> int:
        return round(min(255.0, max(0.0, c)))

    return clamp(y), clamp(u), clamp(v)


def solid_y4m(
    path: str | Path,
    rgb: tuple[int, int, int],
    width: int = 640,
    height: int = 480,
    fps: int = 15,
    seconds: float = 2,
) -> Path:
    """Write a solid-colour YUV4MPEG2 (C420) video for ``--use-file-for-fake-video-capture``."""
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise ValueError("width and height must be positive and even for 4:2:0")
    frames = max(1, round(fps * seconds))
    y, u, v = _rgb_to_yuv(rgb)
    frame = (
        b"FRAME\n"
        + bytes([y]) * (width * height)
        + bytes([u]) * (width * height // 4)
        + bytes([v]) * (width * height // 4)
    )
    path = Path(path)
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420\n".encode("ascii"))
        for _ in range(frames):
            f.write(frame)
    return path


def _solid_data_url(rgb: tuple[int, int, int], size: tuple[int, int], fmt: str, mime: str, **save) -> str:
    image = Image.new("RGB", size, tuple(rgb))
    buf = io.BytesIO()
    image.save(buf, format=fmt, **save)
    return f"data:{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def solid_jpeg_data_url(rgb: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> str:
    """A solid-colour JPEG as ``data:image/jpeg;base64,...``."""
    return _solid_data_url(rgb, size, "JPEG", "image/jpeg", quality=90)


def solid_png_data_url(rgb: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> str:
    """A solid-colour PNG as ``data:image/png;base64,...``."""
    return _solid_data_url(rgb, size, "PNG", "image/png")
