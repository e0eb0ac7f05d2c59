"""A server that stalls for seconds (a loaded machine, a long pause) does not end the user's call.

Chromium marks the call's peer connection "disconnected" when its checks go unanswered for some
seconds, and streamlit-webrtc's component stopped the call on that transient state (ui.leg_steady).
Here the studio's whole process is stopped mid-call (SIGSTOP) for STALL_S, as a machine that cannot
keep up would stall it; the tab must see "disconnected", keep its call, and get its next reply."""

from __future__ import annotations

import os
import signal
import time

import pytest
from playwright.sync_api import expect

from tests.browser.driver import (
    CALL_UP,
    STOP,
    component_frame,
    open_app,
    screenshot,
    start_call,
    status,
    stop_call,
    type_message,
    wait_assistant_text,
)
from tests.browser.harness import VIEWPORT, clean_env, start_streamlit

pytestmark = pytest.mark.browser

STALL_S = 9.0  # Chromium went "disconnected" 5.6 s into a stall, and "connected" 0.7 s after it

# Every RTCPeerConnection of the page and its frames, and the states each went through.
RECORD_STATES = """
(() => {
  const Original = window.RTCPeerConnection;
  if (!Original || Original.__statesRecorded) return;
  window.__peerStates = [];
  function Recorded(...args) {
    const pc = new Original(...args);
    pc.addEventListener('connectionstatechange', () => window.__peerStates.push(pc.connectionState));
    return pc;
  }
  Recorded.prototype = Original.prototype;
  Object.setPrototypeOf(Recorded, Original);
  Recorded.__statesRecorded = true;
  window.RTCPeerConnection = Recorded;
})();
"""


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    db = tmp_path_factory.mktemp("history") / "realtime-studio.db"
    server = start_streamlit("local-steady", clean_env(REALTIME_HISTORY_DB=str(db)))
    yield server
    server.stop()


def _states(page) -> list[str]:
    return component_frame(page).locator(":root").evaluate("() => window.__peerStates || []")


def test_a_stalled_server_keeps_the_call_and_answers_after(studio, silent_browser):
    context = silent_browser.new_context(viewport=VIEWPORT)
    context.add_init_script(RECORD_STATES)
    page = context.new_page()
    try:
        open_app(page, studio.url)
        start_call(page)
        type_message(page, "echo upper before the stall")
        wait_assistant_text(page, "BEFORE THE STALL")

        os.kill(studio.process.pid, signal.SIGSTOP)
        try:
            time.sleep(STALL_S)
        finally:
            os.kill(studio.process.pid, signal.SIGCONT)
        deadline = time.monotonic() + 15
        while "disconnected" not in _states(page) and time.monotonic() < deadline:
            page.wait_for_timeout(250)
        assert "disconnected" in _states(page), _states(page)  # the stall was one the tab noticed

        page.wait_for_timeout(3000)
        assert _states(page)[-1] == "connected", _states(page)  # and it came back by itself
        expect(component_frame(page).get_by_role("button", name=STOP)).to_be_visible()
        expect(status(page)).to_contain_text(CALL_UP)
        type_message(page, "echo upper after the stall")
        wait_assistant_text(page, "AFTER THE STALL")
        screenshot(page, "steady-after-stall")
        stop_call(page)
    finally:
        context.close()
