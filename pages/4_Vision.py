"""Vision: every image this tab's conversation showed the model (camera, chat box), newest first."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from ui.latest_call import watched_call_or_stop
from ui.live import live_snapshot
from ui.vision_view import render_images

if TYPE_CHECKING:
    from realtime.bridge import BridgeSnapshot

st.title("Vision")

watched = watched_call_or_stop(
    "No conversation in this tab yet. Once you press **Start conversation**, this page shows every image "
    "sent to the model (camera frames and images from the chat box): when, from where, its size in pixels and "
    "bytes, its detail level, whether it is still in the conversation, and the image tokens billed.",
    icon=":material/image_search:",
)


@live_snapshot("vision-live", run_every=2.0 if watched.is_running() else None, read=watched.read)
def vision(snap: BridgeSnapshot) -> None:
    render_images(snap.sent_images, snap.usage)


vision()
