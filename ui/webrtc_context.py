"""Keep streamlit-webrtc's per-key context (its worker, hence the browser's peer) across reruns.

streamlit-webrtc (0.79) resets a component's context, stopping its worker and so hanging up the
browser leg, when the session's script-run counter moved by more than one since the component was
last drawn: its sign of a multipage app that stopped drawing it and drew it again. The counter is
bumped on the event loop when a run's "finished" message is sent, while Streamlit's script thread
starts a queued rerun at once, so under load a run can draw the component before the previous
run's bump and the next run then sees a jump of two: the call ended by itself mid-conversation
(seen in CI with two tabs on a busy 2-core machine).

This app draws the component in every full run (the call bar is above the page), so the check
protects nothing here; a real unmount closes the browser's peer, and the library stops the worker
when the frontend says it is neither playing nor signalling.
"""

from __future__ import annotations

import streamlit as st

_LAST_RENDERED = "_last_rendered_run_count"  # streamlit_webrtc.component.WebRtcStreamerContext


def keep_context_across_reruns(key: str) -> None:
    """Call just before ``webrtc_streamer(key=key, ...)`` in every run."""
    context = st.session_state.get(key)
    if context is not None and hasattr(context, _LAST_RENDERED):
        setattr(context, _LAST_RENDERED, None)
