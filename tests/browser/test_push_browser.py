"""The page's live parts update by push: a connected, idle call asks the server for no reruns, and a
reply still shows up in the transcript and the call bar at once.

Before `ui.pulse`, the status line (every 0.5 s), the transcript (0.4 s) and the sidebar's share link
(1 s) reran on timers whether anything changed or not: about 5 rerun requests a second per tab.
"""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from tests.browser.driver import CALL_UP, open_app, start_call, status, stop_call, type_message, wait_assistant_text
from tests.browser.harness import VIEWPORT
from ui.format import activity_label

pytestmark = pytest.mark.browser


def _finished(payload: bytes | str) -> bool:
    message = ForwardMsg()
    message.ParseFromString(payload if isinstance(payload, bytes) else payload.encode())
    return message.WhichOneof("type") == "script_finished"


IDLE_S = 8.0


def test_an_idle_call_reruns_nothing_and_a_reply_is_pushed_to_the_page(app, silent_browser):
    page = silent_browser.new_context(viewport=VIEWPORT).new_page()
    runs: list[float] = []  # when a script or fragment run finished (Streamlit tells the page)
    pulses: list[str] = []  # the live parts that opened a pulse socket
    told: list[tuple[float, str]] = []  # (when, which live part) the server said changed

    def finished(payload: bytes | str) -> None:
        if _finished(payload):
            runs.append(time.monotonic())

    def watch(ws) -> None:
        if "_stcore/stream" in ws.url:
            ws.on("framereceived", finished)
        elif "/studio/pulse/" in ws.url:
            topic = ws.url.rsplit("/", 1)[-1]
            pulses.append(topic)
            ws.on("framereceived", lambda _payload: told.append((time.monotonic(), topic)))

    page.on("websocket", watch)
    try:
        open_app(page, app.url)
        start_call(page)
        type_message(page, "echo upper warm up")
        wait_assistant_text(page, "WARM UP")
        expect(status(page)).to_contain_text(CALL_UP)
        assert {"status", "transcript", "presets"} <= set(pulses), pulses

        # the reply's voice plays to its end (its words arrive with it): then nothing changes
        expect(status(page)).to_contain_text(activity_label("listening"), timeout=30_000)
        page.wait_for_timeout(1500)
        since = time.monotonic()
        page.wait_for_timeout(IDLE_S * 1000)  # (not time.sleep: Playwright hands over events while it waits)
        idle = [t for t in runs if t >= since]
        changed = [topic for t, topic in told if t >= since]
        # before push: ~45 (timers of 0.5, 0.4 and 1 s); allowed: the reply's end, if "Listening" was read
        # from a status drawn just before the voice began (status and transcript, once each: 2 + 2)
        assert len(idle) <= 4, f"{len(idle)} reruns in {IDLE_S:.0f} s of an idle call; changes told: {changed}"

        asked = time.monotonic()
        type_message(page, "echo upper pushed to the page")
        wait_assistant_text(page, "PUSHED TO THE PAGE", timeout=15_000)
        shown_after = time.monotonic() - asked
        assert shown_after < 10, f"the reply took {shown_after:.1f} s to show"
        expect(status(page)).to_contain_text(CALL_UP)
    finally:
        stop_call(page)
        page.context.close()
