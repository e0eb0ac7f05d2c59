"""Call controls in the call bar: send a frame now, share the screen, interrupt, mute, push to talk;
Reconnect or Resume a call that is waiting for the user. What to offer is decided by pure functions of a
snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import streamlit as st

from ui.conversation import Conversation
from ui.screen_share import render_screen_share
from ui.status import can_reconnect

if TYPE_CHECKING:
    from realtime.bridge import BridgeSnapshot

QUEUED_NOTE = "Queued: it goes out once the call is back."
Delivery = Literal["send", "queue", "refuse"]


@dataclass(frozen=True)
class Recovery:
    """The button that brings a call back (both call `bridge.reconnect()`)."""

    label: str
    icon: str
    key: str
    help: str


RECONNECT = Recovery(
    "Reconnect",
    ":material/sync:",
    "reconnect",
    "The connection could not be restored by itself: try again, keeping the conversation.",
)
RESUME = Recovery(
    "Resume",
    ":material/play_arrow:",
    "resume",
    "Open a new call and carry on the conversation (speaking or typing does too).",
)


def recovery(snapshot: BridgeSnapshot | None, *, live: bool) -> Recovery | None:
    """Reconnect when the attempts ran out, Resume when the call was paused to save cost, else nothing."""
    if can_reconnect(snapshot, live=live):
        return RECONNECT
    if live and snapshot is not None and snapshot.state == "paused":
        return RESUME
    return None


def chat_delivery(snapshot: BridgeSnapshot, *, live: bool = True) -> Delivery:
    """What becomes of a typed message: sent (or queued until the channel opens while connecting),
    queued until the call is back (the bridge holds it, and a message wakes a paused call), or refused
    when the call is over and nothing will send it."""
    state = snapshot.state
    if state in ("reconnecting", "paused") or can_reconnect(snapshot, live=live):
        return "queue"
    if state in ("closed", "failed"):
        return "refuse"
    return "send"


def render_recovery(conv: Conversation, snapshot: BridgeSnapshot | None) -> None:
    """The Reconnect or Resume button. Drawn by the call bar's polling status line, so it appears as
    soon as the call needs it; `on_click` runs before the rerun draws anything."""
    bridge = conv.bridge
    action = recovery(snapshot, live=bridge is not None)
    if action is None or bridge is None:
        return
    st.button(
        action.label,
        key=action.key,
        icon=action.icon,
        type="primary",
        width="stretch",
        help=action.help,
        on_click=bridge.reconnect,
    )


def _send_frame_now(conv: Conversation) -> None:
    bridge = conv.bridge
    if bridge is not None:
        bridge.send_frame_now()
        st.toast("Camera frame sent to the assistant.", icon=":material/photo_camera:")


def _end_turn(conv: Conversation) -> None:
    bridge = conv.bridge
    if bridge is not None:
        bridge.commit_and_respond()


def render_call_controls(conv: Conversation) -> None:
    bridge = conv.bridge
    live = bridge is not None
    c1, c2, c3 = st.columns(3)
    with c1:
        # Buttons act in on_click: a click can reach the server in a live part's rerun, which never
        # reaches the button's line (see ui.studio._on_chat_submit).
        st.button(
            "Send frame",
            icon=":material/photo_camera:",
            disabled=not live or not conv.settings.camera.enabled,
            width="stretch",
            help="Show the assistant the current camera frame right away.",
            on_click=_send_frame_now,
            args=(conv,),
        )
    with c2:
        render_screen_share(conv)  # its frames go to a route beside the app: they rerun nothing
    with c3:
        # on_click runs before the rerun draws anything: the voice stops without waiting for the page
        st.button(
            "Interrupt",
            icon=":material/stop_circle:",
            disabled=not live,
            width="stretch",
            help="Stop the assistant's current answer and drop the audio still queued.",
            on_click=conv.interrupt,
        )
    muted = st.toggle("Mute mic", key="mute_mic", disabled=not live)
    if bridge is not None:
        bridge.set_muted(bool(muted))

    if conv.settings.turn_detection.mode == "none":
        st.button(
            "Send what I said",
            icon=":material/keyboard_voice:",
            type="primary",
            disabled=not live,
            width="stretch",
            help="Push to talk: speak first, then press to get an answer.",
            on_click=_end_turn,
            args=(conv,),
        )
    if not live:
        st.caption("Press **Start conversation**; the buttons come alive once the call is connected.")
