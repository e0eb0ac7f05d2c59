"""ui/controls.py: Reconnect and Resume, and what becomes of a typed message while the call is away."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from streamlit.testing.v1 import AppTest

from realtime.errors import BridgeError
from tests.ui.snapshots import gave_up, reconnecting, snapshot
from ui.controls import RECONNECT, RESUME, chat_delivery, recovery


def test_reconnect_when_the_attempts_ran_out_resume_when_paused():
    assert recovery(gave_up(), live=True) == RECONNECT and RECONNECT.label == "Reconnect"
    assert RECONNECT.icon == ":material/sync:"
    assert recovery(snapshot("paused"), live=True) == RESUME and RESUME.label == "Resume"
    assert recovery(snapshot("failed", error=BridgeError("auth", "bad key")), live=True) is None
    assert recovery(reconnecting(), live=True) is None and recovery(snapshot("connected"), live=True) is None
    assert recovery(gave_up(), live=False) is None and recovery(snapshot("paused"), live=False) is None
    assert recovery(None, live=True) is None


@pytest.mark.parametrize(
    ("snap", "delivery"),
    [
        (snapshot("connecting"), "send"),
        (snapshot("connected"), "send"),
        (reconnecting(), "queue"),
        (snapshot("paused"), "queue"),  # and the message wakes the call
        (gave_up(), "queue"),
        (snapshot("failed", error=BridgeError("auth", "bad key")), "refuse"),
        (snapshot("closed"), "refuse"),
    ],
)
def test_what_becomes_of_a_typed_message(snap, delivery):
    assert chat_delivery(snap) == delivery


def recovery_script(conv, snap):
    from ui.controls import render_recovery

    render_recovery(conv, snap)


class _Bridge:
    def __init__(self) -> None:
        self.reconnects = 0

    def reconnect(self) -> None:
        self.reconnects += 1


@pytest.mark.parametrize(("snap", "label"), [(gave_up(), "Reconnect"), (snapshot("paused"), "Resume")])
def test_the_button_calls_reconnect(snap, label):
    bridge = _Bridge()
    at = AppTest.from_function(recovery_script, kwargs={"conv": SimpleNamespace(bridge=bridge), "snap": snap})
    at.run(timeout=30)
    assert not at.exception, [e.message for e in at.exception]
    (button,) = at.button
    assert button.label == label and button.proto.type == "primary"
    button.click().run(timeout=30)
    assert bridge.reconnects == 1


def test_no_button_for_a_call_that_has_ended():
    at = AppTest.from_function(recovery_script, kwargs={"conv": SimpleNamespace(bridge=None), "snap": gave_up()})
    at.run(timeout=30)
    assert not at.exception and not at.button
