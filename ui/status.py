"""The one-line status: engine, connection state, who is speaking; and what the call bar says about a
call that is reconnecting, paused or was just replaced, or whose audio breaks up under load.

The decisions are pure functions of a snapshot (tested without Streamlit); the `render_*` functions draw them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import streamlit as st

from realtime.call_state import PAUSE_NOTE, RESUMED
from scenarios import agent_label
from ui.format import activity_label, engine_label, escape_markdown, state_label

if TYPE_CHECKING:
    from realtime.bridge import BridgeSnapshot
    from realtime.call_state import State
    from realtime.errors import BridgeError, ErrorKind

# States in which the call is still going (or coming back by itself): pages keep polling, and a page
# whose conversation has ended without the bridge saying so shows them as "Call ended".
ONGOING_STATES: frozenset[State] = frozenset({"connecting", "connected", "reconnecting", "paused"})
RECENT_REPLACE_S = 60.0  # how long the call bar keeps saying "Reconnected in …"
OVERLOADED = "Audio is choppy: the server is overloaded"

_STATE_COLOURS: dict[State, str] = {
    "connected": "green",
    "connecting": "orange",
    "reconnecting": "orange",
    "paused": "gray",
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
NoticeKind = Literal["reconnecting", "paused", "replaced"]
_NOTICE_ICONS: dict[NoticeKind, str] = {
    "reconnecting": ":material/sync:",
    "paused": ":material/pause_circle:",
    "replaced": ":material/check_circle:",
}


@dataclass(frozen=True)
class Badge:
    """The call's state badge: `text` in `colour`, and `detail` (why) in small print under it."""

    colour: str
    text: str
    detail: str = ""

    @property
    def markdown(self) -> str:
        return f":{self.colour}-badge[{self.text}]"


@dataclass(frozen=True)
class Notice:
    """A line under the status badges: `text`, and `detail` (why) in small print."""

    kind: NoticeKind
    text: str
    detail: str = ""


def shown_state(snapshot: BridgeSnapshot | None, *, live: bool) -> State:
    """The state to show: a call the page has ended (`live` False) is "closed" even when its bridge
    never got as far as saying so."""
    if snapshot is None:
        return "idle"
    if not live and snapshot.state in ONGOING_STATES:
        return "closed"
    return snapshot.state


def state_badge(snapshot: BridgeSnapshot | None, *, live: bool) -> Badge:
    """The state badge: the shown state, except that a connected call whose audio is degraded under
    load says so (`BridgeSnapshot.overloaded`, the reason, goes in small print)."""
    state = shown_state(snapshot, live=live)
    if snapshot is not None and live and state == "connected" and snapshot.overloaded:
        return Badge("orange", OVERLOADED, snapshot.overloaded)
    return Badge(_STATE_COLOURS.get(state, "gray"), state_label(state))


def can_reconnect(snapshot: BridgeSnapshot | None, *, live: bool) -> bool:
    """Reconnect attempts ran out on a call that is still running: the user may press Reconnect."""
    return live and snapshot is not None and snapshot.state == "failed" and snapshot.reconnectable


def call_bar_notice(snapshot: BridgeSnapshot | None, now: float, *, live: bool = True) -> Notice | None:
    """What the call bar says beside the badges: reconnecting (which attempt, and why), paused, or,
    for a minute after it happened, how the latest reconnect, resume or rollover went."""
    if snapshot is None or not live:
        return None
    state = snapshot.state
    if state == "reconnecting":
        of = f" of {snapshot.max_attempts}" if snapshot.max_attempts else ""
        attempt = f" (attempt {snapshot.attempt}{of})" if snapshot.attempt else ""
        if snapshot.lost_reason == RESUMED:
            return Notice("reconnecting", f"Resuming the call…{attempt}")
        return Notice("reconnecting", f"Connection lost — reconnecting…{attempt}", snapshot.lost_reason)
    if state == "paused":
        return Notice("paused", PAUSE_NOTE)
    if state == "connected" and snapshot.replaced:
        latest = snapshot.replaced[-1]
        if now - latest.at < RECENT_REPLACE_S:
            return Notice("replaced", latest.note)
    return None


def agent_badge(snapshot: BridgeSnapshot | None, *, live: bool) -> str | None:
    """The badge naming the scenario's agent speaking now ("Agent: Billing"), while a call runs."""
    if snapshot is None or not live or not snapshot.agent or shown_state(snapshot, live=live) not in ONGOING_STATES:
        return None
    return f":violet-badge[:material/support_agent: Agent: {escape_markdown(agent_label(snapshot.agent))}]"


def render_status(backend: str, snapshot: BridgeSnapshot | None, *, live: bool) -> None:
    """`snapshot` is None before the first call."""
    state = shown_state(snapshot, live=live)
    badge = state_badge(snapshot, live=live)
    parts = [f":blue-badge[Engine: {engine_label(backend)}]", badge.markdown]
    if snapshot is not None and live and state == "connected":
        activity = snapshot.activity
        parts.append(f":{_ACTIVITY_COLOURS.get(activity, 'gray')}-badge[{activity_label(activity)}]")
    agent = agent_badge(snapshot, live=live)
    if agent is not None:
        parts.append(agent)
    with st.container(key="status"):
        st.markdown(" ".join(parts))
        if badge.detail:
            st.caption(f":material/graphic_eq: {escape_markdown(badge.detail)}")
        notice = call_bar_notice(snapshot, time.time(), live=live)
        if notice is not None:
            line = f"{_NOTICE_ICONS[notice.kind]} {escape_markdown(notice.text)}"
            if notice.kind == "replaced":  # good news, said quietly
                st.caption(line)
            else:
                st.markdown(line)
            if notice.detail:
                st.caption(escape_markdown(notice.detail))


def render_error(snapshot: BridgeSnapshot | None, *, live: bool) -> None:
    """A bridge error (bad key, provider down, ...) as a clear message, never a traceback."""
    if snapshot is None or snapshot.error is None:
        return
    st.error(error_text(snapshot.error, reconnectable=can_reconnect(snapshot, live=live)), icon=":material/error:")


_KIND_HINTS: dict[ErrorKind, str] = {
    "auth": "Fix the key in `.streamlit/secrets.toml` or the environment, reload the page, and press Start again.",
    "model": "Choose another model in the sidebar, then Stop and Start the conversation.",
    "rate_limit": "Wait a little, then Stop and Start the conversation (or check the account's limits).",
    "connection": "Check the network (outbound UDP to the provider must be allowed), then Stop and Start again.",
    "config": "Fix the setting named above in the sidebar, `.streamlit/secrets.toml` or the environment.",
}
RECONNECT_HINT = "Press Reconnect to try again, or Stop."
# After the reconnect attempts ran out the call waits for the user: for the kinds that pass by
# themselves, pressing Reconnect is the way on (a bad key, model or setting keeps its hint: fix it first).
_RECONNECT_HINTS: dict[ErrorKind, str] = {
    "connection": RECONNECT_HINT,
    "provider": RECONNECT_HINT,
    "media": RECONNECT_HINT,
    "rate_limit": "Wait a little, then press Reconnect to try again, or Stop.",
}


def error_text(error: BridgeError, *, reconnectable: bool = False) -> str:
    """The error's message and, for the kinds a user can fix, what to do about it; `reconnectable`:
    the call waits for Reconnect or Stop."""
    hint = (_RECONNECT_HINTS.get(error.kind) if reconnectable else None) or _KIND_HINTS.get(error.kind)
    return f"{error.message}\n\n{hint}" if hint else error.message
