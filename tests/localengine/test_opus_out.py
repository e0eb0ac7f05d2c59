"""The engine's voice as Opus packets (``localengine.opus_out``): mono, one packet per 20 ms, silence
copied without libopus, and what a decoder makes of it is what went in."""

from __future__ import annotations

import fractions

import av
import numpy as np
import pytest
from aiortc.codecs.opus import OpusDecoder
from aiortc.jitterbuffer import JitterFrame

from localengine.opus_out import OpusOut
from localengine.rtc import FRAME_SAMPLES, VoiceTrack

RATE = 48_000
SILENCE = bytes(FRAME_SAMPLES * 2)


def tone(i: int, hz: float) -> bytes:
    t = (np.arange(FRAME_SAMPLES) + i * FRAME_SAMPLES) / RATE
    return (12000 * np.sin(2 * np.pi * hz * t)).astype(np.int16).tobytes()


def decode_all(packets: list[bytes]) -> np.ndarray:
    """What a WebRTC peer plays: aiortc's decoder (opus/48000/2), folded back to mono."""
    decoder = OpusDecoder()
    out = []
    for i, data in enumerate(packets):
        for frame in decoder.decode(JitterFrame(data=data, timestamp=i * FRAME_SAMPLES)):
            assert isinstance(frame, av.AudioFrame)
            out.append(frame.to_ndarray().reshape(-1, 2)[:, 0])
    return np.concatenate(out)


def peak_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / RATE)[int(np.argmax(spectrum))])


def test_speech_is_one_mono_packet_per_frame_and_decodes_to_the_same_tone():
    opus = OpusOut()
    packets = [opus.packet(tone(i, 440.0), i * FRAME_SAMPLES) for i in range(50)]
    assert [p.pts for p in packets] == [i * FRAME_SAMPLES for i in range(50)]
    assert all(p.time_base == fractions.Fraction(1, RATE) for p in packets)
    assert all(not bytes(p)[0] & 0x04 for p in packets)  # the TOC byte's stereo flag is clear
    kbps = sum(len(bytes(p)) for p in packets) * 8 / 1.0 / 1000
    assert 20 < kbps < 80, kbps  # speech bitrate, not aiortc's 96 kb/s stereo
    decoded = decode_all([bytes(p) for p in packets])
    assert abs(peak_hz(decoded[-24000:]) - 440.0) < 5


def test_a_long_silence_is_copied_and_the_speech_after_it_decodes_the_same():
    opus = OpusOut()
    speech = [bytes(opus.packet(tone(i, 300 + 40 * (i % 7)), i * FRAME_SAMPLES)) for i in range(25)]
    made: list[bytes] = []
    while len(made) < 2 or made[-1] != made[-2]:  # the look-ahead flushes, then the encoder repeats itself
        assert len(made) < 20, "the encoder never settled on one silence packet"
        made.append(bytes(opus.packet(SILENCE, (25 + len(made)) * FRAME_SAMPLES)))
    settled = opus.encoded
    copied = [opus.packet(SILENCE, (25 + len(made) + i) * FRAME_SAMPLES) for i in range(500)]
    assert opus.encoded == settled and {bytes(p) for p in copied} == {made[-1]} and len(made[-1]) <= 3
    assert copied[-1].pts == (25 + len(made) + 499) * FRAME_SAMPLES
    after = [bytes(opus.packet(tone(1000 + i, 500.0), (2000 + i) * FRAME_SAMPLES)) for i in range(20)]
    assert opus.encoded == settled + 20
    with_copies = decode_all(speech + made + [bytes(p) for p in copied] + after)
    without = decode_all(speech + made + after)
    tail = 20 * FRAME_SAMPLES
    assert np.array_equal(with_copies[-tail:], without[-tail:])
    assert np.sqrt(np.mean(with_copies[-tail:].astype(np.float64) ** 2)) > 5000


def test_a_frame_that_is_not_20_ms_is_refused():
    with pytest.raises(ValueError, match="20 ms"):
        OpusOut().packet(bytes(100), 0)


async def test_the_voice_track_hands_aiortc_packets_with_the_played_audio():
    track = VoiceTrack()
    track.play("item_1", "resp_1", tone(0, 440.0)[:FRAME_SAMPLES] * 10)  # 24 kHz in: 200 ms
    packets = [await track.recv() for _ in range(40)]
    encoded = track._opus.encoded
    quiet = [await track.recv() for _ in range(10)]
    track.stop()
    assert all(isinstance(p, av.Packet) for p in packets)
    assert [p.pts for p in packets] == [i * FRAME_SAMPLES for i in range(40)]
    sizes = [len(bytes(p)) for p in packets]
    assert min(sizes[:10]) > 20 and max(sizes[-5:]) <= 3, sizes  # 200 ms of voice, then silence
    assert track._opus.encoded == encoded and {bytes(p) for p in quiet} == {bytes(packets[-1])}  # copied
