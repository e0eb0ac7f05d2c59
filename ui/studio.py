"""Realtime Studio's page script (run by ``app.py``): a call bar on every page, then the page itself.

The browser's mic and camera reach the server through streamlit-webrtc; a `realtime.Bridge` (one per
Streamlit session, i.e. per tab) carries them to the model and plays its voice back through a PCM
source track. The WebRTC component lives in the call bar, drawn here above `st.navigation(...).run()`,
so it stays mounted, and the call stays up, while the user moves between Conversation, Events,
Diagnostics and History. The pages only read `bridge.snapshot()` from live fragments (rerun by push when
what they show changes: `ui.pulse`) and call the
Bridge's thread-safe methods; they never touch asyncio objects.

The camera goes one way: the server receives it (at `ui.self_view.SEND_FPS` frames a second) into a
video sink that keeps the latest frame for the model, and sends no video back. The self-view beside
the Start button is drawn by the browser from its own capture (`ui.self_view`), not by the server.
"""

from __future__ import annotations

import dataclasses
import re
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st
from streamlit_webrtc import (
    Translations,
    WebRtcMode,
    create_audio_sink_track,
    create_pcm_audio_source_track,
    webrtc_streamer,
)

from realtime import uploads
from realtime.admission import admission, busy_message
from realtime.rtc_tuning import tune_streamlit_webrtc
from realtime.settings import SettingsError
from realtime.voice_source import just_in_time
from ui import approvals, controls, sidebar, status, transcript_view
from ui.conversation import Conversation, get_conversation, peek_conversation
from ui.live import live_fragment, live_snapshot
from ui.process_setup import ProcessSetup, prepare_process
from ui.pulse import Pulse
from ui.replay_panel import REPLAY_HELP, open_for_replay
from ui.self_view import call_constraints, camera_sink, render_self_view
from ui.settings_source import default_settings
from ui.webrtc_context import keep_context_across_reruns

if TYPE_CHECKING:
    from streamlit.runtime.uploaded_file_manager import UploadedFile

    from realtime.bridge import Bridge, BridgeSnapshot

PAGES_DIR = Path(__file__).resolve().parent.parent / "pages"
# The tab icon as a local SVG (Streamlit inlines it as a data: URL). ":material/graphic_eq:" as
# page_icon makes the browser fetch it from fonts.gstatic.com: offline, a console error and no icon.
FAVICON = PAGES_DIR.parent / "static" / "favicon.svg"

STREAM_KEY = "conversation"
# The live parts rerun when what they show changes (ui.pulse), at most once per gap while it keeps changing.
STATUS_GAP_S = 0.5  # the call bar's status line
TRANSCRIPT_GAP_S = 0.4  # the live transcript, while words stream in
# What the live parts' change checks leave out: they change with every frame or stats read and are shown
# elsewhere (Diagnostics, Events), or they are big and have a cheaper stand-in (the transcript's revision).
_HEAVY_FIELDS = frozenset({"transcript", "turns", "usage", "cost_usd", "rtc", "sent_images"})
BUSY_EVERY_S = 3.0  # a full server: how often a waiting tab looks for a free place
MB = 1024 * 1024
CHAT_KEY = "chat_box"
_CHAT_NOTES = "chat_notes"  # session key: what the last submit could not send, said under the box
# What the camera captures: 640x480 at up to 15 fps (issue 4), shown at that rate by the browser's own
# self-view. Only a clone limited to ui.self_view.SEND_FPS goes to the server, which VP8-decodes it and
# sends nothing back (issue 15: the echoed self-view cost a decode and an encode of every frame).
VIDEO = {"width": 640, "height": 480, "frameRate": {"max": 15}}
TRANSLATIONS: Translations = {
    "start": "Start conversation",
    "stop": "Stop (hang up)",
    "select_device": "Devices",
    "media_api_not_available": "This browser cannot capture audio/video here (it needs https or localhost).",
    "device_ask_permission": "Allow the microphone (and camera) to talk to the assistant.",
    "device_not_available": "No microphone or camera found.",
    "device_access_denied": "The browser refused the microphone or camera: allow them in its site settings",
}


@st.cache_resource(show_spinner=False)
def _process_setup(backend: str) -> ProcessSetup:
    """Once per server process: cheap reruns, calls that survive page changes, the engine warming up."""
    return prepare_process(backend=backend)


def _stream_key() -> str:
    """A component key unique to this session. The component keeps per-key state in the browser's
    localStorage, shared by every tab of the origin; with one fixed key, starting a call in a second
    tab reset the first tab's call (measured with Chromium 156)."""
    if "stream_key" not in st.session_state:
        st.session_state["stream_key"] = f"{STREAM_KEY}-{uuid.uuid4().hex[:8]}"
    return st.session_state["stream_key"]


def _media_constraints(conv: Conversation) -> dict[str, Any]:
    return {
        "audio": call_constraints({"echoCancellation": True, "noiseSuppression": True, "autoGainControl": True}),
        "video": call_constraints(VIDEO) if conv.settings.camera.enabled else False,
    }


def _light_fields(snap: BridgeSnapshot | None) -> tuple[object, ...]:
    """The snapshot's fields a live part may show, minus the heavy ones (see _HEAVY_FIELDS)."""
    if snap is None:
        return ()
    return tuple(getattr(snap, f.name) for f in dataclasses.fields(snap) if f.name not in _HEAVY_FIELDS)


# -- the call bar (every page) -------------------------------------------------------------------


def call_bar(conv: Conversation, setup: ProcessSetup) -> None:
    with st.container(key="callbar", border=True):
        left, right = st.columns([5, 7], gap="medium")
        with left:
            _webrtc(conv)
        with right:
            st.markdown("#### :material/graphic_eq: Realtime Studio")
            _status_line(conv, setup)
            controls.render_call_controls(conv)


def _webrtc(conv: Conversation) -> None:
    key = _stream_key()
    voice_out = just_in_time(create_pcm_audio_source_track(key=f"{key}-voice", sample_rate=48000))
    mic_sink = create_audio_sink_track(conv.on_mic_frame, key=f"{key}-mic", on_ended=conv.leg_ended_callback())
    camera = camera_sink(conv.on_video_frame, key=f"{key}-camera")
    # above the component and in every run: the self-view's wrapper of the component's capture must be
    # in place before the user can press Start
    render_self_view()
    keep_context_across_reruns(key)
    busy = None if conv.active else _busy()
    ctx = webrtc_streamer(
        key=key,
        # full: no Start button (and a leg opened in the same moment is closed) until a call ends
        desired_playing_state=False if busy else None,
        mode=WebRtcMode.SENDRECV,
        rtc_configuration=conv.settings.rtc_configuration(),
        media_stream_constraints=_media_constraints(conv),
        sink_audio_track=mic_sink,
        sink_video_track=camera,  # receive only: no VP8 encode on the server, no video back
        source_audio_track=voice_out.track,
        sendback_video=False,
        # the component now plays the voice in an <audio>: without controls it takes no room in the bar
        audio_html_attrs={"autoPlay": True, "controls": False},
        translations=TRANSLATIONS,
    )
    if busy:
        _busy_note(busy)
    elif ctx.state.playing:
        conv.start(voice_out)
        if not conv.active and _busy():  # another tab took the last place meanwhile
            st.rerun()
        if st.session_state.get("tuned_call") != id(conv.bridge) and tune_streamlit_webrtc(ctx):
            st.session_state["tuned_call"] = id(conv.bridge)
    elif not ctx.state.signalling and conv.active:
        conv.stop("the user pressed Stop")


def _busy() -> str | None:
    """The busy message when this server runs as many conversations as it may."""
    gate = admission()
    running = gate.running()
    return busy_message(running) if running >= gate.limit else None


def _busy_note(message: str) -> None:
    """Said where Start would be; the page comes back by itself once a place is free."""

    @live_fragment("busy", run_every=BUSY_EVERY_S)
    def note() -> None:
        now = _busy()
        if now is None:
            st.rerun()
        st.warning(now or message, icon=":material/groups:")

    note()


def _status_line(conv: Conversation, setup: ProcessSetup) -> None:
    warmup = setup.warmup

    waiting_for_engine = warmup is not None and warmup.status().state == "starting"

    def shown() -> object:
        """What the status line shows, cheaply: it reruns when this changes."""
        snap = conv.snapshot()
        engine = warmup.status() if warmup is not None else None
        return (
            conv.active,
            conv.start_error,
            engine,
            _light_fields(snap),
            status.call_bar_notice(snap, time.time(), live=conv.active),  # a notice that expires
        )

    @live_snapshot(
        "status-live",
        read=conv.snapshot,
        pulse=Pulse("status", shown, gap_s=STATUS_GAP_S) if conv.active or waiting_for_engine else None,
    )
    def live(snap: BridgeSnapshot | None) -> None:
        status.render_status(conv.settings.backend, snap, live=conv.active)
        engine = warmup.status() if warmup is not None else None
        if engine is not None and engine.state == "starting":
            st.caption(
                ":material/hourglass_top: Starting local engine… You can press Start now: the call "
                "connects as soon as the engine is up."
            )
        elif engine is not None and engine.state == "failed" and not conv.active:
            st.warning(
                f"The local engine did not start: {engine.message}\n\nPress Start to try again.",
                icon=":material/warning:",
            )
        if conv.start_error:
            st.error(f"The conversation could not start: {conv.start_error}", icon=":material/error:")
        status.render_error(snap, live=conv.active)
        controls.render_recovery(conv, snap)  # here, not with the other controls: this line polls
        approvals.render_approvals(conv, snap)  # a scenario's tools waiting for Approve or Deny
        # Once the engine is up this keeps polling until the next full run: an st.rerun() from here would
        # rerun the page the fragment was drawn on and undo a page change made meanwhile (CI: a click on
        # History during the engine's start landed back on Conversation).

    live()


# -- the Conversation page -----------------------------------------------------------------------


def conversation_page() -> None:
    conv = peek_conversation()
    if conv is None:  # the configuration error is shown above
        return
    if conv.settings.backend == "local":
        st.caption(
            ":material/info: Local offline engine: speech recognition is approximate. "
            "Set OPENAI_API_KEY to talk to OpenAI."
        )
    _transcript_panel(conv)
    # Inline (inside a container), not pinned to the page bottom: Streamlit's main area is a different
    # React component when the page has a bottom block, so a page change between a page with one and a
    # page without one remounts the whole main area, and the call bar's WebRTC iframe with it (the
    # browser's peer closes and the call ends; measured with Streamlit 1.67).
    with st.container(key="chat"):
        st.chat_input(
            "Type a message, or add images, for the assistant…"
            if conv.active
            else "Start the conversation to type a message",
            key=CHAT_KEY,
            disabled=not conv.active,
            accept_file="multiple",
            file_type=list(uploads.FILE_TYPES),
            max_upload_size=uploads.MAX_FILE_BYTES // MB,  # the browser refuses bigger files before uploading
            on_submit=_on_chat_submit,
        )
    for note in st.session_state.pop(_CHAT_NOTES, ()):
        st.warning(note.text, icon=note.icon)
    _replay_button(conv)


@dataclasses.dataclass(frozen=True)
class _ChatNote:
    text: str
    icon: str | None = None


def _on_chat_submit() -> None:
    """Send what was typed, from the submit callback rather than from the page's run.

    The browser may carry a submitted message in a live part's rerun (the transcript's, when its
    update and the message leave together): that run does not reach ``st.chat_input`` and the message
    would be lost (measured: 1 message in about 100 under two CPU hogs). Callbacks run before every
    run, a fragment's included. What cannot be sent is said under the box on the next full run."""
    prompt = st.session_state.get(CHAT_KEY)
    if prompt is None:
        return
    text, files = prompt.text, list(prompt.files)
    if not text and not files:
        return
    conv = peek_conversation()
    notes: list[_ChatNote] = []
    bridge = conv.bridge if conv is not None else None
    if bridge is None:  # the call ended in the run that carried the message: say so, keep the text
        notes.append(
            _ChatNote(f"Not sent, the call has ended: {_described(text, files)}. Press Start and send it again.")
        )
    elif (delivery := controls.chat_delivery(bridge.snapshot())) == "refuse":
        notes.append(
            _ChatNote(
                f"Not sent, the call is not connected: {_described(text, files)}. "
                "Press Stop, then Start, and send it again."
            )
        )
    else:
        if files:
            notes.extend(_send_with_files(bridge, text, files))
        else:
            bridge.send_text(text)  # queued until the data channel of this call (or the next) opens
        if delivery == "queue":
            st.toast(controls.QUEUED_NOTE, icon=":material/schedule_send:")
    if notes:
        st.session_state[_CHAT_NOTES] = [*st.session_state.get(_CHAT_NOTES, ()), *notes]


def _replay_button(conv: Conversation) -> None:
    """Replay this conversation (live or just ended) against other setups: its History entry, with
    "Replay with…" open. Shown once the user has said or typed something."""
    snap = conv.snapshot()
    said = snap is not None and any(i.role == "user" and i.final and i.text.strip() for i in snap.transcript)
    if conv.latest_history_id is None or not said:
        return
    if st.button("Replay with…", icon=":material/replay:", key="replay_current", help=REPLAY_HELP):
        open_for_replay(conv.latest_history_id)
        st.switch_page(PAGES_DIR / "3_History.py")


def _described(text: str, files: list[UploadedFile]) -> str:
    """“hello”, or “hello” with cat.png, or cat.png and dog.jpg: what the user tried to send."""
    names = " and ".join(f.name for f in files)
    if not text:
        return names
    return f"“{text}”" + (f" with {names}" if names else "")


def _send_with_files(bridge: Bridge, text: str, files: list[UploadedFile]) -> list[_ChatNote]:
    """Hand text and images to the bridge, which decodes, encodes and sends them off the page's thread.

    A file over the size limit (only possible if the browser did not enforce ``max_upload_size``) is
    refused here from its size, before its bytes are copied; the notes say which."""
    notes: list[_ChatNote] = []
    sendable: list[uploads.Upload] = []
    for f in files:
        too_big = uploads.file_too_large(f.name, f.size)
        if too_big:
            notes.append(_ChatNote(too_big, ":material/image_not_supported:"))
        else:
            sendable.append(uploads.Upload(f.name, f.getvalue()))
    if sendable or text:
        bridge.send_message(text, sendable)
    return notes


def _transcript_panel(conv: Conversation) -> None:
    def shown() -> object:
        """What the transcript shows, cheaply: it reruns when this changes."""
        bridge = conv.latest_bridge
        snap = bridge.snapshot() if bridge is not None else None
        revision = bridge.transcript.revision if bridge is not None else -1
        images = len(snap.sent_images) if snap is not None else 0
        # only what `live` reads: not the activity, which changes four times a turn (the call bar shows it)
        failed = (snap.state, snap.reconnectable) if snap is not None else None
        return (id(bridge), revision, images, conv.active, failed)

    @live_snapshot(
        "transcript-live",
        read=conv.snapshot,
        pulse=Pulse("transcript", shown, gap_s=TRANSCRIPT_GAP_S) if conv.active else None,
    )
    def live(snap: BridgeSnapshot | None) -> None:
        with st.container(height=430, border=True, key="transcript"):
            items = snap.transcript if snap is not None else ()
            # the "could not continue, Stop and Start again" hint is wrong for a call waiting for Reconnect
            failed = snap is not None and snap.state == "failed" and not status.can_reconnect(snap, live=conv.active)
            sources = {i.item_id: i.source for i in snap.sent_images} if snap is not None else {}
            transcript_view.render_transcript(items, live=conv.active, failed=failed, image_sources=sources)

    live()


def _page_title(path: Path) -> str:
    """`pages/2_Diagnostics.py` -> "Diagnostics" (the same rule Streamlit uses for a pages/ folder)."""
    return re.sub(r"^\d+[_ -]*", "", path.stem).replace("_", " ").strip() or path.stem


def main() -> None:
    st.set_page_config(page_title="Realtime Studio", page_icon=FAVICON, layout="wide")
    pages = [st.Page(conversation_page, title="Conversation", icon=":material/forum:", default=True)]
    pages += [st.Page(str(p), title=_page_title(p)) for p in sorted(PAGES_DIR.glob("[0-9]*.py"))]
    page = st.navigation(pages)
    try:
        conv = get_conversation(default_settings)
    except SettingsError as exc:
        st.title("Realtime Studio")
        st.error(
            "The configuration has problems, so no conversation can start:\n\n"
            + "\n".join(f"- {p}" for p in exc.problems)
            + "\n\nFix them in the environment or `.streamlit/secrets.toml` and reload the page."
        )
        page.run()
        return
    setup = _process_setup(conv.settings.backend)
    conv.watch_session_end()
    sidebar.render(conv)
    call_bar(conv, setup)
    page.run()
