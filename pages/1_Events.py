"""Events: this tab's conversation, event by event (what the app sent and what the model sent back)."""

from __future__ import annotations

import streamlit as st

from ui.conversation import peek_conversation
from ui.events_view import filter_events, render_event_list

st.title("Events")

conv = peek_conversation()
bridge = conv.latest_bridge if conv is not None else None

if bridge is None:
    st.info(
        "No conversation in this tab yet. Start one on the **Conversation** page: every event the app "
        "sends to the model (→ sent) and every event it receives (← received) is listed here, newest "
        "first, with its time, size and full JSON. Audio and image data are shortened so the log stays readable.",
        icon=":material/list_alt:",
    )
    st.stop()

if conv.active:
    st.caption("The conversation is running: new events appear as they happen.")
else:
    st.caption("The log of this tab's last conversation (it has ended).")

log = bridge.events
c1, c2, c3, c4 = st.columns([3, 2, 1, 1])
types = c1.multiselect("Event types", log.types(), placeholder="All types", key="ev_types")
direction = c2.segmented_control(
    "Direction", ["all", "client", "server"], default="all", key="ev_dir",
    format_func={"all": "All", "client": "→ Sent", "server": "← Received"}.get,
) or "all"
limit = c3.number_input("Show", 10, 500, 100, step=10, key="ev_limit")
paused = c4.toggle("Pause", key="ev_pause", help="Freeze the list to read it; new events are kept.")


@st.fragment(run_every=None if paused or not conv.active else 1.0)
def event_list() -> None:
    events = log.snapshot()
    shown = filter_events(events, types=types, direction=direction, limit=int(limit))
    st.caption(f"{len(events):,} events in this conversation · showing {len(shown):,}")
    if not shown:
        st.info("No event matches these filters yet.")
        return
    render_event_list(shown)


event_list()
