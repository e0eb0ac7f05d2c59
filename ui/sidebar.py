"""The sidebar: engine/key status and every assistant setting, applied live to the call."""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from realtime.frame_policy import QUIET_FACTOR, QUIET_MIN_S
from realtime.settings import (
    AUDIO_CODECS,
    EAGERNESS,
    FRAME_POLICIES,
    MAX_OUTPUT_TOKENS,
    MODELS,
    NOISE_REDUCTIONS,
    REASONING_EFFORTS,
    SPEED_RANGE,
    TOOL_CHOICES,
    TRANSCRIPTION_MODELS,
    TRUNCATIONS,
    VOICES,
    Settings,
    SettingsError,
    parse_prompt_variables,
    takes_reasoning,
)
from realtime.tools import DEFAULT_TOOLS
from scenarios import DEFAULT_SCENARIO
from ui import page_style, presets_panel
from ui.conversation import Conversation
from ui.scenario_choice import is_allowed, scenario_label, scenario_options
from ui.settings_source import configured_scenario, read_secrets

_P = "sb."  # widget key prefix
_TURN_LABELS = {"server_vad": "Server VAD", "semantic_vad": "Semantic VAD", "none": "Push to talk"}
_OUTPUT_LABELS = {"audio": "Voice and text", "text": "Text only"}
_TRANSCRIPTION_OFF = "Off"
_MODEL_DEFAULT = "default"
_EFFORT_LABELS = {_MODEL_DEFAULT: "Model default"}
_NOISE_LABELS = {"off": "Off", "near_field": "Near (headset)", "far_field": "Far (laptop, room)"}
_CODEC_LABELS = {"opus": "Opus (wideband)", "pcmu": "G.711 μ-law (PCMU)", "pcma": "G.711 A-law (PCMA)"}
_TRUNCATION_LABELS = {"auto": "Auto", "disabled": "Never (error when full)", "retention_ratio": "Keep a fraction"}
_MAX_SIDES = (256, 512, 768, 1024, 1536, 2048)
_FRAME_POLICY_LABELS = {
    "turn": "At each turn (default)",
    "interval": "Every N seconds",
    "manual": "Only when I press Send frame",
}
_FRAME_POLICY_HELP = (
    "**At each turn**: a frame as you start speaking and as you stop (so the assistant sees what was "
    "on screen when you asked), one every N seconds while you speak, and only every "
    f"{QUIET_FACTOR:g}×N seconds (at least {QUIET_MIN_S:g}) while nobody speaks. "
    "**Every N seconds**: a frame every N seconds all the time. "
    "**Only when I press Send frame**: nothing by itself. Automatic frames are skipped when the "
    "picture has not changed."
)
_FIELD_NAMES = {
    "model": "model",
    "base_url": "endpoint (OPENAI_BASE_URL)",
    "api_key": "API key",
    "backend": "engine",
    "ice_servers": "ICE servers",
    "voice": "voice",
    "audio_codec": "phone line",
}


def _widget_values(s: Settings) -> dict[str, Any]:
    td, cam = s.turn_detection, s.camera
    return {
        "model": s.model,
        "scenario": s.scenario,
        "reasoning_effort": s.reasoning_effort or _MODEL_DEFAULT,
        "audio_codec": s.audio_codec,
        "voice": s.voice,
        "voice_speed": float(s.voice_speed),
        "instructions": s.instructions,
        "turn_mode": td.mode,
        "vad_threshold": float(td.threshold),
        "vad_silence_ms": int(td.silence_ms),
        "vad_idle_ms": int(td.idle_timeout_ms or 0),
        "vad_eagerness": td.eagerness,
        "noise_reduction": s.noise_reduction or "off",
        "transcription": s.transcription_model or _TRANSCRIPTION_OFF,
        "transcription_language": s.transcription_language,
        "transcription_prompt": s.transcription_prompt,
        "output": s.output_modalities,
        "max_tokens_limited": s.max_output_tokens != "inf",
        "max_tokens": MAX_OUTPUT_TOKENS if s.max_output_tokens == "inf" else int(s.max_output_tokens),
        "tool_choice": s.tool_choice,
        "parallel_tool_calls": s.parallel_tool_calls,
        "truncation": s.truncation,
        "truncation_ratio": float(s.truncation_retention_ratio),
        "prompt_id": s.prompt_id,
        "prompt_version": s.prompt_version,
        "prompt_variables": json.dumps(dict(s.prompt_variables), ensure_ascii=False) if s.prompt_variables else "",
        "camera_on": cam.enabled,
        "camera_interval": float(cam.interval_s),
        "camera_policy": cam.policy,
        "camera_max_side": int(cam.max_side),
        "camera_detail": cam.detail,
        **{f"tool.{name}": name in s.tools for name in DEFAULT_TOOLS.names},
    }


def _seed(settings: Settings, *, force: bool = False) -> None:
    for name, value in _widget_values(settings).items():
        if force or _P + name not in st.session_state:
            st.session_state[_P + name] = value


def _v(name: str) -> Any:
    return st.session_state[_P + name]


def _settings_from_widgets(base: Settings) -> Settings:
    transcription = _v("transcription")
    problems: list[str] = []
    variables = parse_prompt_variables(_v("prompt_variables"), problems, "Prompt variables")
    if problems:
        raise SettingsError(problems)
    effort = _v("reasoning_effort")
    noise = _v("noise_reduction")
    return base.replace(
        model=_v("model"),
        scenario=_v("scenario"),
        reasoning_effort=None if effort == _MODEL_DEFAULT else effort,
        audio_codec=_v("audio_codec"),
        voice=_v("voice"),
        voice_speed=float(_v("voice_speed")),
        instructions=_v("instructions").strip() or base.instructions,
        turn_detection={
            "mode": _v("turn_mode"),
            "threshold": float(_v("vad_threshold")),
            "silence_ms": int(_v("vad_silence_ms")),
            "idle_timeout_ms": int(_v("vad_idle_ms")) or None,
            "eagerness": _v("vad_eagerness"),
        },
        noise_reduction=None if noise == "off" else noise,
        transcription_model="" if transcription == _TRANSCRIPTION_OFF else transcription,
        transcription_language=_v("transcription_language"),
        transcription_prompt=_v("transcription_prompt"),
        output_modalities=_v("output"),
        max_output_tokens=int(_v("max_tokens")) if _v("max_tokens_limited") else "inf",
        tool_choice=_v("tool_choice"),
        parallel_tool_calls=bool(_v("parallel_tool_calls")),
        truncation=_v("truncation"),
        truncation_retention_ratio=float(_v("truncation_ratio")),
        prompt_id=_v("prompt_id"),
        prompt_version=_v("prompt_version"),
        prompt_variables=variables,
        camera={
            "enabled": bool(_v("camera_on")),
            "interval_s": float(_v("camera_interval")),
            "policy": _v("camera_policy"),
            "max_side": int(_v("camera_max_side")),
            "detail": _v("camera_detail"),
        },
        tools=tuple(name for name in DEFAULT_TOOLS.names if _v(f"tool.{name}")),
    )


def _scenario_select() -> None:
    """The scenario: a built-in, or the one this server is configured with (never a spec typed into
    the page: a spec can name a Python file, and loading it runs that file)."""
    configured = configured_scenario()
    options = scenario_options(configured)
    if not is_allowed(_v("scenario"), configured):  # e.g. the server's configuration changed since
        st.session_state[_P + "scenario"] = DEFAULT_SCENARIO
    st.selectbox(
        "Scenario",
        options,
        format_func=scenario_label,
        key=_P + "scenario",
        help="The agents that answer: the plain assistant, or a scenario with handoffs, guardrails and "
        "tools that ask for approval. Takes effect on the next call.",
    )


def key_status(settings: Settings) -> str:
    """Where the key came from, never the key itself."""
    if not settings.has_key:
        return "No OPENAI_API_KEY set: using the local offline engine."
    secrets = read_secrets() or {}
    source = "secrets.toml" if secrets.get("OPENAI_API_KEY") else "environment"
    where = f" at {settings.base_url}" if settings.base_url else ""
    return f"OpenAI key set (from {source}){where}."


def render(conv: Conversation) -> Settings:
    """Draw the sidebar; apply changes to the conversation. Returns the settings now in force."""
    settings = conv.settings
    with st.sidebar:
        page_style.apply()  # every page draws the sidebar, at the top level of the run (not in a fragment)
        st.header("Assistant")
        if settings.backend == "openai":
            st.success(f"**Engine: OpenAI** · {key_status(settings)}", icon=":material/key:")
        else:
            st.info(
                "**Engine: Local (offline)** · No OPENAI_API_KEY set, so the bundled offline engine answers.",
                icon=":material/computer:",
            )

        chosen = presets_panel.render(settings)
        if chosen is not None:
            _seed(chosen, force=True)
        # A preset or share link also sets fields that have no widget (VAD prefix padding, camera
        # max images, ...): build on it, or those would fall back to the old settings' values.
        base = chosen if chosen is not None else settings

        _seed(settings)
        model_options = list(dict.fromkeys([*MODELS, _v("model")]))
        st.selectbox("Model", model_options, key=_P + "model", help="Takes effect on the next call.")
        _scenario_select()
        if takes_reasoning(_v("model")):
            st.select_slider(
                "Reasoning effort",
                [_MODEL_DEFAULT, *REASONING_EFFORTS],
                format_func=lambda e: _EFFORT_LABELS.get(e, e),
                key=_P + "reasoning_effort",
                help="How hard the model thinks before it answers (gpt-realtime-2 models). Applied live.",
            )
        st.radio(
            "Phone line",
            AUDIO_CODECS,
            format_func=_CODEC_LABELS.get,
            key=_P + "audio_codec",
            horizontal=True,
            help="The audio codec of the call to the model (negotiated when the call starts): "
            "Opus is wideband; G.711 sounds like a telephone. Takes effect on the next call.",
        )
        st.selectbox(
            "Voice", VOICES, key=_P + "voice", help="The provider cannot change the voice once it has spoken in a call."
        )
        low, high = SPEED_RANGE
        st.slider("Voice speed", low, high, step=0.05, key=_P + "voice_speed", help="1.0 is normal speed.")
        st.text_area(
            "Instructions",
            key=_P + "instructions",
            height=140,
            help="Applied to the live call as soon as you leave the box (Ctrl+Enter).",
        )

        st.radio(
            "Turn detection", list(_TURN_LABELS), format_func=_TURN_LABELS.get, key=_P + "turn_mode", horizontal=True
        )
        mode = _v("turn_mode")
        if mode == "server_vad":
            st.slider(
                "VAD threshold",
                0.0,
                1.0,
                step=0.05,
                key=_P + "vad_threshold",
                help="Higher needs louder speech to count as speech.",
            )
            st.number_input("Silence before end of turn (ms)", 100, 5000, step=50, key=_P + "vad_silence_ms")
            st.number_input(
                "Speak up after idle (ms, 0 = never)",
                0,
                3_600_000,
                step=1000,
                key=_P + "vad_idle_ms",
                help="If you stay silent this long after an answer, the assistant prompts you to continue.",
            )
        elif mode == "semantic_vad":
            st.select_slider(
                "Eagerness",
                EAGERNESS,
                key=_P + "vad_eagerness",
                help="How quickly the model decides you have finished.",
            )
        else:
            st.caption(
                "Push to talk: speak, then press **Send what I said** in the call bar. "
                "Nothing is answered until you press it."
            )

        st.radio(
            "Noise reduction",
            NOISE_REDUCTIONS,
            format_func=_NOISE_LABELS.get,
            key=_P + "noise_reduction",
            horizontal=True,
            help="Filter your microphone before turn detection and the model hear it.",
        )
        transcription_options = list(dict.fromkeys([*TRANSCRIPTION_MODELS, _v("transcription"), _TRANSCRIPTION_OFF]))
        st.selectbox(
            "Input transcription",
            transcription_options,
            key=_P + "transcription",
            help="Model that writes down what you say (your side of the transcript).",
        )
        if _v("transcription") != _TRANSCRIPTION_OFF:
            cols = st.columns([1, 2])
            cols[0].text_input("Language", key=_P + "transcription_language", placeholder="auto", help="e.g. en")
            cols[1].text_input(
                "Transcription hint", key=_P + "transcription_prompt", help="Words or context to expect."
            )
        st.radio(
            "Assistant answers with",
            list(_OUTPUT_LABELS),
            format_func=_OUTPUT_LABELS.get,
            key=_P + "output",
            horizontal=True,
        )

        with st.expander("Camera", expanded=False, icon=":material/videocam:"):
            st.toggle("Send camera frames to the assistant", key=_P + "camera_on")
            st.radio(
                "Send a frame",
                FRAME_POLICIES,
                format_func=_FRAME_POLICY_LABELS.get,
                key=_P + "camera_policy",
                help=_FRAME_POLICY_HELP,
            )
            st.slider(
                "At most one frame every (s)",
                0.2,
                max(10.0, float(_v("camera_interval"))),
                step=0.2,
                key=_P + "camera_interval",
                disabled=_v("camera_policy") == "manual",
                help="N: the interval of *Every N seconds*, and of *At each turn* while you speak.",
            )
            sides = list(dict.fromkeys([*_MAX_SIDES, _v("camera_max_side")]))
            st.select_slider("Resize frames to at most (px)", sorted(sides), key=_P + "camera_max_side")
            st.radio("Image detail", ["auto", "low", "high"], key=_P + "camera_detail", horizontal=True)

        with st.expander("Tools", expanded=False, icon=":material/build:"):
            for tool in DEFAULT_TOOLS:
                st.checkbox(tool.name, key=f"{_P}tool.{tool.name}", help=tool.description or None)
            st.radio("Tool choice", TOOL_CHOICES, key=_P + "tool_choice", horizontal=True)
            if takes_reasoning(_v("model")):
                st.toggle("Call several tools at once", key=_P + "parallel_tool_calls")

        with st.expander("Response length and context", expanded=False, icon=":material/tune:"):
            st.toggle("Limit the length of each answer", key=_P + "max_tokens_limited")
            if _v("max_tokens_limited"):
                st.number_input("Max output tokens", 1, MAX_OUTPUT_TOKENS, step=64, key=_P + "max_tokens")
            st.radio(
                "When the context is full",
                TRUNCATIONS,
                format_func=_TRUNCATION_LABELS.get,
                key=_P + "truncation",
                help="How older turns are dropped once the conversation exceeds the model's context.",
            )
            if _v("truncation") == "retention_ratio":
                st.slider("Fraction kept", 0.0, 1.0, step=0.05, key=_P + "truncation_ratio")

        with st.expander("Reusable prompt", expanded=False, icon=":material/description:"):
            st.text_input("Prompt id", key=_P + "prompt_id", placeholder="pmpt_...")
            st.text_input("Version", key=_P + "prompt_version", placeholder="latest")
            st.text_area(
                "Variables (JSON object)",
                key=_P + "prompt_variables",
                placeholder='{"city": "Paris"}',
                height=80,
            )

        try:
            new = _settings_from_widgets(base)
        except SettingsError as exc:
            st.error("These settings were not applied:\n\n" + "\n".join(f"- {p}" for p in exc.problems))
            return settings
        if new != settings:
            try:
                conv.apply_settings(new)
            except Exception as exc:
                st.error(f"The call did not accept the new settings ({type(exc).__name__}).")
                return conv.settings
        note = conv.restart_note if conv.active else ()
        if note:
            names = ", ".join(_FIELD_NAMES.get(n, n.replace("_", " ")) for n in note)
            st.warning(
                f"Changed {names}: this takes effect after a restart. Stop and Start the conversation.",
                icon=":material/restart_alt:",
            )
        elif conv.active:
            st.caption(":material/check_circle: Changes apply to the live call as you make them.")
    return conv.settings
