"""Settings: env/secrets parsing, key hygiene, the one session payload (validated by the SDK)."""

from __future__ import annotations

import json

import pydantic
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from openai.types.realtime import RealtimeClientEvent, RealtimeFunctionTool, RealtimeSessionCreateRequest
from openai.types.realtime.realtime_audio_formats import AudioPCM
from openai.types.realtime.realtime_audio_input_turn_detection import SemanticVad, ServerVad

from realtime.settings import (
    AUDIO_CODECS,
    DEFAULT_MODEL,
    EAGERNESS,
    LIVE_FIELDS,
    MODELS,
    NOISE_REDUCTIONS,
    REASONING_EFFORTS,
    RESTART_FIELDS,
    SDK_MODELS,
    TOOL_CHOICES,
    TRANSCRIPTION_MODELS,
    TRUNCATIONS,
    VOICES,
    CameraSettings,
    Settings,
    SettingsError,
    TurnDetection,
    clean_key,
    live_changes,
    restart_required,
    takes_reasoning,
)
from realtime.tools import DEFAULT_TOOL_NAMES
from tests.realtime.settings_strategy import settings_strategy

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
    assert s.model == DEFAULT_MODEL == "gpt-realtime-2.1"
    assert s.reasoning_effort is None and s.voice_speed == 1.0 and s.noise_reduction is None
    assert s.voice == "marin"
    assert s.turn_detection == TurnDetection("server_vad", 0.5, 500, 300, "auto", None)
    assert (s.transcription_language, s.transcription_prompt) == ("", "")
    assert (s.max_output_tokens, s.tool_choice, s.parallel_tool_calls) == ("inf", "auto", True)
    assert (s.truncation, s.truncation_retention_ratio) == ("auto", 0.8)
    assert (s.prompt_id, s.prompt_version, s.prompt_variables) == ("", "", ())
    assert s.audio_codec == "opus"
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
        "REALTIME_REASONING_EFFORT": "High",
        "REALTIME_VOICE_SPEED": "1.2",
        "REALTIME_NOISE_REDUCTION": "near_field",
        "REALTIME_VAD_IDLE_TIMEOUT_MS": "7000",
        "REALTIME_TRANSCRIPTION_LANGUAGE": " de ",
        "REALTIME_TRANSCRIPTION_PROMPT": "Expect ship names.",
        "REALTIME_MAX_OUTPUT_TOKENS": "300",
        "REALTIME_TOOL_CHOICE": "required",
        "REALTIME_PARALLEL_TOOL_CALLS": "off",
        "REALTIME_TRUNCATION": "retention_ratio",
        "REALTIME_TRUNCATION_RETENTION_RATIO": "0.6",
        "REALTIME_PROMPT_ID": "pmpt_abc",
        "REALTIME_PROMPT_VERSION": "3",
        "REALTIME_PROMPT_VARIABLES": '{"city": "Oslo"}',
        "REALTIME_AUDIO_CODEC": "PCMA",
        "UNRELATED": "ignored",
    }
    s = Settings.from_env(env)
    assert (s.reasoning_effort, s.voice_speed, s.noise_reduction) == ("high", 1.2, "near_field")
    assert (s.transcription_language, s.transcription_prompt) == ("de", "Expect ship names.")
    assert (s.max_output_tokens, s.tool_choice, s.parallel_tool_calls) == (300, "required", False)
    assert (s.truncation, s.truncation_retention_ratio) == ("retention_ratio", 0.6)
    assert (s.prompt_id, s.prompt_version, s.prompt_variables) == ("pmpt_abc", "3", (("city", "Oslo"),))
    assert s.audio_codec == "pcma"
    assert s.backend == "openai"
    assert s.base_url == "https://example.test/v1"
    assert s.model == "gpt-realtime-mini"
    assert s.voice == "cedar"
    assert s.instructions == "Speak like a pirate."
    assert s.turn_detection == TurnDetection("semantic_vad", 0.7, 800, 200, "high", 7000)
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
        "REALTIME_PROMPT_VARIABLES": {"name": "Ada"},  # a TOML table
        "REALTIME_MAX_OUTPUT_TOKENS": 200,
        "REALTIME_PARALLEL_TOOL_CALLS": False,
        "REALTIME_VOICE_SPEED": 0.5,
        "other_section": {"x": 1},
    }
    s = Settings.from_env(env, secrets)
    assert s.prompt_variables == (("name", "Ada"),)
    assert (s.max_output_tokens, s.parallel_tool_calls, s.voice_speed) == (200, False, 0.5)
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
        "REALTIME_REASONING_EFFORT": "extreme",
        "REALTIME_VOICE_SPEED": "3",
        "REALTIME_NOISE_REDUCTION": "loud",
        "REALTIME_VAD_IDLE_TIMEOUT_MS": "-1",
        "REALTIME_TRANSCRIPTION_LANGUAGE": "French",
        "REALTIME_MAX_OUTPUT_TOKENS": "5000",
        "REALTIME_TOOL_CHOICE": "always",
        "REALTIME_PARALLEL_TOOL_CALLS": "perhaps",
        "REALTIME_TRUNCATION": "sometimes",
        "REALTIME_TRUNCATION_RETENTION_RATIO": "2",
        "REALTIME_PROMPT_VARIABLES": '{"n": 1}',
        "REALTIME_AUDIO_CODEC": "mp3",
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
        "Reasoning effort must be one of minimal, low, medium, high, xhigh",
        "Voice speed must be 0.25..1.5, not 3.0",
        "Noise reduction must be one of off, near_field, far_field, not 'loud'",
        "VAD idle timeout must be 1..3600000 ms or off, not -1",
        "Transcription language must be an ISO-639-1 code",
        "Max output tokens must be 1..4096 or 'inf', not 5000",
        "Tool choice must be one of none, auto, required, not 'always'",
        "REALTIME_PARALLEL_TOOL_CALLS must be on or off",
        "Truncation must be one of auto, disabled, retention_ratio, not 'sometimes'",
        "Truncation retention ratio must be between 0 and 1, not 2.0",
        "REALTIME_PROMPT_VARIABLES must be a JSON object whose values are strings",
        "Audio codec (phone line) must be one of opus, pcmu, pcma, not 'mp3'",
    ]
    for fragment in expected:
        assert any(fragment in p for p in problems), (fragment, problems)
    assert isinstance(info.value, ValueError)
    with pytest.raises(SettingsError, match=r"Max output tokens must be 1\.\.4096"):
        Settings.from_env({"REALTIME_MAX_OUTPUT_TOKENS": "0"})
    with pytest.raises(SettingsError, match="REALTIME_MAX_OUTPUT_TOKENS must be a whole number"):
        Settings.from_env({"REALTIME_MAX_OUTPUT_TOKENS": "lots"})
    assert Settings.from_env({"REALTIME_MAX_OUTPUT_TOKENS": "INF"}).max_output_tokens == "inf"
    assert Settings.from_env({"REALTIME_VAD_IDLE_TIMEOUT_MS": "0"}).turn_detection.idle_timeout_ms is None
    assert Settings.from_env({"REALTIME_NOISE_REDUCTION": "off"}).noise_reduction is None


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
    assert model.model == "gpt-realtime-2.1"
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
    assert model.max_output_tokens == "inf" and model.truncation == "auto" and model.prompt is None
    assert model.audio.output.speed == 1.0 and model.audio.input.noise_reduction is None
    assert model.parallel_tool_calls is True and model.reasoning is None  # the model's own default effort
    assert "audio_codec" not in json.dumps(payload) and "opus" not in json.dumps(payload)


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
        voice_speed=1.3,
        instructions="x",
        reasoning_effort="low",
        turn_detection={"mode": "none"},
        noise_reduction="near_field",
        tools=(),
        tool_choice="none",
        parallel_tool_calls=False,
        transcription_model="",
        transcription_language="en",
        transcription_prompt="names",
        output_modalities="text",
        max_output_tokens=100,
        truncation="retention_ratio",
        truncation_retention_ratio=0.3,
        prompt_id="pmpt_1",
        prompt_version="2",
        prompt_variables={"a": "b"},
        camera={"enabled": False},
    )
    assert restart_required(a, live) == ()
    assert set(live_changes(a, live)) == set(LIVE_FIELDS)
    assert restart_required(a, a.replace(model="gpt-realtime-mini")) == ("model",)
    assert restart_required(a, a.replace(api_key=KEY)) == ("backend", "api_key")
    assert restart_required(a, a.replace(base_url="http://127.0.0.1:1/v1")) == ("base_url",)
    assert restart_required(a, a.replace(audio_codec="pcmu")) == ("audio_codec",)
    assert live_changes(a, a.replace(audio_codec="pcmu")) == ()
    assert set(RESTART_FIELDS).isdisjoint(LIVE_FIELDS)
    assert KEY not in repr(restart_required(a, a.replace(api_key=KEY)))


# --- the GA session surface, read from the SDK ---------------------------------------------------


def test_choices_are_the_sdks_literals():
    assert set(MODELS) < set(SDK_MODELS)
    assert {"gpt-realtime-2", "gpt-realtime-2.1", "gpt-realtime-2.1-mini", "gpt-realtime-1.5"} <= set(MODELS)
    assert {"gpt-realtime", "gpt-realtime-mini"} <= set(MODELS)
    # the GA service no longer serves the gpt-4o previews; gpt-audio-* are Chat Completions models
    assert not [m for m in MODELS if "preview" in m or m.startswith("gpt-audio")]
    assert set(SDK_MODELS) - set(MODELS) == {m for m in SDK_MODELS if "preview" in m or m.startswith("gpt-audio")}
    assert DEFAULT_MODEL == "gpt-realtime-2.1" and DEFAULT_MODEL in SDK_MODELS
    assert VOICES == ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")
    assert {"gpt-realtime-whisper", "gpt-4o-mini-transcribe", "whisper-1"} <= set(TRANSCRIPTION_MODELS)
    assert REASONING_EFFORTS == ("minimal", "low", "medium", "high", "xhigh")
    assert NOISE_REDUCTIONS == ("off", "near_field", "far_field")
    assert EAGERNESS == ("low", "medium", "high", "auto")
    assert set(TOOL_CHOICES) == {"auto", "none", "required"}
    assert TRUNCATIONS == ("auto", "disabled", "retention_ratio")
    assert AUDIO_CODECS == ("opus", "pcmu", "pcma")


def test_reasoning_only_for_the_gpt_realtime_2_family():
    assert [m for m in MODELS if takes_reasoning(m)] == ["gpt-realtime-2", "gpt-realtime-2.1", "gpt-realtime-2.1-mini"]
    assert not takes_reasoning("gpt-realtime-2025-08-28") and not takes_reasoning("my-model")
    s = Settings(reasoning_effort="high", parallel_tool_calls=False)
    payload = s.session_payload()
    assert payload["reasoning"] == {"effort": "high"} and payload["parallel_tool_calls"] is False
    old = s.replace(model="gpt-realtime-mini").session_payload()
    assert "reasoning" not in old and "parallel_tool_calls" not in old
    validated(payload)
    validated(old)


def test_every_new_field_renders_where_the_sdk_puts_it():
    s = Settings(
        voice_speed=0.75,
        noise_reduction="far_field",
        turn_detection=TurnDetection(idle_timeout_ms=9000),
        transcription_model="gpt-realtime-whisper",
        transcription_language="es",
        transcription_prompt="Menu items",
        max_output_tokens=4096,
        tool_choice="none",
        truncation="retention_ratio",
        truncation_retention_ratio=0.25,
        prompt_id="pmpt_42",
        prompt_version="7",
        prompt_variables=(("dish", "paella"),),
    )
    model = validated(s.session_payload())
    assert model.audio is not None and model.audio.input is not None and model.audio.output is not None
    assert model.audio.output.speed == 0.75
    assert model.audio.input.noise_reduction is not None and model.audio.input.noise_reduction.type == "far_field"
    td = model.audio.input.turn_detection
    assert isinstance(td, ServerVad) and td.idle_timeout_ms == 9000
    tr = model.audio.input.transcription
    assert tr is not None and (tr.model, tr.language, tr.prompt) == ("gpt-realtime-whisper", "es", "Menu items")
    assert model.max_output_tokens == 4096 and model.tool_choice == "none"
    assert model.truncation is not None and not isinstance(model.truncation, str)
    assert model.truncation.retention_ratio == 0.25
    assert model.prompt is not None and (model.prompt.id, model.prompt.version) == ("pmpt_42", "7")
    assert model.prompt.variables == {"dish": "paella"}
    assert Settings(truncation="disabled").session_payload()["truncation"] == "disabled"
    # a version or variables without an id send no prompt (nothing to refer to)
    assert Settings(prompt_version="1", prompt_variables=(("a", "b"),)).session_payload()["prompt"] is None


@hsettings(max_examples=200, deadline=None)
@given(settings_strategy)
def test_every_setting_and_combination_renders_a_valid_ga_session(s):
    validated(s.session_payload())
    validated(s.session_payload(omit=("model", "voice")))  # what the bridge sends mid-call


def test_every_setting_name_is_documented_and_the_example_secrets_load():
    import re
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    source = (root / "realtime" / "settings.py").read_text(encoding="utf-8")
    names = set(re.findall(r'"((?:REALTIME|OPENAI)_[A-Z_]+)"', source))
    assert {"REALTIME_AUDIO_CODEC", "REALTIME_PROMPT_VARIABLES", "REALTIME_REASONING_EFFORT"} <= names
    readme = (root / "README.md").read_text(encoding="utf-8")
    example = (root / ".streamlit" / "secrets.toml.example").read_text(encoding="utf-8")
    assert [n for n in sorted(names) if f"`{n}`" not in readme] == []
    assert [n for n in sorted(names) if n not in example] == []
    from_example = Settings.from_env({}, tomllib.loads(example))
    assert from_example.replace(instructions=Settings().instructions) == Settings()  # the example shows the defaults
    table = tomllib.loads(example.replace("# REALTIME_PROMPT_VARIABLES", "REALTIME_PROMPT_VARIABLES"))
    assert Settings.from_env({}, table).prompt_variables == (("city", "Paris"),)
