"""Diagnostics: connection, WebRTC stats, per-turn latency, token usage and cost of this tab's conversation."""

from __future__ import annotations

import streamlit as st

from ui.conversation import peek_conversation
from ui.diagnostics_view import render_connection, render_rtc, render_turns, render_usage
from ui.live import live_fragment
from ui.status import error_text

st.title("Diagnostics")

conv = peek_conversation()
bridge = conv.latest_bridge if conv is not None else None

if bridge is None:
    st.info(
        "No conversation in this tab yet. Once you press **Start conversation**, this page shows "
        "the connection state, WebRTC statistics (round-trip time, jitter, packets lost, audio levels), "
        "the latency of each turn (end of your speech or message to the assistant's first audio and text), "
        "and the tokens used with an estimated cost.",
        icon=":material/monitoring:",
    )
    st.stop()


@live_fragment("diagnostics-live", run_every=1.0 if conv.active else None)
def diagnostics() -> None:
    try:
        snap = bridge.snapshot()
    except Exception as exc:
        st.error(f"The conversation state could not be read ({type(exc).__name__}).")
        return
    live = conv.active and snap.state in ("connecting", "connected")
    settings = getattr(bridge, "settings", None) or conv.settings  # the settings of that call
    backend, model = settings.backend, settings.model
    if live:
        st.caption("The conversation is running: these figures update every second.")
    else:
        st.caption("Figures from this tab's last conversation (it has ended).")
    render_connection(snap, backend=backend, model=model, live=live)
    if snap.error is not None:
        st.error(error_text(snap.error), icon=":material/error:")
    st.subheader("WebRTC to the model")
    render_rtc(snap)
    st.subheader("Latency per turn")
    render_turns(snap, model=model, backend=backend)
    st.subheader("Tokens and cost")
    render_usage(snap, backend=backend, model=model)


diagnostics()
