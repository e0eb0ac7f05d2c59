"""The one-line status: engine, connection state, who is speaking."""

from __future__ import annotations

from typing import Any

import streamlit as st

from ui.format import activity_label, engine_label, state_label

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


def render_status(backend: str, snapshot: Any, *, live: bool) -> None:
    """`snapshot` is the bridge's BridgeSnapshot, or None before the first call."""
    state = snapshot.state if (snapshot is not None) else "idle"
    if snapshot is not None and not live and state in ("connecting", "connected"):
        state = "closed"
    parts = [
        f":blue-badge[Engine: {engine_label(backend)}]",
        f":{_STATE_COLOURS.get(state, 'gray')}-badge[{state_label(state)}]",
    ]
    if live and state == "connected":
        activity = snapshot.activity
        parts.append(f":{_ACTIVITY_COLOURS.get(activity, 'gray')}-badge[{activity_label(activity)}]")
    st.container(key="status").markdown(" ".join(parts))


def render_error(snapshot: Any) -> None:
    """A bridge error (bad key, provider down, ...) as a clear message, never a traceback."""
    error = getattr(snapshot, "error", None) if snapshot is not None else None
    if error is None:
        return
    st.error(error_text(error), icon=":material/error:")


_KIND_HINTS = {
    "auth": "Fix the key in `.streamlit/secrets.toml` or the environment, reload the page, and press Start again.",
    "model": "Choose another model in the sidebar, then Stop and Start the conversation.",
    "rate_limit": "Wait a little, then Stop and Start the conversation (or check the account's limits).",
    "connection": "Check the network (outbound UDP to the provider must be allowed), then Stop and Start again.",
    "config": "Fix the setting named above in the sidebar, `.streamlit/secrets.toml` or the environment.",
}


def error_text(error: Any) -> str:
    """The error's message and, for the kinds a user can fix, what to do about it."""
    message = getattr(error, "message", None) or str(error)
    hint = _KIND_HINTS.get(getattr(error, "kind", None) or "")
    return f"{message}\n\n{hint}" if hint else message
