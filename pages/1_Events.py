"""Events: a conversation event by event (what was sent and what the model sent back): this tab's, or a call
placed through the studio's API."""

from __future__ import annotations

import json
from collections.abc import Sequence

import streamlit as st

from realtime.eventlog import LoggedEvent
from ui import transcript_view
from ui.events_view import DIRECTION_FILTERS, filter_events, is_delta, render_event_list
from ui.latest_call import watched_call_or_stop
from ui.live import live_fragment

st.title("Events")

watched = watched_call_or_stop(
    "No conversation in this tab yet. Press **Start conversation** to begin one: every event the app "
    "sends to the model (→ sent), every event it receives (← received) and what a scenario's agents do "
    "(◆ agent) is listed here, newest first, with its time, size and full JSON. Audio and image data are "
    "shortened so the log stays readable.",
    icon=":material/list_alt:",
)

running = watched.is_running()
if running:
    st.caption("The conversation is running: new events appear as they happen.")
else:
    st.caption(f"The log of {watched.ended_caption} (it has ended).")

log = watched.events
c1, c2, c3, c4 = st.columns([2.6, 2.3, 1.1, 1.4], vertical_alignment="bottom")
types = c1.multiselect("Event types", log.types(), placeholder="All types", key="ev_types")
direction = (
    c2.segmented_control(
        "Direction",
        list(DIRECTION_FILTERS),
        default="all",
        key="ev_dir",
        format_func=DIRECTION_FILTERS.__getitem__,
        help="◆ Agents: what a scenario's agents did (handoffs, guardrails, tools and approvals).",
    )
    or "all"
)
limit = c3.number_input("Show at most", 10, 500, 100, step=10, key="ev_limit")
with c4:
    hide_deltas = st.toggle(
        "Hide deltas",
        value=True,
        key="ev_hide_deltas",
        help="Hide the many small *.delta events (pieces of text, transcript and audio). "
        "Choosing a delta type above shows it anyway.",
    )
    paused = st.toggle("Pause", key="ev_pause", help="Freeze the list to read it; new events are kept.")


def _log_json(events: Sequence[LoggedEvent]) -> str:
    return json.dumps(
        [{"time": e.time, "direction": e.direction, **dict(e.payload)} for e in events], indent=1, default=str
    )


@live_fragment("events-live", run_every=None if paused or not running else 1.0)
def event_list() -> None:
    events = log.snapshot()
    if not events:
        st.info("No events yet: they appear as soon as the call connects.", icon=":material/hourglass_empty:")
        return
    shown = filter_events(events, types=types, direction=direction, limit=int(limit), hide_deltas=hide_deltas)
    hidden = 0 if types else sum(1 for e in events if is_delta(e.type))
    note = f" · {hidden:,} streaming pieces hidden" if hide_deltas and hidden else ""
    left, right = st.columns([4, 1], vertical_alignment="center")
    left.caption(
        f"{len(events):,} events in this conversation · showing the newest {len(shown):,}{note}"
        + (" · paused" if paused else "")
    )
    right.download_button(
        "Download log",
        lambda: _log_json(log.snapshot()),  # built only when clicked
        file_name="realtime-events.json",
        mime="application/json",
        icon=":material/download:",
        width="stretch",
        help="Every event held for this conversation, as JSON (audio and image data shortened).",
    )
    if not shown:
        st.info("No event matches these filters yet.", icon=":material/filter_alt_off:")
        return
    render_event_list(shown)


if watched.external:  # this tab's transcript is on the Conversation page; an API call's is here

    @live_fragment("api-transcript", run_every=None if paused or not running else 1.0)
    def api_transcript() -> None:
        snap = watched.read()
        with st.expander(f"Transcript ({len(snap.transcript)} items)", expanded=True, icon=":material/forum:"):
            sources = {i.item_id: i.source for i in snap.sent_images}
            transcript_view.render_transcript(
                snap.transcript, live=running, failed=snap.state == "failed", image_sources=sources
            )

    api_transcript()

event_list()
