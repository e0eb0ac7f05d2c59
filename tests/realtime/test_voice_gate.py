"""VoiceGate: after Interrupt nothing more of the current reply is queued; the next reply plays."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit_webrtc.pcm_source import PcmAudioSource

from realtime.voice_gate import VoiceGate
from realtime.voice_out import VoiceOut

FRAME = np.full(960, 8000, dtype=np.int16)  # 20 ms of loud 48 kHz audio


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def queued_ms(source: PcmAudioSource) -> float:
    return source._fifo.samples * 1000 / source.sample_rate


def test_interrupt_drops_queued_and_in_flight_audio_until_the_voice_pauses():
    clock, source = Clock(), PcmAudioSource(sample_rate=48000)
    gate = VoiceGate(source, quiet_s=0.15, max_hold_s=3.0, clock=clock)
    for _ in range(10):
        gate.push(FRAME)
        clock.t += 0.02
    assert queued_ms(source) == pytest.approx(200)

    gate.interrupt()
    assert queued_ms(source) == 0
    for _ in range(20):  # the reply still arriving at 20 ms intervals: dropped
        clock.t += 0.02
        gate.push(FRAME)
    assert queued_ms(source) == 0
    assert gate.stats().held and gate.stats().dropped_pushes == 20

    clock.t += 0.5  # the provider stopped; the next reply starts after a pause and plays
    gate.push(FRAME)
    assert queued_ms(source) == pytest.approx(20)
    assert not gate.stats().held


def test_the_hold_is_bounded_even_if_the_voice_never_pauses():
    clock, source = Clock(), PcmAudioSource(sample_rate=48000)
    gate = VoiceGate(source, quiet_s=0.15, max_hold_s=1.0, clock=clock)
    gate.interrupt()
    pushed = 0
    while queued_ms(source) == 0:
        clock.t += 0.02
        gate.push(FRAME)
        pushed += 1
    assert pushed * 0.02 == pytest.approx(1.0, abs=0.03)


def test_voice_out_still_measures_and_caps_the_real_buffer_through_the_gate():
    source = PcmAudioSource(sample_rate=48000)
    gate = VoiceGate(source)
    out = VoiceOut(gate, max_buffer_ms=400, max_burst_ms=1000)
    assert out.exact_gauge  # reads the source's own fifo under the source's own lock
    import av

    frame = av.AudioFrame.from_ndarray(np.tile(FRAME, 2).reshape(1, -1), format="s16", layout="stereo")
    frame.sample_rate = 48000
    for _ in range(80):  # a 1.6 s burst: cut at the 1 s ceiling
        out.push_frame(frame)
    assert out.buffer_ms() == pytest.approx(1000, abs=20)
    out.clear()  # barge-in through VoiceOut clears the real source too
    assert queued_ms(source) == 0


def test_bad_arguments_are_refused_with_a_message():
    with pytest.raises(TypeError, match="push"):
        VoiceGate(object())
    with pytest.raises(ValueError, match="quiet_s"):
        VoiceGate(PcmAudioSource(sample_rate=48000), quiet_s=2.0, max_hold_s=1.0)
