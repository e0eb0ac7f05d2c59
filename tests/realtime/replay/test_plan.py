"""What a replay feeds and what the original column shows, from a conversation as History keeps it:
spoken turns as their kept voice, a chat-box message with its image as sent (not the thumbnail),
and each turn's original reply with the voice it played in."""

from __future__ import annotations

import base64
import io
import time
import wave

import numpy as np
from PIL import Image

from realtime.audio_tape import CLIP_RATE, VoiceClip
from realtime.events import ItemCreate, read_client_event
from realtime.history import HistoryStore
from realtime.replay.plan import original_run, plan_turns
from realtime.transcript import THUMB_MAX_SIDE, Transcript
from tests.realtime.history.samples import item, settings


def tone(seconds: float, hz: float) -> bytes:
    t = np.arange(int(seconds * CLIP_RATE)) / CLIP_RATE
    return (np.sin(2 * np.pi * hz * t) * 6000).astype("<i2").tobytes()


def big_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (640, 480), (220, 30, 30)).save(buf, "JPEG", quality=85)
    return buf.getvalue()


def test_the_transcript_hands_the_image_as_sent_to_history_once_and_keeps_only_the_thumbnail():
    sent = big_jpeg()
    url = "data:image/jpeg;base64," + base64.b64encode(sent).decode("ascii")
    content = [{"type": "input_text", "text": "what do you see?"}, {"type": "input_image", "image_url": url}]
    t = Transcript()
    event = read_client_event(
        {
            "type": "conversation.item.create",
            "item": {"id": "u1", "type": "message", "role": "user", "content": content},
        }
    )
    assert isinstance(event, ItemCreate)
    (final,) = t.apply(event)
    assert final.image_sent == sent and final.text == "what do you see?"
    (shown,) = t.snapshot()
    assert shown.image_sent is None and shown.image_thumb is not None
    with Image.open(io.BytesIO(shown.image_thumb)) as thumb:
        assert max(thumb.size) <= THUMB_MAX_SIDE


def test_turns_carry_their_kept_voice_and_images_as_sent_and_the_original_replies_their_voice(tmp_path):
    store = HistoryStore(tmp_path / "h.db")
    try:
        rec = store.recorder
        t0 = time.time() - 10  # items are stamped with the time they are written: now
        cid = rec.start_conversation(settings(), started_at=t0)
        on_update = rec.listener(cid)
        on_update(VoiceClip("user", "u1", t0 + 0.5, tone(2.0, 200)))
        on_update(item("u1", "user", "hello there", kind="audio"))  # final after the reply began
        on_update(VoiceClip("assistant", "resp_1", t0 + 3.0, tone(1.0, 400)))
        on_update(item("a1", "assistant", "You said hello there", kind="audio"))
        sent = big_jpeg()
        on_update(item("u2", "user", "what do you see?", kind="image", image_thumb=b"thumb", image_sent=sent))
        on_update(VoiceClip("assistant", "resp_2", time.time() + 0.5, tone(1.5, 300)))
        on_update(item("a2", "assistant", "It is mostly red.", kind="audio"))
        rec.end_conversation(cid)
        assert rec.flush(10)
        record = store.load(cid)
    finally:
        store.close()
    # the spoken turn starts with its clip (its transcript became final later), the typed one with its item
    spoken, typed = plan_turns(record)
    assert (spoken.kind, spoken.text, typed.kind, typed.text) == ("spoken", "hello there", "typed", "what do you see?")
    assert spoken.audio is not None and abs(len(spoken.audio) - len(tone(2.0, 200))) <= 960 * 2
    assert typed.images == (sent,) and typed.audio is None  # the image as the model got it
    run = original_run(record)
    assert [r.text for r in run.results] == ["You said hello there", "It is mostly red."]
    for result, seconds in zip(run.results, (1.0, 1.5), strict=True):
        assert result.audio_wav is not None
        with wave.open(io.BytesIO(result.audio_wav)) as w:
            assert abs(w.getnframes() / CLIP_RATE - seconds) < 0.05
