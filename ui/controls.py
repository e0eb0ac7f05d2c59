"""Call controls in the call bar: send a frame now, interrupt, mute, push to talk."""

from __future__ import annotations

import streamlit as st

from ui.conversation import Conversation


def render_call_controls(conv: Conversation) -> None:
    bridge = conv.bridge
    live = bridge is not None
    c1, c2 = st.columns(2)
    with c1:
        send_frame = st.button(
            "Send frame",
            icon=":material/photo_camera:",
            disabled=not live or not conv.settings.camera.enabled,
            width="stretch",
            help="Show the assistant the current camera frame right away.",
        )
        if send_frame and bridge is not None:
            bridge.send_frame_now()
            st.toast("Camera frame sent to the assistant.", icon=":material/photo_camera:")
    with c2:
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
        end_turn = st.button(
            "Send what I said",
            icon=":material/keyboard_voice:",
            type="primary",
            disabled=not live,
            width="stretch",
            help="Push to talk: speak first, then press to get an answer.",
        )
        if end_turn and bridge is not None:
            bridge.commit_and_respond()
    if not live:
        st.caption("Press **Start conversation**; the buttons come alive once the call is connected.")
