"""tests/media.py: the generated media are what Chromium, aiortc and the engine expect."""

from __future__ import annotations

import base64
import io
import wave

import av
import numpy as np
import pytest
from PIL import Image

from tests.media import (
    rms,
    silence_pcm24k,
    solid_jpeg_data_url,
    solid_png_data_url,
    solid_y4m,
    speech_pcm24k,
    speech_wav,
)


def test_silence_and_rms():
    assert silence_pcm24k(1000) == bytes(48_000)
    assert silence_pcm24k(0) == b""
    assert rms(silence_pcm24k(100)) == 0.0
    assert rms(b"") == 0.0
    full_scale_square = np.tile(np.array([32767, -32767], dtype="<i2"), 100).tobytes()
    assert rms(full_scale_square) == pytest.approx(32767)
    with pytest.raises(ValueError):
        silence_pcm24k(-1)


def test_speech_pcm24k_is_audible_speech():
    pcm = speech_pcm24k("hello there")
    assert 0.3 < len(pcm) / 48_000 < 3
    assert rms(pcm) > 1000


@pytest.mark.parametrize("rate", [48_000, 24_000, 16_000])
def test_speech_wav_is_a_readable_wav_with_silence_around_the_speech(tmp_path, rate):
    path = speech_wav(tmp_path / "s.wav", "good morning", rate=rate, lead_silence_ms=500, tail_silence_ms=1500)
    speech_seconds = len(speech_pcm24k("good morning")) / 48_000
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, rate)
        frames = w.readframes(w.getnframes())
        assert w.getnframes() / rate == pytest.approx(0.5 + speech_seconds + 1.5, abs=0.05)
    samples = np.frombuffer(frames, dtype="<i2")
    assert rms(samples[: int(0.45 * rate)].tobytes()) == 0  # lead silence
    assert rms(samples[-int(1.45 * rate) :].tobytes()) == 0  # tail silence
    assert rms(samples[int(0.5 * rate) : -int(1.5 * rate)].tobytes()) > 1000


def test_solid_y4m_has_the_header_and_frame_sizes_chromium_reads(tmp_path):
    path = solid_y4m(tmp_path / "v.y4m", (255, 0, 0), width=64, height=48, fps=15, seconds=2)
    data = path.read_bytes()
    header, rest = data.split(b"\n", 1)
    assert header == b"YUV4MPEG2 W64 H48 F15:1 Ip A1:1 C420"
    frame_size = len(b"FRAME\n") + 64 * 48 * 3 // 2
    assert len(rest) == 30 * frame_size
    frame = rest[:frame_size]
    assert frame.startswith(b"FRAME\n")
    y, u, v = frame[6], frame[6 + 64 * 48], frame[6 + 64 * 48 + 16 * 48]
    assert (y, u, v) == (82, 90, 240)  # BT.601 limited-range red
    with pytest.raises(ValueError):
        solid_y4m(tmp_path / "odd.y4m", (0, 0, 0), width=63)


def test_solid_y4m_decodes_back_to_its_colour(tmp_path):
    path = solid_y4m(tmp_path / "g.y4m", (0, 160, 0), width=32, height=32, fps=10, seconds=1)
    with av.open(str(path)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) == 10 and frames[0].shape == (32, 32, 3)
    assert np.abs(frames[0].astype(int) - (0, 160, 0)).max() <= 4


@pytest.mark.parametrize(
    ("maker", "mime", "fmt"), [(solid_jpeg_data_url, "image/jpeg", "JPEG"), (solid_png_data_url, "image/png", "PNG")]
)
def test_solid_image_data_urls(maker, mime, fmt):
    url = maker((10, 20, 200), size=(64, 48))
    head, payload = url.split(",", 1)
    assert head == f"data:{mime};base64"
    image = Image.open(io.BytesIO(base64.b64decode(payload)))
    assert image.format == fmt and image.size == (64, 48)
    assert np.abs(np.asarray(image.convert("RGB")).astype(int) - (10, 20, 200)).max() <= 6
