"""The sidebar: engine/key status and every assistant setting, applied live to the call."""

from __future__ import annotations

from typing import Any

import streamlit as st

from realtime.settings import MODELS, TRANSCRIPTION_MODELS, VOICES, Settings, SettingsError
from realtime.tools import DEFAULT_TOOLS
from ui import page_style, presets_panel
from ui.conversation import Conversation
from ui.settings_source import read_secrets

_P = "sb."  # widget key prefix
_TURN_LABELS = {"server_vad": "Server VAD", "semantic_vad": "Semantic VAD", "none": "Push to talk"}
_OUTPUT_LABELS = {"audio": "Voice and text", "text": "Text only"}
_TRANSCRIPTION_OFF = "Off"
_MAX_SIDES = (256, 512, 768, 1024, 1536, 2048)
_FIELD_NAMES = {
    "model": "model",
    "base_url": "endpoint (OPENAI_BASE_URL)",
    "api_key": "API key",
    "backend": "engine",
    "ice_servers": "ICE servers",
    "voice": "voice",
}


def _widget_values(s: Settings) -> dict[str, Any]:
    td, cam = s.turn_detection, s.camera
    return {
        "model": s.model,
        "voice": s.voice,
        "instructions": s.instructions,
        "turn_mode": td.mode,
        "vad_threshold": float(td.threshold),
        "vad_silence_ms": int(td.silence_ms),
        "vad_eagerness": td.eagerness,
        "transcription": s.transcription_model or _TRANSCRIPTION_OFF,
        "output": s.output_modalities,
        "camera_on": cam.enabled,
        "camera_interval": float(cam.interval_s),
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
    return base.replace(
        model=_v("model"),
        voice=_v("voice"),
        instructions=_v("instructions").strip() or base.instructions,
        turn_detection={
            "mode": _v("turn_mode"),
            "threshold": float(_v("vad_threshold")),
            "silence_ms": int(_v("vad_silence_ms")),
            "eagerness": _v("vad_eagerness"),
        },
        transcription_model="" if transcription == _TRANSCRIPTION_OFF else transcription,
        output_modalities=_v("output"),
        camera={
            "enabled": bool(_v("camera_on")),
            "interval_s": float(_v("camera_interval")),
            "max_side": int(_v("camera_max_side")),
            "detail": _v("camera_detail"),
        },
        tools=tuple(name for name in DEFAULT_TOOLS.names if _v(f"tool.{name}")),
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
        st.selectbox(
            "Voice", VOICES, key=_P + "voice", help="The provider cannot change the voice once it has spoken in a call."
        )
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
        elif mode == "semantic_vad":
            st.select_slider(
                "Eagerness",
                ["low", "medium", "high", "auto"],
                key=_P + "vad_eagerness",
                help="How quickly the model decides you have finished.",
            )
        else:
            st.caption(
                "Push to talk: speak, then press **Send what I said** in the call bar. "
                "Nothing is answered until you press it."
            )

        transcription_options = list(dict.fromkeys([*TRANSCRIPTION_MODELS, _v("transcription"), _TRANSCRIPTION_OFF]))
        st.selectbox(
            "Input transcription",
            transcription_options,
            key=_P + "transcription",
            help="Model that writes down what you say (your side of the transcript).",
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
            st.slider(
                "At most one frame every (s)",
                0.2,
                max(10.0, float(_v("camera_interval"))),
                step=0.2,
                key=_P + "camera_interval",
            )
            sides = list(dict.fromkeys([*_MAX_SIDES, _v("camera_max_side")]))
            st.select_slider("Resize frames to at most (px)", sorted(sides), key=_P + "camera_max_side")
            st.radio("Image detail", ["auto", "low", "high"], key=_P + "camera_detail", horizontal=True)

        with st.expander("Tools", expanded=False, icon=":material/build:"):
            for tool in DEFAULT_TOOLS:
                st.checkbox(tool.name, key=f"{_P}tool.{tool.name}", help=tool.description or None)

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
