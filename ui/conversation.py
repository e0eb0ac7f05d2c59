"""One conversation per Streamlit session: owns the Bridge's lifecycle, nothing else.

The media callbacks (streamlit-webrtc's loop) and the page (script threads) both reach the bridge
through the `Conversation` kept in `st.session_state`; nothing here is module-global, so two tabs
are two conversations. It holds no protocol logic: it starts, forwards to, and closes a Bridge.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import streamlit as st
from streamlit.logger import get_logger

from realtime.admission import admission
from realtime.settings import Settings
from realtime.voice_gate import VoiceGate

if TYPE_CHECKING:  # the bridge (aiortc, the SDK) is imported when the first call starts
    import av
    import numpy as np
    from streamlit_webrtc.pcm_source import PcmAudioSource
    from streamlit_webrtc.shutdown import SessionShutdownObserver

    from realtime.bridge import Bridge, BridgeSnapshot, SettingsChange

_STATE_KEY = "realtime_studio.conversation"
_log = get_logger(__name__)  # follows Streamlit's [logger] level


class Conversation:
    """This session's current Bridge (or none) and the last one, for the Events/Diagnostics pages."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._bridge: Bridge | None = None
        self._last_bridge: Bridge | None = None
        self._shutdown_observer: SessionShutdownObserver | None = None
        self._gate: VoiceGate | None = None
        self._generation = 0  # counts calls; a browser leg's end only stops the call it belonged to
        self._history_id: str | None = None
        self.latest_history_id: str | None = None  # the record of the call running now, or of the last one
        self.start_error: str | None = None
        self.restart_note: tuple[str, ...] = ()  # settings changed mid-call that need a new call

    # -- read side (page) -------------------------------------------------------------------
    @property
    def bridge(self) -> Bridge | None:
        """The live bridge, or None when no call is running."""
        return self._bridge

    @property
    def latest_bridge(self) -> Bridge | None:
        """The live bridge, else the one from the call that ended last (its log stays readable)."""
        return self._bridge if self._bridge is not None else self._last_bridge

    @property
    def active(self) -> bool:
        return self._bridge is not None

    def snapshot(self) -> BridgeSnapshot | None:
        bridge = self.latest_bridge
        return None if bridge is None else bridge.snapshot()

    # -- media callbacks (streamlit-webrtc's loop: cheap, never block) ----------------------
    def on_mic_frame(self, frame: av.AudioFrame) -> None:
        bridge = self._bridge
        if bridge is not None:
            bridge.on_mic_frame(frame)

    def on_video_frame(self, frame: av.VideoFrame) -> None:
        """A camera frame from the browser leg's video sink (nothing is sent back: the browser draws
        the self-view). The bridge only keeps the latest one."""
        bridge = self._bridge
        if bridge is not None and self.settings.camera.enabled:
            bridge.on_video_frame(frame)

    def on_screen_frame(self, frame: np.ndarray) -> None:
        """A frame of the user's shared screen (RGB, posted by the Share screen control to
        ``api.screen_intake``'s route, on the server's event loop)."""
        bridge = self._bridge
        if bridge is not None:
            bridge.on_screen_frame(frame)

    def stop_screen_share(self) -> None:
        """The user stopped sharing their screen: the camera is the image source again."""
        bridge = self._bridge
        if bridge is not None:
            bridge.stop_screen_share()

    def leg_ended_callback(self) -> Callable[[], None]:
        """The sink track's ``on_ended`` for this script run. It names the call it belongs to: the
        running one, or (before Start) the next one. streamlit-webrtc caches the sink track across
        calls and sets its ``on_ended`` again on every run, so a late end of an earlier leg must not
        hang up a newer call."""
        generation = self._generation if self._bridge is not None else self._generation + 1
        return lambda: self.on_browser_leg_ended(generation)

    def on_browser_leg_ended(self, generation: int | None = None) -> None:
        """The browser's mic track ended (tab closed, network gone): hang up off the media loop."""
        if generation is not None and generation != self._generation:
            _log.info("ignored the end of an earlier call's browser leg")
            return
        threading.Thread(target=self.stop, args=("browser leg ended",), name="conversation-stop", daemon=True).start()

    # -- lifecycle (script thread) ----------------------------------------------------------
    def start(self, audio_out: PcmAudioSource) -> None:
        """Create and start a Bridge for this call if none is running. Idempotent."""
        with self._lock:
            if self._bridge is not None:
                return
            from realtime.bridge import Bridge

            self.start_error = None
            self.restart_note = ()
            gate = VoiceGate(audio_out)
            try:
                bridge = Bridge(self.settings, gate)
                refused = admission().admit(bridge)
                if refused is not None:
                    self.start_error = refused
                    return
                bridge.start()
            except Exception as exc:
                _log.warning("could not start the conversation: %s", type(exc).__name__)
                self.start_error = _describe(exc)
                return
            self._generation += 1
            self._gate = gate
            self._bridge = bridge
            self._last_bridge = bridge
            self._history_id = self.latest_history_id = _record(bridge, self.settings)

    def stop(self, reason: str = "stopped") -> None:
        """Hang up and close the current Bridge (blocking, at most a couple of seconds). Idempotent."""
        with self._lock:
            bridge, self._bridge = self._bridge, None
            history_id, self._history_id = self._history_id, None
        if bridge is not None:
            _log.info("closing the conversation: %s", reason)
            try:
                bridge.close()
            except Exception as exc:
                _log.warning("closing the conversation failed: %s", type(exc).__name__)
        if history_id is not None:
            _end_record(history_id)

    def interrupt(self) -> None:
        """Stop the assistant now: drop its queued voice, and what is still on the wire of this reply,
        and ask the provider to cancel the response and clear its audio buffer."""
        gate, bridge = self._gate, self._bridge
        if gate is not None:
            gate.interrupt()
        if bridge is not None:
            bridge.interrupt()

    def apply_settings(self, settings: Settings) -> SettingsChange | None:
        """Remember new settings; push them to a live call. Returns the SettingsChange or None."""
        self.settings = settings
        bridge = self._bridge
        if bridge is None:
            return None
        change = bridge.update_settings(settings)
        if change.needs_restart:
            self.restart_note = tuple(dict.fromkeys((*self.restart_note, *change.needs_restart)))
        return change

    def watch_session_end(self) -> None:
        """Close the call when this Streamlit session goes away (tab closed, server stopping)."""
        if self._shutdown_observer is not None:
            return
        from streamlit_webrtc.shutdown import SessionShutdownObserver

        self._shutdown_observer = SessionShutdownObserver(self._on_session_end)

    def _on_session_end(self) -> None:
        self._shutdown_observer = None
        self.stop("the Streamlit session ended")


def _record(bridge: Bridge, settings: Settings) -> str | None:
    """Save this call to History. The only place a call is attached; the recorder ends the
    record when the bridge says the call is over."""
    try:
        from realtime.history import process_store

        store, _notice = process_store()
        return None if store is None else store.recorder.attach(bridge, settings)
    except Exception as exc:
        _log.warning("history could not record this call: %s", type(exc).__name__)
        return None


def _end_record(history_id: str) -> None:
    """A fallback for a bridge that never said it ended (e.g. its close timed out): the recorder
    ends a record once, so after ``CallEnded`` this changes nothing."""
    try:
        from realtime.history import process_store

        store, _notice = process_store()
        if store is not None:
            store.recorder.end_conversation(history_id)
    except Exception as exc:
        _log.warning("history could not end this call's record: %s", type(exc).__name__)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def get_conversation(default_settings: Callable[[], Settings]) -> Conversation:
    """This session's Conversation, created on first use."""
    conv = st.session_state.get(_STATE_KEY)
    if conv is None:
        conv = Conversation(default_settings())
        st.session_state[_STATE_KEY] = conv
    return conv


def peek_conversation() -> Conversation | None:
    """This session's Conversation if the main page created one (the other pages only read)."""
    return st.session_state.get(_STATE_KEY)
