"""ui/status.py: what the call bar says about a call that is reconnecting, paused, or just came back."""

from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest

from realtime.bridge import BridgeSnapshot
from realtime.call_state import PAUSE_NOTE
from realtime.errors import BridgeError
from tests.ui.snapshots import GAVE_UP, gave_up, reconnecting, replaced, snapshot
from ui.status import (
    OVERLOADED,
    RECONNECT_HINT,
    Badge,
    Notice,
    call_bar_notice,
    can_reconnect,
    error_text,
    shown_state,
    state_badge,
)

NOW = 1_750_000_000.0


def _text(snap: BridgeSnapshot) -> str | None:
    notice = call_bar_notice(snap, NOW)
    return None if notice is None else notice.text


def test_reconnecting_says_which_attempt_and_why():
    assert call_bar_notice(reconnecting(2, 8), NOW) == Notice(
        "reconnecting", "Connection lost — reconnecting… (attempt 2 of 8)", "the realtime server ended the call"
    )
    assert _text(reconnecting(3, 0)) == "Connection lost — reconnecting… (attempt 3)"
    assert _text(reconnecting(0, 8)) == "Connection lost — reconnecting…"


def test_resuming_a_paused_call_is_not_called_a_lost_connection():
    notice = call_bar_notice(reconnecting(1, 8, reason="resumed"), NOW)
    assert notice == Notice("reconnecting", "Resuming the call… (attempt 1 of 8)")


def test_paused_says_how_to_resume():
    assert call_bar_notice(snapshot("paused"), NOW) == Notice("paused", PAUSE_NOTE)
    assert PAUSE_NOTE.startswith("Paused to save cost — speak, type or press Resume")


def test_the_latest_reconnect_is_told_for_a_minute():
    snap = snapshot("connected", replaced=(replaced("rollover", at=NOW - 500, took_s=0.012), replaced(at=NOW - 5)))
    assert call_bar_notice(snap, NOW) == Notice("replaced", "Reconnected in 1.4 s — 12 items restored")
    assert call_bar_notice(snap, NOW + 56) is None
    resumed = snapshot("connected", replaced=(replaced("resume", at=NOW, took_s=0.8, restored=3, cut=2),))
    assert _text(resumed) == "Resumed in 0.8 s — 3 items restored, 2 oldest left out"


def test_no_notice_for_a_plain_call_or_one_the_page_has_ended():
    assert call_bar_notice(None, NOW) is None
    assert call_bar_notice(snapshot("connected"), NOW) is None
    assert call_bar_notice(snapshot("connecting", replaced=(replaced(at=NOW),)), NOW) is None
    assert call_bar_notice(reconnecting(), NOW, live=False) is None


@pytest.mark.parametrize("state", ["connecting", "connected", "reconnecting", "paused"])
def test_a_call_the_page_has_ended_shows_as_ended(state):
    assert shown_state(snapshot(state), live=False) == "closed"
    assert shown_state(snapshot(state), live=True) == state
    assert shown_state(None, live=True) == "idle"
    assert shown_state(snapshot("failed"), live=False) == "failed"


LATE_LOOP = "the server's media loop ran late 40% of the last 5 s"


def test_the_badge_says_the_audio_is_choppy_while_a_connected_call_is_overloaded():
    assert OVERLOADED == "Audio is choppy: the server is overloaded"
    assert state_badge(snapshot("connected", overloaded=LATE_LOOP), live=True) == Badge("orange", OVERLOADED, LATE_LOOP)
    assert state_badge(snapshot("connected"), live=True) == Badge("green", "Connected")


@pytest.mark.parametrize("state", ["connecting", "reconnecting", "paused", "failed", "closed"])
def test_only_a_connected_call_is_called_choppy(state):
    badge = state_badge(snapshot(state, overloaded=LATE_LOOP), live=True)
    assert badge.text != OVERLOADED and badge.detail == ""


def test_a_call_the_page_has_ended_is_not_called_choppy():
    assert state_badge(snapshot("connected", overloaded=LATE_LOOP), live=False) == Badge("gray", "Call ended")
    assert state_badge(None, live=True) == Badge("gray", "Not connected")


def test_can_reconnect_only_a_running_call_whose_attempts_ran_out():
    assert can_reconnect(gave_up(), live=True)
    assert not can_reconnect(gave_up(), live=False)  # Stop was pressed: Start is the way on
    assert not can_reconnect(snapshot("failed", error=GAVE_UP), live=True)  # a fatal failure
    assert not can_reconnect(reconnecting(), live=True) and not can_reconnect(None, live=True)


def test_error_text_after_the_attempts_ran_out_says_press_reconnect():
    assert error_text(GAVE_UP, reconnectable=True) == (
        "Could not reconnect: the realtime server ended the call\n\nPress Reconnect to try again, or Stop."
    )
    assert "Stop and Start again" in error_text(GAVE_UP)  # after Stop, or a connect that never worked
    assert error_text(BridgeError("provider", "Could not reconnect: 500"), reconnectable=True).endswith(RECONNECT_HINT)
    busy = error_text(BridgeError("rate_limit", "Could not reconnect: slow down"), reconnectable=True)
    assert busy.endswith("Wait a little, then press Reconnect to try again, or Stop.")
    # a bad key fails every new call the same way: its fix comes first
    bad_key = error_text(BridgeError("auth", "Could not reconnect: bad key"), reconnectable=True)
    assert "Fix the key" in bad_key and "Reconnect to try" not in bad_key


def status_script(snap, live):
    from ui.status import render_error, render_status

    render_status("openai", snap, live=live)
    render_error(snap, live=live)


def _status(snap, live=True) -> AppTest:
    at = AppTest.from_function(status_script, kwargs={"snap": snap, "live": live})
    at.run(timeout=30)
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_status_line_while_reconnecting():
    at = _status(reconnecting(2, 8, reason="the_network *dropped*"))
    badges, attempt = at.markdown[0].value, at.markdown[1].value
    assert ":orange-badge[Reconnecting…]" in badges
    assert attempt == ":material/sync: Connection lost — reconnecting… (attempt 2 of 8)"
    assert [c.value for c in at.caption] == [r"the\_network \*dropped\*"]  # the reason, as text


def test_status_line_when_paused_and_after_a_reconnect():
    at = _status(snapshot("paused"))
    assert ":gray-badge[Paused]" in at.markdown[0].value
    assert at.markdown[1].value.endswith("Paused to save cost — speak, type or press Resume.")
    at = _status(snapshot("connected", replaced=(replaced(at=time.time()),)))
    assert ":green-badge[Connected]" in at.markdown[0].value
    assert [c.value for c in at.caption] == [":material/check_circle: Reconnected in 1.4 s — 12 items restored"]


def test_status_line_when_the_attempts_ran_out():
    at = _status(gave_up())
    assert ":red-badge[Connection failed]" in at.markdown[0].value
    (error,) = at.error
    assert error.value.endswith("Press Reconnect to try again, or Stop.")
    at = _status(reconnecting(), live=False)
    assert ":gray-badge[Call ended]" in at.markdown[0].value and len(at.markdown) == 1


def test_the_agent_speaking_now_is_a_badge_while_the_call_runs():
    from ui.status import agent_badge

    badge = agent_badge(snapshot("connected", agent="tech_support"), live=True)
    assert badge == ":violet-badge[:material/support_agent: Agent: Tech support]"
    assert agent_badge(snapshot("reconnecting", agent="billing"), live=True) is not None
    assert agent_badge(snapshot("connected"), live=True) is None  # the built-in assistant: no agents
    assert agent_badge(snapshot("connected", agent="billing"), live=False) is None  # the call has ended
    assert agent_badge(snapshot("closed", agent="billing"), live=True) is None
    assert agent_badge(None, live=True) is None


def test_status_line_when_the_audio_is_choppy_under_load():
    at = _status(snapshot("connected", activity="assistant_speaking", overloaded="the *voice* ran_out"))
    badges = at.markdown[0].value
    assert f":orange-badge[{OVERLOADED}]" in badges and "Connected" not in badges
    assert ":green-badge[Assistant speaking]" in badges  # who is speaking still shows
    assert [c.value for c in at.caption] == [r":material/graphic_eq: the \*voice\* ran\_out"]  # the reason, small
    at = _status(snapshot("connected", overloaded="the voice ran out"), live=False)
    assert ":gray-badge[Call ended]" in at.markdown[0].value and not at.caption


def test_status_line_names_the_agent():
    at = _status(snapshot("connected", scenario="front_desk", agent="billing"))
    assert "Agent: Billing" in at.markdown[0].value and ":green-badge[Connected]" in at.markdown[0].value
    assert "Agent:" not in _status(snapshot("connected")).markdown[0].value
