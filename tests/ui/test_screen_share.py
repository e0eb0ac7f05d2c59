"""ui/screen_share.py: reading the component's state, the refusal's words, and what a run does with them.
(The frames themselves go to `api.screen_intake`, tested in tests/api.)"""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from ui.screen_share import ShareStatus, parse_status, refusal_message


@pytest.mark.parametrize(
    ("value", "status"),
    [
        (None, ShareStatus()),
        ("sharing", ShareStatus()),
        ({}, ShareStatus()),
        ({"sharing": True, "error": None}, ShareStatus(sharing=True)),
        ({"sharing": "yes"}, ShareStatus()),
        ({"sharing": False, "error": "NotAllowedError"}, ShareStatus(error="NotAllowedError")),
        ({"sharing": False, "error": ""}, ShareStatus()),
        ({"sharing": False, "error": 3}, ShareStatus()),
        ({"error": "x" * 500}, ShareStatus(error="x" * 80)),
    ],
)
def test_the_component_state_is_read_into_a_status(value, status):
    assert parse_status(value) == status


@pytest.mark.parametrize(
    ("error", "words"),
    [
        ("NotAllowedError", "not allowed"),
        ("Unsupported", "cannot share a screen"),
        ("NotFoundError", "no screen or window"),
        ("NotReadableError", "could not be captured"),
        ("TypeError", "Screen sharing failed (TypeError)"),
    ],
)
def test_a_refusal_is_one_clear_sentence_and_says_the_camera_stays(error, words):
    message = refusal_message(error)
    assert words in message and message.endswith("The camera stays the image source.")


class _Conv:
    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []
        self.stops = 0

    def on_screen_frame(self, frame: np.ndarray) -> None:
        self.frames.append(frame)

    def stop_screen_share(self) -> None:
        self.stops += 1


def apply_script(conv, status):
    import streamlit as st

    from ui.screen_share import apply

    st.session_state["shown"] = apply(conv, status)


def run_apply(status: ShareStatus) -> tuple[_Conv, AppTest]:
    conv = _Conv()
    at = AppTest.from_function(apply_script, kwargs={"conv": conv, "status": status})
    at.run(timeout=30)
    assert not at.exception, [e.message for e in at.exception]
    return conv, at


def test_sharing_keeps_the_screen_as_the_source():
    conv, at = run_apply(ShareStatus(sharing=True))
    assert conv.stops == 0 and not at.warning


def test_not_sharing_returns_to_the_camera():
    conv, at = run_apply(ShareStatus())
    assert conv.stops == 1 and not at.warning


def test_a_refusal_is_shown_as_a_warning():
    conv, at = run_apply(ShareStatus(error="NotAllowedError"))
    assert conv.stops == 1
    assert [w.value for w in at.warning] == [refusal_message("NotAllowedError")]
    assert at.session_state["shown"] == refusal_message("NotAllowedError")


def share_script(live):
    import streamlit as st

    from ui.screen_share import render_screen_share

    class Conv:  # the bridge and the two forwarders are all the control uses of a Conversation
        bridge = object() if live else None

        def on_screen_frame(self, frame) -> None:
            pass

        def stop_screen_share(self) -> None:
            pass

    conv = st.session_state.setdefault("conv", Conv())
    render_screen_share(conv)


def test_without_a_call_the_control_is_a_disabled_button():
    at = AppTest.from_function(share_script, kwargs={"live": False})
    at.run(timeout=30)
    assert not at.exception, [e.message for e in at.exception]
    assert [(b.label, b.disabled) for b in at.button] == [("Share screen", True)]


def test_during_a_call_the_component_is_mounted_without_errors():
    at = AppTest.from_function(share_script, kwargs={"live": True})
    at.run(timeout=30)
    assert not at.exception, [e.message for e in at.exception]
    assert not at.button  # the browser draws the component's own button
    token = at.session_state["screen_share_token"][1]  # the frame route's token, made once per session
    at.run(timeout=30)
    assert at.session_state["screen_share_token"][1] == token
