"""AudioTape: the voice cut into clips at the provider's turn signals, on a fake clock."""

from __future__ import annotations

import numpy as np
import pytest

from realtime.audio_tape import CLIP_RATE, AudioTape, VoiceClip
from realtime.voice_codec import decode_voice, encode_voice

FRAME = 960  # 20 ms at 48 kHz


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def tone(level: int = 8000) -> np.ndarray:
    return np.full(FRAME, level, dtype=np.int16)


def frames(tape: AudioTape, clock: Clock, n: int, level: int = 8000, side: str = "mic") -> list[VoiceClip]:
    clips: list[VoiceClip] = []
    for _ in range(n):
        if side == "mic":
            tape.mic(tone(level))
        else:
            clips += tape.voice(tone(level))
        clock.now += 0.02
    return clips


def test_a_spoken_turn_is_one_user_clip_from_a_second_before_speech_started_to_speech_stopped():
    clock = Clock()
    tape = AudioTape(pre_roll_s=1.0, clock=clock)
    frames(tape, clock, 150, level=0)  # 3 s of silence: only the last second is held
    assert tape.speech("started", "item_1") == ()
    started = clock.now
    frames(tape, clock, 100)  # 2 s of speech
    (clip,) = tape.speech("stopped", "item_1")
    assert clip.role == "user" and clip.item_id == "item_1"
    assert clip.seconds == pytest.approx(3.0, abs=0.021)
    assert clip.started_at == pytest.approx(started - 1.0, abs=0.021)
    pcm = np.frombuffer(clip.pcm, dtype="<i2")
    assert not pcm[: CLIP_RATE - 480].any() and (pcm[CLIP_RATE:] == 8000).all()  # the pre-roll, then the words


def test_the_assistants_clip_runs_from_playback_started_to_a_short_tail_after_it_stopped():
    clock = Clock()
    tape = AudioTape(tail_s=0.3, clock=clock)
    assert frames(tape, clock, 50, side="voice") == []  # no response playing: nothing kept
    tape.playback("started", "resp_1")
    frames(tape, clock, 100, side="voice")
    assert tape.playback("stopped", "resp_1") == ()
    clips = frames(tape, clock, 50, side="voice")
    assert len(clips) == 1 and clips[0].role == "assistant" and clips[0].item_id == "resp_1"
    assert clips[0].seconds == pytest.approx(2.3, abs=0.021)


def test_a_barge_in_cuts_the_assistants_clip_at_cleared_and_the_tick_ends_a_tail_without_frames():
    clock = Clock()
    tape = AudioTape(tail_s=0.3, clock=clock)
    tape.playback("started", "resp_1")
    frames(tape, clock, 10, side="voice")
    (cut,) = tape.playback("cleared", "resp_1")
    assert cut.seconds == pytest.approx(0.2, abs=0.001)
    tape.playback("started", "resp_2")
    frames(tape, clock, 10, side="voice")
    tape.playback("stopped", "resp_2")
    assert tape.tick() == ()
    clock.now += 0.31
    assert [c.item_id for c in tape.tick()] == ["resp_2"]


def test_close_gives_what_is_still_open_and_a_clip_never_grows_past_its_cap():
    clock = Clock()
    tape = AudioTape(pre_roll_s=0.0, max_clip_s=1.0, clock=clock)
    tape.speech("started", "u")
    frames(tape, clock, 100)  # 2 s, cap 1 s
    tape.playback("started", "r")
    frames(tape, clock, 5, side="voice")
    clips = tape.close()
    assert [(c.role, round(c.seconds, 2)) for c in clips] == [("user", 1.0), ("assistant", 0.1)]
    assert tape.close() == ()


def test_opus_keeps_speech_at_a_small_fraction_of_its_pcm_size():
    t = np.arange(CLIP_RATE * 4) / CLIP_RATE
    pcm = (np.sin(2 * np.pi * 300 * t) * 6000).astype("<i2").tobytes()
    data = encode_voice(pcm, CLIP_RATE)
    assert data[:4] == b"OggS" and len(data) < len(pcm) / 10
    back = np.frombuffer(decode_voice(data, CLIP_RATE), dtype="<i2")
    assert abs(back.size - CLIP_RATE * 4) <= 960
    assert np.sqrt(np.mean(back.astype(np.float64) ** 2)) == pytest.approx(6000 / np.sqrt(2), rel=0.15)
