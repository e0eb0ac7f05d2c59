"""The event inspector: this conversation's client/server events with filters and JSON expanders."""

from __future__ import annotations

import datetime as dt
from typing import Any, Sequence

import streamlit as st

DIRECTION_LABELS = {"client": "→ sent", "server": "← received"}


def filter_events(events: Sequence[Any], *, types: Sequence[str], direction: str, limit: int) -> list[Any]:
    """Newest first, only the chosen types (all when empty) and direction ("all", "client", "server")."""
    wanted = set(types)
    out = [
        e for e in events
        if (not wanted or e.type in wanted) and (direction == "all" or e.direction == direction)
    ]
    out.reverse()
    return out[:limit]


def event_label(event: Any) -> str:
    t = dt.datetime.fromtimestamp(event.time).strftime("%H:%M:%S.%f")[:-3]
    return f"{t} · {DIRECTION_LABELS.get(event.direction, event.direction)} · {event.type} · {event.size_bytes:,} B"


def render_event_list(events: Sequence[Any]) -> None:
    for event in events:
        with st.expander(event_label(event)):
            st.json(dict(event.payload), expanded=True)
