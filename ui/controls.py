"""Call controls in the call bar: send a frame now, interrupt, mute, push to talk."""

from __future__ import annotations

import streamlit as st

from ui.conversation import Conversation


def render_call_controls(conv: Conversation) -> None:
    bridge = conv.bridge
    live = bridge is not None
    c1, c2 = st.columns(2)
    with c1:
        if st.button(
            "Send frame",
            icon=":material/photo_camera:",
            disabled=not live or not conv.settings.camera.enabled,
            width="stretch",
            help="Show the assistant the current camera frame right away.",
        ):
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
    if live:
        bridge.set_muted(bool(muted))

    if conv.settings.turn_detection.mode == "none":
        commit = getattr(bridge, "commit_and_respond", None)
        if st.button(
            "Send what I said",
            icon=":material/keyboard_voice:",
            type="primary",
            disabled=commit is None,
            width="stretch",
            help="Push to talk: speak first, then press to get an answer.",
        ):
            commit()
        if live and commit is None:
            st.caption("Push to talk needs a newer bridge (commit and respond); switch turn detection to VAD for now.")
    if not live:
        st.caption("Press **Start conversation**; the buttons come alive once the call is connected.")
