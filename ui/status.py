"""The one-line status: engine, connection state, who is speaking."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from ui.format import activity_label, engine_label, state_label

if TYPE_CHECKING:
    from realtime.bridge import BridgeSnapshot
    from realtime.errors import BridgeError, ErrorKind

_STATE_COLOURS = {
    "connected": "green",
    "connecting": "orange",
    "failed": "red",
    "closed": "gray",
    "idle": "gray",
}
_ACTIVITY_COLOURS = {
    "listening": "blue",
    "user_speaking": "violet",
    "assistant_speaking": "green",
    "idle": "gray",
}


def render_status(backend: str, snapshot: BridgeSnapshot | None, *, live: bool) -> None:
    """`snapshot` is None before the first call."""
    state = snapshot.state if snapshot is not None else "idle"
    if snapshot is not None and not live and state in ("connecting", "connected"):
        state = "closed"
    parts = [
        f":blue-badge[Engine: {engine_label(backend)}]",
        f":{_STATE_COLOURS.get(state, 'gray')}-badge[{state_label(state)}]",
    ]
    if snapshot is not None and live and state == "connected":
        activity = snapshot.activity
        parts.append(f":{_ACTIVITY_COLOURS.get(activity, 'gray')}-badge[{activity_label(activity)}]")
    st.container(key="status").markdown(" ".join(parts))


def render_error(snapshot: BridgeSnapshot | None) -> None:
    """A bridge error (bad key, provider down, ...) as a clear message, never a traceback."""
    if snapshot is None or snapshot.error is None:
        return
    st.error(error_text(snapshot.error), icon=":material/error:")


_KIND_HINTS: dict[ErrorKind, str] = {
    "auth": "Fix the key in `.streamlit/secrets.toml` or the environment, reload the page, and press Start again.",
    "model": "Choose another model in the sidebar, then Stop and Start the conversation.",
    "rate_limit": "Wait a little, then Stop and Start the conversation (or check the account's limits).",
    "connection": "Check the network (outbound UDP to the provider must be allowed), then Stop and Start again.",
    "config": "Fix the setting named above in the sidebar, `.streamlit/secrets.toml` or the environment.",
}


def error_text(error: BridgeError) -> str:
    """The error's message and, for the kinds a user can fix, what to do about it."""
    hint = _KIND_HINTS.get(error.kind)
    return f"{error.message}\n\n{hint}" if hint else error.message
