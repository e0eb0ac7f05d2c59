"""Sans-IO tests of what the engine honours offline: ``max_output_tokens`` (and its default cap),
``audio.output.speed``, ``turn_detection.idle_timeout_ms``, and that hostile input is an ``error``.

Uses the ``Harness`` of ``test_conversation`` (every event validated against the SDK's union).
"""

from __future__ import annotations

import json

import pytest

from localengine.conversation import Play, Synthesize, Transcribe
from localengine.session_config import MAX_OUTPUT_TOKENS
from tests.localengine.test_conversation import TEXT, Harness, silence, text_session, tone


def test_max_output_tokens_cuts_text_and_reports_incomplete():
    h = text_session()
    h.update(max_output_tokens=3)
    h.say("count to 50")
    h.respond()
    done = h.one("response.done")["response"]
    assert done["status"] == "incomplete" and done["status_details"]["reason"] == "max_output_tokens"
    assert done["usage"]["output_tokens"] <= 3 and len(h.reply_text()) <= 12
    h.respond(max_output_tokens="inf")
    assert h.one("response.done")["response"]["status"] == "completed"


def test_inf_means_the_default_cap():
    h = text_session()
    h.say("y" * 100_000)
    h.respond()
    done = h.one("response.done")["response"]
    assert done["status"] == "incomplete" and done["max_output_tokens"] == "inf"
    assert done["usage"]["output_tokens"] == MAX_OUTPUT_TOKENS
    deltas = h.sent("response.output_text.delta")
    assert 0 < len(deltas) <= MAX_OUTPUT_TOKENS


def test_spoken_reply_fits_text_plus_audio_tokens_in_the_cap():
    h = Harness()
    h.update(max_output_tokens=40, audio={"input": {"turn_detection": None}})
    h.say("hello " * 200)
    h.respond()
    (synth,) = h.of(Synthesize)
    assert len(synth.text) < 40 * 4  # room left for the audio's tokens
    h.result(synth.job_id, tone(60_000))  # more audio than the cap allows
    done = h.one("response.done")["response"]
    assert done["status"] == "incomplete" and done["usage"]["output_tokens"] <= 40


def test_speed_reaches_synthesis():
    h = Harness()
    h.update(audio={"input": {"turn_detection": None}, "output": {"speed": 1.4}})
    h.say("hi")
    h.respond()
    assert h.of(Synthesize)[0].speed == 1.4


def _idle_session(transport: str = "websocket") -> Harness:
    h = Harness(transport=transport)
    h.update(
        output_modalities=["audio"],
        audio={"input": {"turn_detection": {"type": "server_vad", "idle_timeout_ms": 5000}}},
    )
    return h


def test_idle_timeout_fires_once_after_the_reply_was_heard():
    h = _idle_session()
    h.say("hi")
    h.respond()
    h.result(h.of(Synthesize)[0].job_id, tone(2000))  # 2 s of voice, sent at t=0
    assert h.tick(6.5) == []  # 2 s of speech + 4.5 s: not yet
    h.audio(silence(7000))
    effects = h.tick(7.1)
    assert h.types(effects)[:4] == [
        "input_audio_buffer.timeout_triggered",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    fired = h.one("input_audio_buffer.timeout_triggered", effects)
    assert fired["audio_end_ms"] == 7000 and fired["audio_end_ms"] - fired["audio_start_ms"] == 5000
    assert h.one("input_audio_buffer.committed", effects)["item_id"] == fired["item_id"]
    assert "response.created" in h.types(effects)
    assert h.of(Transcribe, effects)
    assert h.tick(8.0) == []  # once: armed again only after the next reply


def test_idle_timeout_waits_for_webrtc_playback_and_is_disarmed_by_speech():
    h = _idle_session("webrtc")
    h.say("hi")
    h.respond()
    h.result(h.of(Synthesize)[0].job_id, tone(1000))
    (play,) = h.of(Play)
    assert h.tick(10.0) == []  # still playing
    h.now = 10.0
    h.finished(play.item_id)
    h.audio(tone(400))  # the user speaks: no timeout
    assert h.tick(20.0) == []


def test_idle_timeout_is_server_vad_only():
    h = Harness()
    h.update(audio={"input": {"turn_detection": {"type": "semantic_vad"}}}, **TEXT)
    h.say("hi")
    h.respond()
    assert h.tick(100.0) == []


@pytest.mark.parametrize(
    ("raw", "code", "param"),
    [
        (
            json.dumps({"type": "session.update", "session": {"type": "realtime", "audio": {"output": 5}}}),
            "invalid_type",
            "session.audio.output",
        ),
        (json.dumps({"type": "response.create", "response": {"audio": "x"}}), "invalid_type", "response.audio"),
        (
            '{"type": "session.update", "session": ' + '{"a": ' * 500 + "1" + "}" * 500 + "}",
            "invalid_value",
            "session",
        ),
        ("[" * 100_000, "invalid_json", None),
        (
            json.dumps({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": 5}}),
            "invalid_type",
            "item.content",
        ),
    ],
    ids=["audio.output=5", "response.audio=x", "500 deep", "100k deep", "content=5"],
)
def test_hostile_events_are_errors_naming_the_field(raw, code, param):
    h = text_session()
    h.send(raw)
    error = h.error()
    assert (error["code"], error["param"]) == (code, param)
    h.say("fine")
    h.respond()
    assert h.reply_text() == "You said: fine"


async def test_websocket_send_queue_is_bounded():
    """A client that does not read cannot grow the engine's memory: past the cap the socket is closed (1008)."""
    import asyncio

    from localengine.server import WebSocketSink

    class StuckSocket:
        def __init__(self) -> None:
            self.closed: tuple[int, str] | None = None
            self.sent = 0

        async def send_text(self, text: str) -> None:
            self.sent += 1
            await asyncio.Event().wait()  # the client never reads: the transport stays paused

        async def close(self, code: int, reason: str) -> None:
            self.closed = (code, reason)

    ws = StuckSocket()
    sink = WebSocketSink(ws, max_pending_bytes=100_000)  # type: ignore[arg-type]
    event = {"type": "response.output_text.delta", "delta": "x" * 1000}
    for _ in range(500):
        sink.send(event)
    assert sink.closing and sink.peak_pending <= 100_000 + 2_000
    await asyncio.wait_for(sink.task, 5)  # closed at once, not behind the stuck write
    assert ws.closed == (1008, "client is not reading its events") and ws.sent <= 1
