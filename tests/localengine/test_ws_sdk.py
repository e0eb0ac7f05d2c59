"""The openai SDK's ``realtime.connect`` over WebSocket: text, image, tool and audio turns.

Every server event is read raw and validated against ``openai.types.realtime.RealtimeServerEvent``.
"""

from __future__ import annotations

import base64
import json
import wave

import pytest
from openai import AsyncOpenAI

from tests.localengine.helpers import API_KEY, EventStream, first, reply_text, rms, user_text
from tests.media import solid_jpeg_data_url, speech_wav


@pytest.fixture
async def rt(engine):
    async with (
        AsyncOpenAI(base_url=engine.base_url, api_key=API_KEY) as client,
        client.realtime.connect(model="gpt-realtime") as conn,
    ):
        stream = EventStream(conn)
        created = await stream.next()
        assert created["type"] == "session.created"
        assert created["session"]["model"] == "gpt-realtime"
        yield conn, stream


async def _text_only(conn, stream, **extra):
    await conn.session.update(session={"type": "realtime", "output_modalities": ["text"], **extra})
    updated = first(await stream.until("session.updated"), "session.updated")
    assert updated["session"]["output_modalities"] == ["text"]


async def test_text_turn(rt):
    conn, stream = rt
    await _text_only(conn, stream)
    await conn.conversation.item.create(item=user_text("hello from the sdk"))
    await conn.response.create()
    events = await stream.until("response.done")
    assert reply_text(events) == "You said: hello from the sdk"
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert deltas == "You said: hello from the sdk"
    done = first(events, "response.done")["response"]
    assert done["status"] == "completed"
    assert done["usage"]["total_tokens"] > 0 and done["usage"]["output_tokens"] > 0


async def test_restored_context_is_recalled(rt):
    """Items created with conversation.item.create (as the app restores a conversation after a
    reconnect) are the conversation: the recall rule quotes the first of them."""
    conn, stream = rt
    await _text_only(conn, stream)
    for text in ("my name is Ada", "I like tea"):
        await conn.conversation.item.create(item=user_text(text))
        added = first(await stream.until("conversation.item.added"), "conversation.item.added")
        assert added["item"]["content"][0]["text"] == text
    await conn.conversation.item.create(item=user_text("What did I say first?"))
    await conn.response.create()
    events = await stream.until("response.done")
    assert reply_text(events) == "You first said: my name is Ada"
    assert first(events, "response.done")["response"]["status"] == "completed"


async def test_instructions_change_is_visible(rt):
    conn, stream = rt
    await _text_only(conn, stream, instructions="Say: Ahoy there.")
    await conn.conversation.item.create(item=user_text("ping"))
    await conn.response.create()
    assert reply_text(await stream.until("response.done")).startswith("Ahoy there.")


async def test_image_turn(rt):
    conn, stream = rt
    await _text_only(conn, stream)
    await conn.conversation.item.create(
        item={
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_image", "image_url": solid_jpeg_data_url((0, 0, 255), size=(64, 48))},
                {"type": "input_text", "text": "what do you see?"},
            ],
        }
    )
    await conn.response.create()
    text = reply_text(await stream.until("response.done"))
    assert "blue" in text.lower()
    assert "64 by 48" in text


async def test_tool_turn(rt):
    conn, stream = rt
    tool = {
        "type": "function",
        "name": "add_numbers",
        "description": "Add two numbers.",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"],
        },
    }
    await _text_only(conn, stream, tools=[tool], tool_choice="auto")
    await conn.conversation.item.create(item=user_text("please add numbers 19 and 23"))
    await conn.response.create()
    events = await stream.until("response.done")
    call = first(events, "response.function_call_arguments.done")
    assert call["name"] == "add_numbers"
    assert json.loads(call["arguments"]) == {"a": 19, "b": 23}
    assert first(events, "response.done")["response"]["output"][0]["type"] == "function_call"

    await conn.conversation.item.create(
        item={
            "type": "function_call_output",
            "call_id": call["call_id"],
            "output": json.dumps({"sum": 42}),
        }
    )
    await conn.response.create()
    text = reply_text(await stream.until("response.done"))
    assert "42" in text


async def test_audio_turn_from_speech_wav(rt, tmp_path):
    conn, stream = rt
    await conn.session.update(
        session={
            "type": "realtime",
            "output_modalities": ["audio"],
            "audio": {
                "input": {
                    "transcription": {"model": "whisper-1"},
                    "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
                }
            },
        }
    )
    await stream.until("session.updated")
    wav_path = speech_wav(
        tmp_path / "hello.wav", "hello there, how are you today", rate=24_000, lead_silence_ms=300, tail_silence_ms=1200
    )
    with wave.open(str(wav_path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (24_000, 1, 2)
        pcm = w.readframes(w.getnframes())
    step = 24_000 * 2 // 10  # 100 ms per append, as a microphone client would send
    for i in range(0, len(pcm), step):
        await conn.input_audio_buffer.append(audio=base64.b64encode(pcm[i : i + step]).decode())

    events = await stream.until("response.done", timeout=40)
    types = [e["type"] for e in events]
    for expected in (
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "response.created",
    ):
        assert expected in types, types
    assert types.index("input_audio_buffer.speech_started") < types.index("input_audio_buffer.speech_stopped")
    if "conversation.item.input_audio_transcription.completed" not in types:
        events += await stream.until("conversation.item.input_audio_transcription.completed")
    transcript = first(events, "conversation.item.input_audio_transcription.completed")["transcript"]
    assert transcript.strip(), "the transcription item is empty"
    audio = b"".join(base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta")
    assert len(audio) > 24_000 * 2 // 2, "less than half a second of reply audio"
    assert rms(audio) > 500, f"reply audio is (near) silent: rms {rms(audio):.0f}"
    assert reply_text(events).startswith("You said:")
