"""Unit tests for ``localengine.schema``: client event parsing/validation, beta mapping, server checks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from localengine.schema import (
    CLIENT_EVENT_TYPES,
    ClientEventError,
    ServerEventError,
    parse_client_event,
    validate_server_event,
)

VALID: list[dict[str, Any]] = [
    {"type": "session.update", "session": {"type": "realtime", "instructions": "hi"}},
    {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
    },
    {"type": "conversation.item.delete", "item_id": "item_1"},
    {"type": "conversation.item.retrieve", "item_id": "item_1"},
    {"type": "conversation.item.truncate", "item_id": "item_1", "content_index": 0, "audio_end_ms": 10},
    {"type": "input_audio_buffer.append", "audio": "AAAA"},
    {"type": "input_audio_buffer.commit"},
    {"type": "input_audio_buffer.clear"},
    {"type": "output_audio_buffer.clear"},
    {"type": "response.create", "response": {"output_modalities": ["text"]}},
    {"type": "response.cancel", "response_id": "resp_1"},
]


def fail(event, **kw) -> ClientEventError:
    raw = event if isinstance(event, (str, bytes)) else json.dumps(event)
    with pytest.raises(ClientEventError) as info:
        parse_client_event(raw, **kw)
    assert info.value.message and str(info.value) == info.value.message
    return info.value


def test_every_ga_client_event_type_parses():
    assert {e["type"] for e in VALID} == set(CLIENT_EVENT_TYPES)
    for event in VALID:
        parsed = parse_client_event(json.dumps({**event, "event_id": "e1"}))
        assert parsed["type"] == event["type"] and parsed["event_id"] == "e1"
    assert parse_client_event(json.dumps(VALID[0]).encode())["session"]["instructions"] == "hi"


def test_types_are_coerced_to_the_models_shape():
    parsed = parse_client_event(
        '{"type": "conversation.item.truncate", "item_id": "i", "content_index": 0, "audio_end_ms": 12.0}'
    )
    assert parsed["audio_end_ms"] == 12 and isinstance(parsed["audio_end_ms"], int)


@pytest.mark.parametrize(
    "raw, code, param",
    [
        ("{oops", "invalid_json", None),
        (b"\xff\xfe\x00", "invalid_json", None),
        ("42", "invalid_type", None),
        ('{"event_id": 5, "type": "input_audio_buffer.clear"}', "invalid_type", "event_id"),
        ('{"type": 7}', "invalid_type", "type"),
        ("{}", "missing_required_parameter", "type"),
        ('{"type": "session.updates"}', "invalid_value", "type"),
        ('{"type": "conversation.item.delete", "item_id": 5}', "invalid_type", "item_id"),
        (
            '{"type": "conversation.item.truncate", "item_id": "x", "content_index": 0}',
            "missing_required_parameter",
            "audio_end_ms",
        ),
        (
            '{"type": "session.update", "session": {"type": "realtime", "output_modalities": "text"}}',
            "invalid_type",
            "session.output_modalities",
        ),
        (
            '{"type": "session.update", "session": {"type": "realtime", '
            '"audio": {"input": {"turn_detection": {"type": "magic"}}}}}',
            "invalid_value",
            "session.audio.input.turn_detection.type",
        ),
        (
            '{"type": "session.update", "session": {"type": "realtime", "audio": {"output": {"voice": 5}}}}',
            "invalid_type",
            "session.audio.output.voice",
        ),
        (
            '{"type": "conversation.item.create", "item": {"type": "message", "role": "user", '
            '"content": [{"type": "input_text", "text": 5}]}}',
            "invalid_type",
            "item.content[0].text",
        ),
        (
            '{"type": "conversation.item.create", "item": {"type": "message", "role": "robot", "content": []}}',
            "invalid_value",
            "item.role",
        ),
        ('{"type": "conversation.item.create", "item": {"type": "wat"}}', "invalid_value", "item.type"),
        (
            '{"type": "conversation.item.create", "item": {"type": "function_call_output", "output": "1"}}',
            "missing_required_parameter",
            "item.call_id",
        ),
        (
            '{"type": "response.create", "response": {"tool_choice": "sometimes"}}',
            "invalid_value",
            "response.tool_choice",
        ),
        (
            '{"type": "response.create", "response": {"input": [{"type": "item_reference", "id": 3}]}}',
            "invalid_type",
            "response.input[0].id",
        ),
    ],
)
def test_invalid_events_name_the_problem(raw, code, param):
    err = fail(raw)
    assert (err.code, err.param) == (code, param), err.message
    if param:
        assert f"'{param}'" in err.message or param == "type"


def test_unknown_type_lists_supported_values_and_keeps_event_id():
    err = fail({"type": "response.creat", "event_id": "e_typo"})
    assert err.event_id == "e_typo" and "'response.create'" in err.message and "'response.creat'" in err.message


def test_event_id_is_found_even_in_broken_or_oversize_messages():
    assert fail('{"event_id": "e_broken", "type": "x",').event_id == "e_broken"
    big = json.dumps({"event_id": "e_big", "type": "input_audio_buffer.append", "audio": "A" * 3000})
    err = fail(big, max_bytes=1000)
    assert err.code == "event_too_large" and err.event_id == "e_big"
    assert str(len(big)) in err.message and "1000" in err.message
    assert parse_client_event(big, max_bytes=len(big))["event_id"] == "e_big"


BETA_SESSION = {
    "modalities": ["text", "audio"],
    "voice": "ash",
    "speed": 1.1,
    "temperature": 0.6,
    "turn_detection": {"type": "server_vad", "threshold": 0.4},
    "input_audio_transcription": {"model": "whisper-1"},
    "input_audio_noise_reduction": {"type": "near_field"},
    "input_audio_format": "pcm16",
    "output_audio_format": "g711_ulaw",
    "max_response_output_tokens": "inf",
}


@pytest.mark.parametrize("key", sorted(BETA_SESSION))
def test_beta_session_shapes_are_refused_like_the_ga_service(key):
    """Since 2026-05-12 the GA service refuses the beta session shapes (was: mapped to GA)."""
    for session in ({key: BETA_SESSION[key]}, {"type": "realtime", key: BETA_SESSION[key]}):
        err = fail({"type": "session.update", "event_id": "e_beta", "session": session})
        assert (err.code, err.param, err.event_id) == ("beta_api_shape_disabled", f"session.{key}", "e_beta")


@pytest.mark.parametrize(
    "response",
    [{"modalities": ["text"]}, {"voice": "echo"}, {"output_audio_format": "pcm16"}, {"temperature": 1}],
)
def test_beta_response_shapes_are_refused(response):
    err = fail({"type": "response.create", "response": response})
    assert (err.code, err.param) == ("beta_api_shape_disabled", f"response.{next(iter(response))}")


def test_beta_item_names_map_to_ga():
    item = parse_client_event(
        json.dumps(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "text", "text": "a"}, {"type": "audio", "transcript": "b"}],
                },
            }
        )
    )
    assert [p["type"] for p in item["item"]["content"]] == ["output_text", "output_audio"]
    resp = parse_client_event(
        json.dumps(
            {
                "type": "response.create",
                "response": {
                    "output_modalities": ["text"],
                    "audio": {"output": {"voice": "echo", "format": {"type": "audio/pcm", "rate": 24000}}},
                    "input": [
                        {"type": "item_reference", "id": "item_9"},
                        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x"}]},
                    ],
                },
            }
        )
    )
    r = resp["response"]
    assert r["output_modalities"] == ["text"]
    assert r["audio"]["output"] == {"voice": "echo", "format": {"type": "audio/pcm", "rate": 24000}}
    assert r["input"][0] == {"type": "item_reference", "id": "item_9"} and r["input"][1]["role"] == "user"


def test_validate_server_event_accepts_valid_and_rejects_invalid():
    validate_server_event(
        {"type": "error", "event_id": "e", "error": {"type": "invalid_request_error", "message": "m"}}
    )
    validate_server_event({"type": "output_audio_buffer.started", "event_id": "e", "response_id": "r"})
    with pytest.raises(ServerEventError, match="event_id"):
        validate_server_event({"type": "input_audio_buffer.cleared"})
    with pytest.raises(ServerEventError):
        validate_server_event({"type": "response.output_text.delta", "event_id": "e", "delta": "x"})
    with pytest.raises(ServerEventError):
        validate_server_event({"type": "no.such.event", "event_id": "e"})
    with pytest.raises(ServerEventError):
        validate_server_event(["not", "a", "dict"])  # type: ignore[arg-type]
