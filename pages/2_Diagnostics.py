"""Diagnostics: connection, WebRTC stats, per-turn latency, token usage and cost of this tab's conversation."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from ui.diagnostics_view import render_connection, render_reconnects, render_rtc, render_turns, render_usage
from ui.latest_call import watched_call_or_stop
from ui.live import live_snapshot
from ui.status import ONGOING_STATES, render_error

if TYPE_CHECKING:
    from realtime.bridge import BridgeSnapshot

st.title("Diagnostics")

watched = watched_call_or_stop(
    "No conversation in this tab yet. Once you press **Start conversation**, this page shows "
    "the connection state, WebRTC statistics (round-trip time, jitter, packets lost, audio levels, the "
    "negotiated audio codec), any reconnects, the latency of each turn (end of your speech or message to the "
    "assistant's first audio and text), and the tokens used with an estimated cost and the date of the prices.",
    icon=":material/monitoring:",
)


@live_snapshot("diagnostics-live", run_every=1.0 if watched.is_running() else None, read=watched.read)
def diagnostics(snap: BridgeSnapshot) -> None:
    live = watched.is_active() and snap.state in ONGOING_STATES  # snap is fresh: no second snapshot
    settings = watched.settings  # the settings of that call (the sidebar may have changed since)
    backend, model = settings.backend, settings.model
    if live:
        st.caption("The conversation is running: these figures update every second.")
    else:
        st.caption(f"Figures from {watched.ended_caption} (it has ended).")
    render_connection(snap, backend=backend, model=model, live=live)
    render_error(snap, live=watched.is_active())
    if watched.external:
        st.caption("The client holds this call's media: the studio sees its events, not its WebRTC statistics.")
    else:
        st.subheader("WebRTC to the model")
        render_rtc(snap)
    st.subheader("Reconnects")
    render_reconnects(snap)
    st.subheader("Latency per turn")
    render_turns(snap, model=model, backend=backend)
    st.subheader("Tokens and cost")
    render_usage(snap, backend=backend, model=model)


diagnostics()
