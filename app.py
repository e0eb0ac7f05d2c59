"""Realtime Studio: the conversation page.

The browser's mic and camera reach the server through streamlit-webrtc; a `realtime.Bridge` (one per
Streamlit session, i.e. per tab) carries them to the model and plays its voice back through a PCM
source track. The page only reads `bridge.snapshot()` from a polling fragment and calls the Bridge's
thread-safe methods; it never touches asyncio objects.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import streamlit as st

from streamlit_webrtc import (
    WebRtcMode,
    create_audio_sink_track,
    create_pcm_audio_source_track,
    webrtc_streamer,
)

from realtime.settings import SettingsError
from ui import controls, sidebar, status, transcript_view
from ui.conversation import Conversation, get_conversation
from ui.settings_source import default_settings

PAGES_DIR = Path(__file__).parent / "pages"

STREAM_KEY = "conversation"
TRANSLATIONS = {
    "start": "Start conversation",
    "stop": "Stop (hang up)",
    "select_device": "Devices",
    "media_api_not_available": "This browser cannot capture audio/video here (it needs https or localhost).",
    "device_ask_permission": "Allow the microphone (and camera) to talk to the assistant.",
    "device_not_available": "No microphone or camera found.",
    "device_access_denied": "Microphone access was denied: allow it in the browser's site settings, then Start again.",
}


def _stream_key() -> str:
    """A component key unique to this session. The component keeps per-key state in the browser's
    localStorage, shared by every tab of the origin; with one fixed key, starting a call in a second
    tab reset the first tab's call (measured with Chromium 156)."""
    if "stream_key" not in st.session_state:
        st.session_state["stream_key"] = f"{STREAM_KEY}-{uuid.uuid4().hex[:8]}"
    return st.session_state["stream_key"]


def _media_constraints(conv: Conversation) -> dict:
    video: dict | bool = {"width": 640, "height": 480, "frameRate": {"max": 15}}
    if not conv.settings.camera.enabled:
        video = False
    return {
        "audio": {"echoCancellation": True, "noiseSuppression": True, "autoGainControl": True},
        "video": video,
    }


def conversation_page() -> None:
    try:
        conv = get_conversation(default_settings)
    except SettingsError as exc:
        st.title("Realtime Studio")
        st.error("The configuration has problems, so no conversation can start:\n\n"
                 + "\n".join(f"- {p}" for p in exc.problems)
                 + "\n\nFix them in the environment or `.streamlit/secrets.toml` and reload the page.")
        return
    conv.watch_session_end()

    st.title("Realtime Studio")
    sidebar.render(conv)

    left, right = st.columns([2, 3], gap="large")
    with left:
        key = _stream_key()
        voice_out = create_pcm_audio_source_track(key=f"{key}-voice", sample_rate=48000)
        mic_sink = create_audio_sink_track(conv.on_mic_frame, key=f"{key}-mic", on_ended=conv.on_browser_leg_ended)
        ctx = webrtc_streamer(
            key=key,
            mode=WebRtcMode.SENDRECV,
            rtc_configuration=conv.settings.rtc_configuration(),
            media_stream_constraints=_media_constraints(conv),
            sink_audio_track=mic_sink,
            source_audio_track=voice_out.track,
            video_frame_callback=conv.on_video_frame,
            sendback_video=True,
            translations=TRANSLATIONS,
        )
        if ctx.state.playing:
            conv.start(voice_out)
        elif not ctx.state.signalling and conv.active:
            conv.stop("the user pressed Stop")
        controls.render_call_controls(conv)

    with right:
        _live_panel(conv)

    prompt = st.chat_input(
        "Type a message to the assistant…" if conv.active else "Start the conversation to type a message",
        disabled=not conv.active,
    )
    if prompt and conv.bridge is not None:
        conv.bridge.send_text(prompt)


def _live_panel(conv: Conversation) -> None:
    @st.fragment(run_every=0.4 if conv.active else None)
    def live() -> None:
        try:
            snap = conv.snapshot()
        except Exception as exc:  # noqa: BLE001 - a message, never a traceback
            st.error(f"The conversation state could not be read: {type(exc).__name__}")
            return
        status.render_status(conv.settings.backend, snap, live=conv.active)
        if conv.start_error:
            st.error(f"The conversation could not start: {conv.start_error}", icon=":material/error:")
        status.render_error(snap)
        if conv.settings.backend == "local":
            st.caption(
                ":material/info: Local offline engine: speech recognition is approximate. "
                "Set OPENAI_API_KEY to talk to OpenAI."
            )
        with st.container(height=520, border=True, key="transcript"):
            items = snap.transcript if snap is not None else ()
            failed = snap is not None and snap.state == "failed"
            transcript_view.render_transcript(items, live=conv.active, failed=failed)

    live()


def _page_title(path: Path) -> str:
    """`pages/2_Diagnostics.py` -> "Diagnostics" (the same rule Streamlit uses for a pages/ folder)."""
    return re.sub(r"^\d+[_ -]*", "", path.stem).replace("_", " ").strip() or path.stem


def main() -> None:
    st.set_page_config(page_title="Realtime Studio", page_icon=":material/graphic_eq:", layout="wide")
    pages = [st.Page(conversation_page, title="Conversation", icon=":material/forum:", default=True)]
    pages += [st.Page(str(p), title=_page_title(p)) for p in sorted(PAGES_DIR.glob("[0-9]*.py"))]
    st.navigation(pages).run()


main()
