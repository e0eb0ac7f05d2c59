"""The pages about this tab's latest call (Events, Diagnostics): find it, or say what the page would show."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from ui.conversation import Conversation, peek_conversation

if TYPE_CHECKING:
    from realtime.bridge import Bridge


def latest_call_or_stop(empty_hint: str, *, icon: str) -> tuple[Conversation, Bridge]:
    """This tab's conversation and its live or last bridge. Without one, the page shows `empty_hint`
    (what it will show once a call has started) and stops there."""
    conv = peek_conversation()
    bridge = conv.latest_bridge if conv is not None else None
    if conv is None or bridge is None:
        st.info(empty_hint, icon=icon)
        st.stop()
    return conv, bridge
