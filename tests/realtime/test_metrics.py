"""TurnClock latency stamps, usage totals from response.done, and the cost estimate."""

from __future__ import annotations

import dataclasses
import itertools

import pydantic
import pytest
from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent

from realtime.events import ServerEvent, read_client_event, read_server_event, read_usage
from realtime.metrics import ClockEvent, TurnClock, TurnMetrics
from realtime.pricing import PRICES, PRICES_AS_OF, estimate_cost, price_for
from realtime.usage import UsageTotals

_server = pydantic.TypeAdapter(RealtimeServerEvent)
_client = pydantic.TypeAdapter(RealtimeClientEvent)
_ids = itertools.count()


def S(type_: str, **fields) -> ServerEvent:
    """A server event, validated against the SDK, as the bridge reads it."""
    event = {"type": type_, "event_id": f"ev_{next(_ids)}", **fields}
    _server.validate_python(event)
    return read_server_event(event)


USAGE = {
    "total_tokens": 1000,
    "input_tokens": 700,
    "output_tokens": 300,
    "input_token_details": {
        "text_tokens": 100,
        "audio_tokens": 500,
        "image_tokens": 100,
        "cached_tokens": 250,
        "cached_tokens_details": {"text_tokens": 50, "audio_tokens": 200, "image_tokens": 0},
    },
    "output_token_details": {"text_tokens": 60, "audio_tokens": 240},
}


def stopped():
    return S("input_audio_buffer.speech_stopped", audio_end_ms=1200, item_id="u1")


def created(rid):
    return S("response.created", response={"id": rid, "status": "in_progress", "output": []})


def audio_delta(rid):
    return S("response.output_audio.delta", response_id=rid, item_id="a", output_index=0, content_index=0, delta="AAAA")


def transcript_delta(rid):
    return S(
        "response.output_audio_transcript.delta",
        response_id=rid,
        item_id="a",
        output_index=0,
        content_index=0,
        delta="Hi",
    )


def response_done(rid, status="completed", output=None, usage=USAGE):
    output = (
        output
        if output is not None
        else [{"id": "a", "type": "message", "role": "assistant", "status": "completed", "content": []}]
    )
    return S("response.done", response={"id": rid, "status": status, "output": output, "usage": usage})


def typed(text) -> ClockEvent:
    event = {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]},
    }
    _client.validate_python(event)
    return read_client_event(event)


def test_usage_from_response_usage():
    u = read_usage(USAGE)
    assert (u.input_text, u.input_audio, u.input_image) == (100, 500, 100)
    assert (u.cached_text, u.cached_audio, u.cached_image) == (50, 200, 0)
    assert (u.output_text, u.output_audio) == (60, 240)
    assert (u.input_tokens, u.output_tokens, u.total_tokens, u.responses) == (700, 300, 1000, 1)
    assert u + u == UsageTotals(200, 1000, 200, 100, 400, 0, 120, 480, 2)
    assert read_usage(None) == UsageTotals()
    assert read_usage({"input_tokens": 9, "output_tokens": 4}) == UsageTotals(
        input_text=9, output_text=4, responses=1
    )  # totals without breakdown count as text
    assert read_usage({"input_token_details": "junk", "output_tokens": -3}) == UsageTotals(responses=1)


def test_spoken_turn_latency():
    clock = TurnClock()
    assert clock.feed(stopped(), 10.0) == ()
    clock.feed(created("r1"), 10.05)
    clock.feed(S("output_audio_buffer.started", response_id="r1"), 10.4)  # WebRTC: audio as media
    clock.feed(audio_delta("r1"), 10.5)
    clock.feed(transcript_delta("r1"), 10.6)
    (turn,) = clock.feed(response_done("r1"), 12.0)
    assert (turn.first_audio_ms, turn.first_text_ms) == (pytest.approx(400.0), pytest.approx(600.0))
    assert dataclasses.replace(turn, first_audio_ms=None, first_text_ms=None) == TurnMetrics(
        "turn_1", 10.0, None, None, read_usage(USAGE), "speech", "completed"
    )
    assert clock.usage == read_usage(USAGE)


def test_typed_text_turn_in_text_mode_has_no_audio():
    clock = TurnClock()
    clock.feed(typed("hello"), 5.0)
    clock.feed(created("r1"), 5.01)
    clock.feed(
        S("response.output_text.delta", response_id="r1", item_id="a", output_index=0, content_index=0, delta="Hi"),
        5.25,
    )
    (turn,) = clock.feed(response_done("r1"), 5.5)
    assert (turn.trigger, turn.first_audio_ms, turn.first_text_ms) == ("text", None, pytest.approx(250.0))


def test_tool_turn_spans_the_follow_up_response_and_sums_usage():
    clock = TurnClock()
    clock.feed(typed("delayed add 2 and 5"), 0.0)
    clock.feed(created("r1"), 0.1)
    call = [
        {
            "id": "fc",
            "type": "function_call",
            "call_id": "c1",
            "name": "delayed_add",
            "arguments": "{}",
            "status": "completed",
        }
    ]
    assert clock.feed(response_done("r1", output=call), 0.5) == ()  # waits for the follow-up
    clock.feed(created("r2"), 1.6)
    clock.feed(audio_delta("r2"), 1.9)
    (turn,) = clock.feed(response_done("r2"), 3.0)
    assert turn.first_audio_ms == pytest.approx(1900.0)
    assert turn.usage.responses == 2 and turn.usage.output_audio == 480


def test_user_keeps_talking_before_a_response_restarts_the_clock():
    clock = TurnClock()
    clock.feed(stopped(), 1.0)
    clock.feed(stopped(), 3.0)  # a pause, then more speech: the reply answers the later end
    clock.feed(created("r1"), 3.1)
    clock.feed(audio_delta("r1"), 3.3)
    (turn,) = clock.feed(response_done("r1"), 4.0)
    assert (turn.turn_id, turn.started_at, turn.first_audio_ms) == ("turn_1", 3.0, pytest.approx(300.0))


def test_barge_in_completes_the_old_turn_as_cancelled_and_times_the_new_one():
    clock = TurnClock()
    clock.feed(stopped(), 0.0)
    clock.feed(created("r1"), 0.1)
    clock.feed(audio_delta("r1"), 0.3)
    clock.feed(stopped(), 2.0)  # the user interrupted and finished speaking again
    (old,) = clock.feed(response_done("r1", status="cancelled"), 2.05)
    assert (old.turn_id, old.status, old.first_audio_ms) == ("turn_1", "cancelled", pytest.approx(300.0))
    clock.feed(created("r2"), 2.1)
    clock.feed(audio_delta("r2"), 2.5)
    (new,) = clock.feed(response_done("r2"), 3.0)
    assert (new.turn_id, new.started_at, new.first_audio_ms) == ("turn_2", 2.0, pytest.approx(500.0))
    assert clock.usage.responses == 2


def test_unprompted_response_is_its_own_turn_and_junk_is_ignored():
    clock = TurnClock()
    for junk in (
        "x",
        {"type": "response.done"},
        {"type": "response.done", "response": "no"},
        {},
        {"type": "response.output_audio.delta", "response_id": "zz"},
    ):
        assert clock.feed(read_server_event(junk), 0.0) == ()
    clock.feed(created("r1"), 1.0)
    clock.feed(audio_delta("r1"), 1.2)
    (turn,) = clock.feed(response_done("r1", usage=None), 2.0)
    assert (turn.trigger, turn.first_audio_ms, turn.usage) == (
        "response",
        pytest.approx(200.0),
        UsageTotals(responses=1),
    )


AUDIO_OUT = [
    {
        "id": "a",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_audio", "transcript": "Hi there"}],
    }
]


def test_webrtc_spoken_turn_completes_at_its_first_audio_even_after_response_done():
    """Over WebRTC output_audio_buffer.started comes after response.done: the turn waits for it."""
    clock = TurnClock()
    clock.feed(stopped(), 10.0)
    clock.feed(created("r1"), 10.05)
    clock.feed(transcript_delta("r1"), 10.2)
    assert clock.feed(response_done("r1", output=AUDIO_OUT), 10.3) == ()  # no audio yet: held
    assert clock.usage.responses == 1  # usage is counted at once all the same
    (turn,) = clock.feed(S("output_audio_buffer.started", response_id="r1"), 10.9)
    assert (turn.turn_id, turn.first_audio_ms, turn.first_text_ms) == (
        "turn_1",
        pytest.approx(900.0),
        pytest.approx(200.0),
    )
    assert turn.usage == read_usage(USAGE)
    assert clock.feed(S("output_audio_buffer.stopped", response_id="r1"), 12.0) == ()  # reported once


def test_a_held_turn_whose_audio_never_plays_completes_without_first_audio():
    # cleared before playback started (barge-in / Interrupt)
    clock = TurnClock()
    clock.feed(stopped(), 0.0)
    clock.feed(created("r1"), 0.1)
    assert clock.feed(response_done("r1", output=AUDIO_OUT), 0.4) == ()
    (turn,) = clock.feed(S("output_audio_buffer.cleared", response_id="r1"), 0.5)
    assert (turn.turn_id, turn.first_audio_ms) == ("turn_1", None)
    # the next turn starts while one is held: the held one completes first, in order
    clock.feed(stopped(), 1.0)
    clock.feed(created("r2"), 1.1)
    assert clock.feed(response_done("r2", output=AUDIO_OUT), 1.2) == ()
    (held,) = clock.feed(stopped(), 3.0)
    assert (held.turn_id, held.first_audio_ms) == ("turn_2", None)
    # the grace period runs out (tick, or any later event)
    clock.feed(created("r3"), 3.1)
    assert clock.feed(response_done("r3", output=AUDIO_OUT), 3.2) == ()
    assert clock.tick(4.0) == ()
    (late,) = clock.tick(3.2 + 2.0)
    assert (late.turn_id, late.first_audio_ms) == ("turn_3", None)
    assert clock.tick(10.0) == ()
    assert [t.turn_id for t in (turn, held, late)] == ["turn_1", "turn_2", "turn_3"]


def test_a_response_without_audio_completes_at_response_done():
    clock = TurnClock(audio_grace_s=5.0)
    clock.feed(typed("hi"), 0.0)
    clock.feed(created("r1"), 0.1)
    text_only = [
        {
            "id": "a",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "Hi"}],
        }
    ]
    (turn,) = clock.feed(response_done("r1", output=text_only), 0.5)
    assert turn.first_audio_ms is None and turn.trigger == "text"


def test_price_table_and_cost():
    assert PRICES_AS_OF and set(PRICES) >= {"gpt-realtime", "gpt-realtime-mini"}
    assert price_for("gpt-realtime-2025-08-28") is PRICES["gpt-realtime"]
    assert price_for("GPT-Realtime") is PRICES["gpt-realtime"]
    assert price_for("localengine") is None
    u = read_usage(USAGE)
    p = PRICES["gpt-realtime"]
    expected = (
        50 * p.text_in
        + 50 * p.text_cached_in
        + 300 * p.audio_in
        + 200 * p.audio_cached_in
        + 100 * p.image_in
        + 60 * p.text_out
        + 240 * p.audio_out
    ) / 1e6
    assert estimate_cost(u, "gpt-realtime") == pytest.approx(expected)
    # a concrete figure a person can check by hand against the table: 1M output audio tokens
    assert estimate_cost(UsageTotals(output_audio=1_000_000), "gpt-realtime") == pytest.approx(64.0)
    assert estimate_cost(UsageTotals(input_audio=1_000_000), "gpt-realtime-mini") == pytest.approx(10.0)
    assert estimate_cost(u, "unknown-model") == 0.0
    assert estimate_cost(UsageTotals(), "gpt-realtime") == 0.0
