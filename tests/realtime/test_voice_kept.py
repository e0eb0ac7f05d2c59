"""A real call keeps both sides' voice in History: the spoken turn as its own clip (linked to its
transcript item), the reply as it played, and the conversation as one WAV with both voices."""

from __future__ import annotations

import asyncio

import numpy as np

from realtime.audio_tape import CLIP_RATE
from realtime.history import HistoryStore
from realtime.history.voice import clip_pcm, conversation_wav
from realtime.settings import CameraSettings, Settings
from tests.fakebrowser import BridgedCall, wait_until
from tests.media import speech_wav


def rms(pcm: bytes) -> float:
    a = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(a * a))) if a.size else 0.0


def played_out(call: BridgedCall) -> bool:
    return any(e.type == "output_audio_buffer.stopped" for e in call.bridge.events.snapshot())


async def spoken_call(engine, tmp_path, keep_audio: bool) -> tuple[HistoryStore, str, str]:
    wav = speech_wav(tmp_path / "hello.wav", "hello there how are you", tail_silence_ms=0)
    settings = Settings(
        api_key="test-key", base_url=engine.base_url, camera=CameraSettings(enabled=False), keep_audio=keep_audio
    )
    store = HistoryStore(tmp_path / "h.db")
    async with BridgedCall(settings) as call:
        cid = store.recorder.attach(call.bridge, settings)
        call.browser.play_wav(wav)
        await call.browser.mic.wait_spoken()
        # The reply's text arrives before its voice starts, so "listening" alone can be the moment
        # between them: wait for the provider to say the voice has played out.
        await wait_until(lambda: played_out(call), 30, "the reply to finish playing")
        await asyncio.sleep(0.5)
        user = [i for i in call.bridge.snapshot().transcript if i.role == "user" and i.kind == "audio"]
    assert store.recorder.flush(10)
    return store, cid, user[0].id


async def test_a_spoken_turn_and_its_reply_are_kept_and_play_back_as_one_conversation(engine, tmp_path):
    store, cid, user_item = await spoken_call(engine, tmp_path, keep_audio=True)
    try:
        record = store.load(cid)
        roles = [c.role for c in record.audio]
        assert roles == ["user", "assistant"], roles
        user, reply = record.audio
        assert user.item_id == user_item  # a replay finds the turn's own audio
        assert 1.0 < user.seconds < 6.0 and rms(clip_pcm(user)) > 300  # the words, not silence
        assert reply.seconds > 0.5 and rms(clip_pcm(reply)) > 300
        assert reply.started_at > user.started_at
        wav = conversation_wav(record)
        assert wav is not None and len(wav) > (user.seconds + reply.seconds) * CLIP_RATE * 2 * 0.9
    finally:
        store.close()


async def test_with_keep_audio_off_nothing_of_the_voice_is_kept(engine, tmp_path):
    store, cid, _ = await spoken_call(engine, tmp_path, keep_audio=False)
    try:
        record = store.load(cid)
        assert record.audio == () and [i.role for i in record.items][:2] == ["user", "assistant"]
    finally:
        store.close()
