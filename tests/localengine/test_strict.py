"""A strict engine, as the GA service: unknown fields, wrong types, out-of-range values and beta session
shapes are refused with an ``error`` naming the parameter, and the session is left as it was.

Through the real ``openai`` SDK over WebSocket (what a client sees) and over HTTP (``calls.create``,
``client_secrets``). Also: the fields the engine honours offline (``audio.output.speed``,
``max_output_tokens``) and the ones it only echoes.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
import openai
import pytest
from openai import AsyncOpenAI

from localengine.session_config import MAX_OUTPUT_TOKENS
from tests.localengine.helpers import API_KEY, EventStream, RtcClient, first, reply_text, user_text


@pytest.fixture
async def rt(engine):
    async with (
        AsyncOpenAI(base_url=engine.base_url, api_key=API_KEY) as client,
        client.realtime.connect(model="gpt-realtime") as conn,
    ):
        stream = EventStream(conn)
        assert (await stream.next())["type"] == "session.created"
        await conn.session.update(session={"type": "realtime", "output_modalities": ["text"], "instructions": "Keep."})
        await stream.until("session.updated")
        yield conn, stream


REFUSED_SESSIONS: list[tuple[dict[str, Any], str, str]] = [
    # (session fields besides type, code, param)
    ({"instructionz": "x"}, "unknown_parameter", "session.instructionz"),
    ({"audio": {"output": {"voise": "ash"}}}, "unknown_parameter", "session.audio.output.voise"),
    (
        {"audio": {"input": {"turn_detection": {"type": "server_vad", "treshold": 0.5}}}},
        "unknown_parameter",
        "session.audio.input.turn_detection.treshold",
    ),
    ({"tools": [{"type": "function", "name": "f", "strict": True}]}, "unknown_parameter", "session.tools[0].strict"),
    ({"tracing": {"workflow_name": "w", "colour": "red"}}, "unknown_parameter", "session.tracing.colour"),
    ({"audio": {"output": 5}}, "invalid_type", "session.audio.output"),
    ({"instructions": 7}, "invalid_type", "session.instructions"),
    ({"max_output_tokens": "100"}, "invalid_type", "session.max_output_tokens"),
    ({"parallel_tool_calls": "yes"}, "invalid_type", "session.parallel_tool_calls"),
    ({"audio": {"output": {"speed": 1.6}}}, "invalid_value", "session.audio.output.speed"),
    ({"audio": {"output": {"speed": 0.2}}}, "invalid_value", "session.audio.output.speed"),
    ({"max_output_tokens": 0}, "invalid_value", "session.max_output_tokens"),
    ({"max_output_tokens": 4097}, "invalid_value", "session.max_output_tokens"),
    (
        {"audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 1.5}}}},
        "invalid_value",
        "session.audio.input.turn_detection.threshold",
    ),
    ({"reasoning": {"effort": "enormous"}}, "invalid_value", "session.reasoning.effort"),
    (
        {"truncation": {"type": "retention_ratio", "retention_ratio": 2}},
        "invalid_value",
        "session.truncation.retention_ratio",
    ),
    (
        {"audio": {"input": {"noise_reduction": {"type": "underwater"}}}},
        "invalid_value",
        "session.audio.input.noise_reduction.type",
    ),
]


@pytest.mark.parametrize(("fields", "code", "param"), REFUSED_SESSIONS, ids=[p for _, _, p in REFUSED_SESSIONS])
async def test_session_update_refusal_names_the_field_and_changes_nothing(rt, fields, code, param):
    conn, stream = rt
    await conn.session.update(session={"type": "realtime", **fields}, event_id="evt_strict")
    error = (await stream.until("error"))[-1]["error"]
    assert (error["type"], error["code"], error["param"], error["event_id"]) == (
        "invalid_request_error",
        code,
        param,
        "evt_strict",
    ), error
    assert param in error["message"] or code == "invalid_value"
    # Nothing was applied: the next update echoes the session as it was.
    await conn.session.update(session={"type": "realtime"})
    session = first(await stream.until("session.updated"), "session.updated")["session"]
    assert session["instructions"] == "Keep." and session["output_modalities"] == ["text"]
    assert session["audio"]["output"]["speed"] == 1.0 and session["max_output_tokens"] == "inf"


async def test_unknown_field_beside_valid_ones_applies_none_of_them(rt):
    conn, stream = rt
    await conn.session.update(session={"type": "realtime", "instructions": "Changed.", "instructionz": "x"})
    assert (await stream.until("error"))[-1]["error"]["param"] == "session.instructionz"
    await conn.conversation.item.create(item=user_text("ping"))
    await conn.response.create()
    assert reply_text(await stream.until("response.done")) == "You said: ping"
    await conn.session.update(session={"type": "realtime"})
    assert first(await stream.until("session.updated"), "session.updated")["session"]["instructions"] == "Keep."


@pytest.mark.parametrize(
    ("session", "param"),
    [
        ({"voice": "ash"}, "session.voice"),
        ({"type": "realtime", "turn_detection": None}, "session.turn_detection"),
        ({"type": "realtime", "input_audio_format": "pcm16"}, "session.input_audio_format"),
        ({"modalities": ["text"]}, "session.modalities"),
    ],
)
async def test_beta_session_shapes_are_refused(rt, session, param):
    conn, stream = rt
    await conn.send({"type": "session.update", "session": session, "event_id": "evt_beta"})
    error = (await stream.until("error"))[-1]["error"]
    assert (error["code"], error["param"], error["event_id"]) == ("beta_api_shape_disabled", param, "evt_beta")


@pytest.mark.parametrize(
    ("response", "code", "param"),
    [
        ({"instructionz": "x"}, "unknown_parameter", "response.instructionz"),
        ({"audio": "x"}, "invalid_type", "response.audio"),
        ({"audio": {"output": {"voice": "ash", "speed": 1.2}}}, "unknown_parameter", "response.audio.output.speed"),
        ({"max_output_tokens": 5000}, "invalid_value", "response.max_output_tokens"),
        ({"modalities": ["text"]}, "beta_api_shape_disabled", "response.modalities"),
        (
            {"input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x", "y": 1}]}]},
            "unknown_parameter",
            "response.input[0].content[0].y",
        ),
    ],
)
async def test_response_create_refusals_name_the_field(rt, response, code, param):
    conn, stream = rt
    await conn.send({"type": "response.create", "response": response, "event_id": "evt_resp"})
    error = (await stream.until("error"))[-1]["error"]
    assert (error["code"], error["param"], error["event_id"]) == (code, param, "evt_resp"), error
    await conn.conversation.item.create(item=user_text("still here"))
    await conn.response.create()
    assert reply_text(await stream.until("response.done")) == "You said: still here"


async def test_every_ga_field_is_accepted_and_the_offline_only_ones_are_echoed(rt):
    conn, stream = rt
    session: dict[str, Any] = {
        "type": "realtime",
        "model": "gpt-realtime-2",
        "truncation": {"type": "retention_ratio", "retention_ratio": 0.8, "token_limits": {"post_instructions": 8000}},
        "reasoning": {"effort": "low"},
        "prompt": {"id": "pmpt_123", "version": "2", "variables": {"city": "Paris"}},
        "tracing": {"workflow_name": "studio", "group_id": "g1", "metadata": {"k": "v"}},
        "include": ["item.input_audio_transcription.logprobs"],
        "parallel_tool_calls": False,
        "tool_choice": "none",
        "max_output_tokens": 200,
        "audio": {
            "input": {
                "noise_reduction": {"type": "far_field"},
                "transcription": {"model": "gpt-4o-transcribe", "language": "en", "prompt": "names"},
                "turn_detection": {"type": "server_vad", "idle_timeout_ms": 6000, "threshold": 0.6},
            },
            "output": {"voice": "marin", "speed": 1.25},
        },
    }
    await conn.session.update(session=session)
    echoed = first(await stream.until("session.updated"), "session.updated")["session"]
    for key in ("truncation", "reasoning", "prompt", "tracing", "include", "parallel_tool_calls", "tool_choice"):
        assert echoed[key] == session[key], key
    assert echoed["max_output_tokens"] == 200 and echoed["model"] == "gpt-realtime-2"
    assert echoed["audio"]["input"]["noise_reduction"] == {"type": "far_field"}
    assert echoed["audio"]["input"]["turn_detection"]["idle_timeout_ms"] == 6000
    assert echoed["audio"]["output"]["speed"] == 1.25 and echoed["audio"]["output"]["voice"] == "marin"


async def test_max_output_tokens_cuts_the_reply_and_marks_it_incomplete(rt):
    conn, stream = rt
    await conn.conversation.item.create(item=user_text("count to 100"))
    await conn.response.create(response={"max_output_tokens": 5})
    events = await stream.until("response.done")
    done = first(events, "response.done")["response"]
    assert done["status"] == "incomplete"
    assert done["status_details"] == {"type": "incomplete", "reason": "max_output_tokens"}
    assert done["usage"]["output_tokens"] <= 5
    assert len(reply_text(events)) <= 20


async def test_a_one_megabyte_message_gets_a_bounded_reply(rt):
    """Before: 196,067 events (112 MB) for one echo. Now at most the default cap of output tokens."""
    conn, stream = rt
    await conn.conversation.item.create(item=user_text("x " * 500_000))
    await conn.response.create()
    events = await stream.until("response.done", timeout=60)
    done = first(events, "response.done")["response"]
    assert done["status"] == "incomplete" and done["status_details"]["reason"] == "max_output_tokens"
    assert done["usage"]["output_tokens"] <= MAX_OUTPUT_TOKENS
    reply = [e for e in events if e["type"].startswith("response.")]
    assert len(reply) <= MAX_OUTPUT_TOKENS + 10, len(reply)
    assert sum(len(json.dumps(e)) for e in reply) < 1_000_000


async def test_speed_is_the_espeak_rate(engine):
    """audio.output.speed changes how long the same reply takes to say."""
    lengths = {}
    async with AsyncOpenAI(base_url=engine.base_url, api_key=API_KEY) as client:
        for speed in (1.5, 0.5):
            async with client.realtime.connect(model="gpt-realtime") as conn:
                stream = EventStream(conn)
                await stream.next()
                await conn.session.update(
                    session={
                        "type": "realtime",
                        "audio": {"input": {"turn_detection": None}, "output": {"speed": speed}},
                    }
                )
                await stream.until("session.updated")
                await conn.conversation.item.create(item=user_text("the quick brown fox jumps over the lazy dog"))
                await conn.response.create()
                events = await stream.until("response.done", timeout=40)
                lengths[speed] = sum(len(e["delta"]) for e in events if e["type"] == "response.output_audio.delta")
    assert lengths[0.5] > 2 * lengths[1.5] > 0, lengths


# -- HTTP: calls.create and client_secrets --------------------------------------------------------


@pytest.mark.parametrize(
    ("session", "code", "param"),
    [
        ({"type": "realtime", "instructionz": "x"}, "unknown_parameter", "session.instructionz"),
        ({"type": "realtime", "audio": {"output": {"voise": "x"}}}, "unknown_parameter", "session.audio.output.voise"),
        ({"type": "realtime", "audio": {"output": {"speed": 3}}}, "invalid_value", "session.audio.output.speed"),
        ({"voice": "ash"}, "beta_api_shape_disabled", "session.voice"),
    ],
)
async def test_calls_create_refuses_a_bad_session_with_400(engine, session, code, param):
    peer = RtcClient()
    try:
        async with AsyncOpenAI(base_url=engine.base_url, api_key=API_KEY) as client:
            with pytest.raises(openai.BadRequestError) as err:
                await client.realtime.calls.create(sdp=await peer.offer(), session=session)
    finally:
        await peer.close()
    assert (err.value.status_code, err.value.code, err.value.param) == (400, code, param)
    assert err.value.type == "invalid_request_error"
    assert engine.stats().calls == 0


@pytest.mark.parametrize(
    ("body", "code", "param"),
    [
        ({"session": {"type": "realtime", "instructionz": "x"}}, "unknown_parameter", "session.instructionz"),
        ({"session": {"type": "realtime", "max_output_tokens": 0}}, "invalid_value", "session.max_output_tokens"),
        ({"session": {"type": "realtime"}, "expires_afterr": {}}, "unknown_parameter", "expires_afterr"),
        ({"expires_after": {"seconds": "60"}}, "invalid_type", "expires_after.seconds"),
        ({"session": {"instructions": "beta"}}, "missing_required_parameter", "session.type"),
    ],
)
async def test_client_secrets_refuse_a_bad_request_with_400(engine, body, code, param):
    r = httpx2.post(
        engine.base_url + "/realtime/client_secrets", json=body, headers={"Authorization": f"Bearer {API_KEY}"}
    )
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("invalid_request_error", code, param), error
    assert error["message"]


async def test_client_secrets_accept_a_full_ga_session(engine):
    async with AsyncOpenAI(base_url=engine.base_url, api_key=API_KEY) as client:
        secret = await client.realtime.client_secrets.create(
            session={
                "type": "realtime",
                "reasoning": {"effort": "minimal"},
                "audio": {"output": {"voice": "cedar", "speed": 0.75}},
                "max_output_tokens": "inf",
            },
            expires_after={"anchor": "created_at", "seconds": 60},
        )
    assert secret.value.startswith("ek_")


async def test_idle_timeout_triggers_after_the_reply_over_websocket(rt):
    conn, stream = rt
    await conn.session.update(
        session={
            "type": "realtime",
            "audio": {"input": {"turn_detection": {"type": "server_vad", "idle_timeout_ms": 600}}},
        }
    )
    await stream.until("session.updated")
    await conn.conversation.item.create(item=user_text("hi"))
    await conn.response.create()
    await stream.until("response.done")
    events = await stream.until("input_audio_buffer.timeout_triggered", timeout=10)
    fired = events[-1]
    assert fired["audio_end_ms"] >= fired["audio_start_ms"] >= 0
    after = await stream.until("response.done", timeout=20)
    assert first(after, "input_audio_buffer.committed")["item_id"] == fired["item_id"]
