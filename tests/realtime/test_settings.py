"""Settings: env/secrets parsing, key hygiene, the one session payload (validated by the SDK)."""

from __future__ import annotations

import json

import pydantic
import pytest
from openai.types.realtime import RealtimeClientEvent, RealtimeFunctionTool, RealtimeSessionCreateRequest
from openai.types.realtime.realtime_audio_formats import AudioPCM
from openai.types.realtime.realtime_audio_input_turn_detection import SemanticVad, ServerVad

from realtime.settings import (
    LIVE_FIELDS,
    RESTART_FIELDS,
    VOICES,
    CameraSettings,
    Settings,
    SettingsError,
    TurnDetection,
    clean_key,
    live_changes,
    restart_required,
)
from realtime.tools import DEFAULT_TOOL_NAMES

KEY = "sk-proj-TESTKEY0123456789abcdef"


def assert_no_extra(model: pydantic.BaseModel, path: str = "session") -> None:
    """The SDK models allow extra keys; a key they do not declare is a typo we want to catch."""
    assert not model.model_extra, f"{path} has undeclared keys {sorted(model.model_extra)}"
    for name in type(model).model_fields:
        value = getattr(model, name)
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, pydantic.BaseModel):
                assert_no_extra(v, f"{path}.{name}")


def validated(payload: dict) -> RealtimeSessionCreateRequest:
    model = RealtimeSessionCreateRequest.model_validate(payload)
    assert_no_extra(model)
    # and as the body of the client event that carries it mid-call
    event = pydantic.TypeAdapter(RealtimeClientEvent).validate_python({"type": "session.update", "session": payload})
    assert event.type == "session.update"
    return model


def test_defaults_without_env_use_local_backend():
    s = Settings.from_env({})
    assert s.backend == "local"
    assert s.model == "gpt-realtime"
    assert s.voice == "marin"
    assert s.turn_detection == TurnDetection("server_vad", 0.5, 500, 300, "auto")
    assert s.transcription_model == "gpt-4o-mini-transcribe"
    assert s.output_modalities == "audio"
    assert s.camera == CameraSettings(True, 2.0, 1024, "auto", 3)
    assert s.tools == DEFAULT_TOOL_NAMES == ("get_datetime", "delayed_add", "echo_upper")
    assert s.rtc_configuration() == {"iceServers": []}


def test_every_env_name_is_read():
    env = {
        "OPENAI_API_KEY": KEY,
        "OPENAI_BASE_URL": "https://example.test/v1",
        "REALTIME_MODEL": "gpt-realtime-mini",
        "REALTIME_VOICE": "Cedar",
        "REALTIME_INSTRUCTIONS": "Speak like a pirate.",
        "REALTIME_TURN_DETECTION": "semantic_vad",
        "REALTIME_VAD_THRESHOLD": "0.7",
        "REALTIME_VAD_SILENCE_MS": "800",
        "REALTIME_VAD_PREFIX_PADDING_MS": "200",
        "REALTIME_VAD_EAGERNESS": "high",
        "REALTIME_TRANSCRIPTION_MODEL": "",
        "REALTIME_OUTPUT_MODALITIES": "text",
        "REALTIME_CAMERA": "off",
        "REALTIME_CAMERA_INTERVAL_S": "5",
        "REALTIME_CAMERA_MAX_SIDE": "512",
        "REALTIME_CAMERA_DETAIL": "low",
        "REALTIME_MAX_IMAGES": "2",
        "REALTIME_TOOLS": " echo_upper , delayed_add ",
        "REALTIME_ICE_SERVERS": json.dumps(
            ["stun:stun.example.test:3478", {"urls": ["turn:turn.example.test"], "username": "u", "credential": "pw"}]
        ),
        "UNRELATED": "ignored",
    }
    s = Settings.from_env(env)
    assert s.backend == "openai"
    assert s.base_url == "https://example.test/v1"
    assert s.model == "gpt-realtime-mini"
    assert s.voice == "cedar"
    assert s.instructions == "Speak like a pirate."
    assert s.turn_detection == TurnDetection("semantic_vad", 0.7, 800, 200, "high")
    assert s.transcription_model == ""
    assert s.output_modalities == "text"
    assert s.camera == CameraSettings(False, 5.0, 512, "low", 2)
    assert s.tools == ("echo_upper", "delayed_add")
    assert s.rtc_configuration() == {
        "iceServers": [
            {"urls": ["stun:stun.example.test:3478"]},
            {"urls": ["turn:turn.example.test"], "username": "u", "credential": "pw"},
        ]
    }
    assert "pw" not in repr(s)
    assert s.connection().base_url == "https://example.test/v1"
    assert s.connection().api_key == KEY


def test_secrets_win_over_env_and_may_be_typed_toml_values():
    env = {"OPENAI_API_KEY": "sk-from-env-000000", "REALTIME_VOICE": "ash", "REALTIME_MAX_IMAGES": "5"}
    secrets = {
        "OPENAI_API_KEY": KEY,
        "REALTIME_VOICE": "coral",
        "REALTIME_CAMERA": False,
        "REALTIME_MAX_IMAGES": 4,
        "REALTIME_TOOLS": ["get_datetime"],
        "other_section": {"x": 1},
    }
    s = Settings.from_env(env, secrets)
    assert s.api_key == KEY
    assert s.voice == "coral"
    assert s.camera.enabled is False
    assert s.camera.max_images == 4
    assert s.tools == ("get_datetime",)


def test_sidebar_replace_wins_and_is_validated():
    s = Settings.from_env({"REALTIME_VOICE": "ash"})
    s2 = s.replace(voice="verse", turn_detection={"mode": "none"}, camera={"interval_s": 3}, tools=["echo_upper"])
    assert (s2.voice, s2.turn_detection.mode, s2.camera.interval_s, s2.tools) == ("verse", "none", 3, ("echo_upper",))
    assert s.voice == "ash"  # frozen: the original is untouched
    with pytest.raises(SettingsError, match="Voice must be one of"):
        s.replace(voice="nobody")
    with pytest.raises(SettingsError, match="VAD threshold"):
        s.replace(turn_detection={"threshold": 1.5})


@pytest.mark.parametrize(
    "raw",
    [KEY, f"  {KEY}\n", f'"{KEY}"', f"'{KEY}'", f' " {KEY} " ', f'"{KEY}', f"{KEY}'"],
)
def test_key_is_stripped_of_quotes_and_whitespace(raw):
    assert clean_key(raw) == KEY
    assert Settings.from_env({"OPENAI_API_KEY": raw}).api_key == KEY


def test_blank_or_quoted_empty_key_means_local():
    for raw in ("", "   ", '""', "''"):
        assert Settings.from_env({"OPENAI_API_KEY": raw}).backend == "local"


def test_key_never_in_repr_str_or_payload():
    s = Settings.from_env({"OPENAI_API_KEY": KEY})
    conn = s.connection()
    for text in (repr(s), str(s), repr(conn), str(conn), json.dumps(s.session_payload()), repr(s.session_payload())):
        assert KEY not in text and "TESTKEY" not in text


def test_bad_values_raise_one_clear_error_naming_each_problem():
    env = {
        "REALTIME_VOICE": "robot",
        "REALTIME_VAD_THRESHOLD": "loud",
        "REALTIME_VAD_SILENCE_MS": "0.5",
        "REALTIME_TURN_DETECTION": "maybe",
        "REALTIME_CAMERA": "sometimes",
        "REALTIME_CAMERA_DETAIL": "ultra",
        "REALTIME_MAX_IMAGES": "0",
        "REALTIME_TOOLS": "echo_upper,rm_rf",
        "REALTIME_OUTPUT_MODALITIES": "audio,text",
        "REALTIME_ICE_SERVERS": "[not json",
        "OPENAI_BASE_URL": "api.openai.com",
    }
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    problems = info.value.problems
    expected = [
        "REALTIME_VAD_THRESHOLD must be a number, not 'loud'",
        "REALTIME_VAD_SILENCE_MS must be a whole number",
        "Turn detection must be one of server_vad, semantic_vad, none, not 'maybe'",
        "REALTIME_CAMERA must be on or off, not 'sometimes'",
        "Camera detail must be one of auto, low, high, not 'ultra'",
        "Max images must be 1..50, not 0",
        "Unknown tool(s) rm_rf",
        "Voice must be one of alloy",
        "Output modality must be 'audio'",
        "REALTIME_ICE_SERVERS must be a JSON list",
        "OPENAI_BASE_URL must start with http",
    ]
    for fragment in expected:
        assert any(fragment in p for p in problems), (fragment, problems)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "raw, fragment",
    [
        ('{"urls": "http://x"}', "must start with stun:"),
        ("[42]", "found 42"),
        ('"stun:x"', "must be a JSON list"),
    ],
)
def test_ice_server_shapes_rejected(raw, fragment):
    with pytest.raises(SettingsError, match=fragment):
        Settings.from_env({"REALTIME_ICE_SERVERS": raw})


def test_session_payload_default_is_valid_ga_session():
    s = Settings.from_env({"REALTIME_INSTRUCTIONS": "Be brief."})
    payload = s.session_payload()
    model = validated(payload)
    assert model.type == "realtime"
    assert model.model == "gpt-realtime"
    assert model.instructions == "Be brief."
    assert model.output_modalities == ["audio"]
    assert model.audio is not None and model.audio.input is not None and model.audio.output is not None
    td = model.audio.input.turn_detection
    assert isinstance(td, ServerVad)
    assert (td.threshold, td.silence_duration_ms, td.prefix_padding_ms) == (0.5, 500, 300)
    assert model.audio.input.transcription is not None
    assert model.audio.input.transcription.model == "gpt-4o-mini-transcribe"
    assert isinstance(model.audio.input.format, AudioPCM) and model.audio.input.format.rate == 24000
    assert model.audio.output.voice == "marin"
    assert model.tools is not None
    functions = [t for t in model.tools if isinstance(t, RealtimeFunctionTool)]
    assert functions == model.tools  # function tools only
    assert [t.name for t in functions] == ["get_datetime", "delayed_add", "echo_upper"]
    assert all(t.type == "function" and t.description for t in functions)
    assert model.tool_choice == "auto"


def test_session_payload_variants_are_valid():
    base = Settings()
    semantic = base.replace(turn_detection={"mode": "semantic_vad", "eagerness": "low"})
    audio = validated(semantic.session_payload()).audio
    assert audio is not None and audio.input is not None
    td = audio.input.turn_detection
    assert isinstance(td, SemanticVad) and td.eagerness == "low"

    push_to_talk = base.replace(
        turn_detection={"mode": "none"}, transcription_model="", output_modalities="text", tools=()
    )
    payload = push_to_talk.session_payload()
    model = validated(payload)
    assert payload["audio"]["input"]["turn_detection"] is None  # explicit null turns VAD off mid-call
    assert payload["audio"]["input"]["transcription"] is None
    assert model.output_modalities == ["text"]
    assert payload["tools"] == []  # explicit empty list removes tools mid-call

    no_voice = base.session_payload(omit=("voice", "model"))
    validated(no_voice)
    assert "voice" not in no_voice["audio"]["output"] and "model" not in no_voice


@pytest.mark.parametrize("voice", VOICES)
def test_every_voice_renders(voice):
    audio = validated(Settings(voice=voice).session_payload()).audio
    assert audio is not None and audio.output is not None
    assert audio.output.voice == voice


def test_tool_schemas_are_derived_not_written():
    params = {t["name"]: t["parameters"] for t in Settings().session_payload()["tools"]}
    assert params["delayed_add"]["required"] == ["a", "b"]
    assert params["delayed_add"]["properties"]["a"]["type"] == "number"
    assert params["echo_upper"]["properties"]["text"]["type"] == "string"
    assert params["get_datetime"]["properties"] == {}


def test_restart_required_names_only_restart_fields():
    a = Settings()
    assert restart_required(a, a) == ()
    live = a.replace(
        voice="ash",
        instructions="x",
        turn_detection={"mode": "none"},
        tools=(),
        transcription_model="",
        output_modalities="text",
        camera={"enabled": False},
    )
    assert restart_required(a, live) == ()
    assert set(live_changes(a, live)) == set(LIVE_FIELDS)
    assert restart_required(a, a.replace(model="gpt-realtime-mini")) == ("model",)
    assert restart_required(a, a.replace(api_key=KEY)) == ("backend", "api_key")
    assert restart_required(a, a.replace(base_url="http://127.0.0.1:1/v1")) == ("base_url",)
    assert set(RESTART_FIELDS).isdisjoint(LIVE_FIELDS)
    assert KEY not in repr(restart_required(a, a.replace(api_key=KEY)))
