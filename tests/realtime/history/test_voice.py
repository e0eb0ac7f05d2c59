"""History keeps both sides' voice: clips stored compressed, the cap and its note, the
conversation's WAV, and a file from before audio was kept (schema 2) upgraded in place."""

from __future__ import annotations

import io
import sqlite3
import wave

import numpy as np
import pytest

from realtime.audio_tape import CLIP_RATE, VoiceClip
from realtime.history import HistoryStore
from realtime.history.schema import _VERSION_1
from realtime.history.voice import MAX_GAP_S, conversation_wav, voice_note
from tests.realtime.history.samples import item, settings


def noise(seconds: float, level: int = 3000, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)  # noise does not compress: the cap is reached predictably
    return (rng.standard_normal(int(seconds * CLIP_RATE)) * level).astype("<i2").tobytes()


def wav_samples(data: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(data)) as w:
        assert w.getframerate() == CLIP_RATE and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def test_both_sides_are_kept_compressed_and_play_back_as_one_wav_in_time_order(store):
    rec = store.recorder
    cid = rec.start_conversation(settings(), started_at=100.0)
    on_update = rec.listener(cid)
    on_update(item("u1", "user", "hello", kind="audio"))
    on_update(VoiceClip("user", "u1", 101.0, noise(2.0)))
    on_update(VoiceClip("assistant", "resp_1", 103.5, noise(1.5, seed=1)))
    on_update(VoiceClip("user", "u2", 160.0, noise(1.0, seed=2)))  # a minute later: the gap is shortened
    rec.end_conversation(cid)
    assert rec.flush(10)
    record = store.load(cid)
    assert [(c.role, c.item_id, round(c.seconds, 2)) for c in record.audio] == [
        ("user", "u1", 2.0),
        ("assistant", "resp_1", 1.5),
        ("user", "u2", 1.0),
    ]
    assert all(c.codec == "opus" and c.data[:4] == b"OggS" for c in record.audio)
    assert sum(len(c.data) for c in record.audio) < len(noise(4.5)) / 4
    samples = wav_samples(conversation_wav(record) or b"")
    # 2 s, 0.5 s of silence, 1.5 s, then the minute cut to MAX_GAP_S, then 1 s
    assert samples.size / CLIP_RATE == pytest.approx(2.0 + 0.5 + 1.5 + MAX_GAP_S + 1.0, abs=0.05)
    quiet = samples[int(2.1 * CLIP_RATE) : int(2.4 * CLIP_RATE)]
    assert np.abs(quiet).max() < 50 and np.abs(samples[int(2.6 * CLIP_RATE) :][:CLIP_RATE]).mean() > 1000
    size = sum(len(c.data) for c in record.audio)
    assert voice_note(record) == f"Voice kept: 4s in 3 clips ({size / 1e6:.2f} MB)."


def test_the_cap_keeps_the_first_clips_and_says_from_when_the_rest_was_left_out(store):
    rec = store.recorder
    cid = rec.start_conversation(settings(audio_cap_mb=0.02), started_at=100.0)  # 20 kB: about 6 s of noise
    on_update = rec.listener(cid)
    for n in range(6):
        on_update(VoiceClip("user", f"u{n}", 100.0 + 60 * n, noise(2.0, seed=n)))
    rec.end_conversation(cid)
    assert rec.flush(10)
    record = store.load(cid)
    kept = len(record.audio)
    assert 1 <= kept < 6 and sum(len(c.data) for c in record.audio) <= 20_000
    assert record.audio_cut_at == 100.0 + 60 * kept
    note = voice_note(record) or ""
    assert f"first {kept}m 00s" in note and "REALTIME_AUDIO_CAP_MB" in note and "left out the rest" in note


def test_with_keep_audio_off_no_voice_is_stored(store):
    rec = store.recorder
    cid = rec.start_conversation(settings(keep_audio=False))
    rec.listener(cid)(VoiceClip("user", "u1", 1.0, noise(1.0)))
    rec.end_conversation(cid)
    assert rec.flush(10)
    record = store.load(cid)
    assert record.audio == () and conversation_wav(record) is None


def test_deleting_a_conversation_deletes_its_voice(store):
    cid = store.recorder.start_conversation(settings())
    store.recorder.listener(cid)(VoiceClip("user", "u1", 1.0, noise(1.0)))
    assert store.recorder.flush(10)
    assert store.delete(cid)
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM audio").fetchone()[0] == 0


def test_a_history_file_from_before_audio_was_kept_is_upgraded_and_keeps_its_conversations(tmp_path):
    db = tmp_path / "h.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(_VERSION_1)
        conn.execute("ALTER TABLE conversations ADD COLUMN source TEXT NOT NULL DEFAULT 'studio'")
        conn.execute(
            "INSERT INTO conversations (id, started_at, last_at, settings, backend, model) VALUES"
            " ('old', 1.0, 2.0, '{}', 'local', 'gpt-realtime')"
        )
        conn.execute("PRAGMA user_version = 2")
    store = HistoryStore(db)
    try:
        record = store.load("old")
        assert record.audio == () and record.audio_cut_at is None and voice_note(record) is None
        cid = store.recorder.start_conversation(settings())
        store.recorder.listener(cid)(VoiceClip("user", "u1", 1.5, noise(0.5)))
        assert store.recorder.flush(10)
        assert len(store.load(cid).audio) == 1
    finally:
        store.close()
