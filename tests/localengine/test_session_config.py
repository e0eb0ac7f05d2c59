"""``session_config``: session settings folded from GA session objects, and response options."""

from __future__ import annotations

import pytest

from localengine.schema import ClientEventError
from localengine.session_config import (
    FunctionTool,
    SessionSettings,
    TurnDetectionConfig,
    apply_session,
    forced_tool_name,
    response_options,
)

ADD = {"type": "function", "name": "add", "description": "Add.", "parameters": {"type": "object"}}


def apply(s: dict, current: SessionSettings | None = None, *, audio_produced: bool = False) -> SessionSettings:
    return apply_session(
        current or SessionSettings(id="sess_1"), s, audio_produced=audio_produced, default_silence_ms=650
    )


def refused(fn, *args, **kwargs) -> ClientEventError:
    with pytest.raises(ClientEventError) as info:
        fn(*args, **kwargs)
    return info.value


def test_apply_session_returns_a_new_value_and_leaves_absent_fields_alone():
    before = SessionSettings(id="sess_1", instructions="keep me")
    after = apply({"type": "realtime", "audio": {"output": {"voice": "cedar", "speed": 1.25}}}, before)
    assert (after.voice, after.speed, after.instructions) == ("cedar", 1.25, "keep me")
    assert before.voice == "alloy"  # frozen: nothing changed in place


def test_a_new_turn_detection_gets_the_default_silence_and_semantic_vad_its_eagerness():
    td = apply({"audio": {"input": {"turn_detection": {"type": "server_vad"}}}}).turn_detection
    assert td == TurnDetectionConfig(silence_duration_ms=650)
    semantic = apply({"audio": {"input": {"turn_detection": {"type": "semantic_vad", "eagerness": "low"}}}})
    assert semantic.turn_detection is not None and semantic.turn_detection.silence_ms == 1500
    assert apply({"audio": {"input": {"turn_detection": None}}}).turn_detection is None
    err = refused(apply, {"audio": {"input": {"turn_detection": {"threshold": 2}}}})
    assert (err.code, err.param) == ("invalid_value", "session.audio.input.turn_detection.threshold")


def test_tools_are_typed_and_echoed_as_sent():
    settings = apply({"tools": [{k: v for k, v in ADD.items() if k != "type"}], "tool_choice": "required"})
    (tool,) = settings.tools
    assert (tool.name, tool.description, tool.parameters) == ("add", "Add.", {"type": "object"})
    assert settings.to_wire()["tools"] == [ADD] and settings.to_wire()["tool_choice"] == "required"


@pytest.mark.parametrize(
    ("session", "code", "param"),
    [
        ({"type": "transcription"}, "unsupported_session_type", "session.type"),
        ({"output_modalities": ["audio", "text"]}, "invalid_value", "session.output_modalities"),
        (
            {"audio": {"input": {"format": {"type": "audio/pcmu"}}}},
            "unsupported_audio_format",
            "session.audio.input.format",
        ),
        ({"audio": {"output": {"voice": {"id": "custom"}}}}, "unsupported_voice", "session.audio.output.voice"),
        ({"tools": [{"type": "mcp", "name": "x"}]}, "unsupported_tool", "session.tools[0].type"),
        ({"tools": [{"type": "function"}]}, "missing_required_parameter", "session.tools[0].name"),
        ({"tool_choice": {"type": "mcp", "name": "x"}}, "unsupported_tool", "session.tool_choice"),
        ({"tool_choice": {"type": "function", "name": "nope"}}, "invalid_value", "session.tool_choice"),
    ],
)
def test_refusals_name_the_parameter(session, code, param):
    err = refused(apply, session)
    assert (err.code, err.param) == (code, param)


def test_the_voice_is_fixed_once_audio_was_produced():
    err = refused(apply, {"audio": {"output": {"voice": "ash"}}}, audio_produced=True)
    assert err.code == "cannot_update_voice"
    assert apply({"audio": {"output": {"voice": "alloy"}}}, audio_produced=True).voice == "alloy"  # unchanged is fine
    settings = SessionSettings(id="sess_1")
    err = refused(response_options, settings, {"audio": {"output": {"voice": "ash"}}}, audio_produced=True)
    assert (err.code, err.param) == ("cannot_update_voice", "response.audio.output.voice")


def test_response_options_default_to_the_session_and_override_per_response():
    settings = SessionSettings(id="sess_1", tools=(FunctionTool(ADD),), max_output_tokens=50)
    same = response_options(settings, {}, audio_produced=False)
    assert (same.conversation, same.modalities, same.voice, same.tools) == ("auto", ("audio",), "alloy", settings.tools)
    assert same.audio and same.max_output_tokens == 50
    custom = response_options(
        settings,
        {
            "conversation": "none",
            "output_modalities": ["text"],
            "instructions": "Say: hi.",
            "tool_choice": {"type": "function", "name": "add"},
            "metadata": {"k": "v"},
            "max_output_tokens": 7,
        },
        audio_produced=False,
    )
    assert (custom.conversation, custom.modalities, custom.instructions) == ("none", ("text",), "Say: hi.")
    assert not custom.audio and custom.metadata == {"k": "v"} and custom.max_output_tokens == 7
    assert forced_tool_name(custom.tool_choice) == "add" and forced_tool_name("auto") == "auto"
    err = refused(response_options, settings, {"conversation": "other"}, audio_produced=False)
    assert (err.code, err.param) == ("invalid_value", "response.conversation")
