"""The call the Events, Diagnostics and Vision pages show: this tab's, or one placed through the API.

Without calls from other clients the pages show this tab's latest call, as before. Once the studio's API
has served calls, a "Call" select offers "This tab" and every API call (live ones first, then the recent
ended ones); the choice is kept while the user moves between these pages."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import streamlit as st

from realtime.external_calls import external_calls
from ui.conversation import peek_conversation
from ui.status import ONGOING_STATES

if TYPE_CHECKING:
    from realtime.bridge import BridgeSnapshot
    from realtime.eventlog import EventLog
    from realtime.settings import Settings
    from realtime.sideband_call import SidebandCall

THIS_TAB = "this-tab"
_CHOSEN = "watched_call"  # session key: the id the user chose (the select's own state is per page)


@dataclass(frozen=True)
class WatchedCall:
    """What a page reads of the call it shows."""

    label: str
    events: EventLog
    read: Callable[[], BridgeSnapshot]
    settings: Settings
    is_active: Callable[[], bool]  # the call is this tab's running conversation, or a live API call
    external: bool = False

    def is_running(self) -> bool:
        """Active and not ended by itself (not failed or closed): its figures still change."""
        return self.is_active() and self.read().state in ONGOING_STATES

    @property
    def ended_caption(self) -> str:
        return "this API call" if self.external else "this tab's last conversation"


def _external_label(call: SidebandCall) -> str:
    started = time.strftime("%H:%M:%S", time.localtime(call.started_at))
    state = "live" if call.live else "ended"
    return f"API client · {call.call_id[:14]} · {started} · {state}"


def _is_live(call: SidebandCall) -> Callable[[], bool]:
    return lambda: call.live


def watched_call_or_stop(empty_hint: str, *, icon: str) -> WatchedCall:
    """The call to show. Without any, the page shows `empty_hint` and stops there."""
    conv = peek_conversation()
    bridge = conv.latest_bridge if conv is not None else None
    options: dict[str, WatchedCall] = {}
    if conv is not None and bridge is not None:
        options[THIS_TAB] = WatchedCall(
            "This tab",
            bridge.events,
            bridge.snapshot,
            bridge.settings,
            lambda: conv.active,
        )
    api_calls = sorted(external_calls().all(), key=lambda c: not c.live)  # live first, then newest
    for call in api_calls:
        options[call.call_id] = WatchedCall(
            _external_label(call), call.events, call.snapshot, call.settings, _is_live(call), external=True
        )
    if not options:
        st.info(empty_hint, icon=icon)
        st.stop()
    if not api_calls:
        return options[THIS_TAB]
    ids = list(options)
    chosen = st.session_state.get(_CHOSEN)
    if chosen not in options:
        live_api = [c.call_id for c in api_calls if c.live]
        chosen = THIS_TAB if THIS_TAB in options and (conv is not None and conv.active) else (live_api or ids)[0]
    picked = st.selectbox(
        "Call",
        ids,
        index=ids.index(chosen),
        format_func=lambda i: options[i].label,
        help="This tab's conversation, or a call another client placed through the studio's API.",
    )
    st.session_state[_CHOSEN] = picked
    return options[picked]
