"""A page change survives a fragment rerun from the page being left (`ui.stale_reruns`), in Chromium.

The tab learns that its page changed only from the server's reply, so a pulse trigger or a
`run_every` tick it sends right after a click still names the old page. That happened about once in
twenty runs of the screen-share page hops, and Streamlit then drew the old page's fragment over the new
page: a white page ("Bad delta path index 2 (should be between [0, 1])"). Here the race is made to
happen every time: the test sits on the tab's websocket and, right behind each page change, sends the
last fragment rerun the tab asked for (the very bytes it sent, naming the page it is leaving).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, WebSocketRoute, expect
from streamlit.proto.BackMsg_pb2 import BackMsg

from tests.browser.driver import CALL_UP, LONG, open_app, start_call, type_message
from tests.browser.harness import VIEWPORT

pytestmark = pytest.mark.browser


class StaleRerunAfterPageChange:
    """Forwards the tab's messages and, after each page change, the tab's last fragment rerun again."""

    def __init__(self) -> None:
        self.last_fragment_rerun: bytes | None = None
        self.sent_stale = 0

    def route(self, ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def from_tab(message: str | bytes) -> None:
            server.send(message)
            if not isinstance(message, bytes):
                return
            msg = BackMsg.FromString(message)
            if msg.WhichOneof("type") != "rerun_script":
                return
            rerun = msg.rerun_script
            if rerun.fragment_id:
                self.last_fragment_rerun = message
                return
            last = self.last_fragment_rerun
            if last and rerun.page_script_hash not in ("", BackMsg.FromString(last).rerun_script.page_script_hash):
                server.send(last)  # a page change, and right behind it a rerun from the page it leaves
                self.sent_stale += 1
                self.last_fragment_rerun = None

        ws.on_message(from_tab)
        server.on_message(ws.send)


def _leave_for(page: Page, stale: StaleRerunAfterPageChange, name: str) -> None:
    """Click the page ``name`` in the sidebar once the tab has asked for a fragment rerun here."""
    for _ in range(150):
        if stale.last_fragment_rerun is not None:
            break
        page.wait_for_timeout(100)
    assert stale.last_fragment_rerun is not None, "the page asked for no fragment rerun in 15 s"
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=name, exact=True).click()


def test_a_fragment_rerun_from_the_page_being_left_does_not_undo_the_page_change(app, silent_browser):
    context = silent_browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    stale = StaleRerunAfterPageChange()
    page.route_web_socket(re.compile(r"/_stcore/stream"), stale.route)
    open_app(page, app.url)
    start_call(page)
    status = page.locator(".st-key-status")
    vision = page.get_by_role("heading", name="Vision")
    chat = page.get_by_test_id("stChatInputTextArea")
    for hop in range(3):
        type_message(page, f"hop {hop}")  # the transcript's pulse asks for fragment reruns
        _leave_for(page, stale, "Vision")
        expect(vision).to_be_visible(timeout=10_000)
        page.wait_for_timeout(1500)  # the stale rerun ran by now, and the page is still there
        expect(vision).to_be_visible()
        _leave_for(page, stale, "Conversation")  # Vision's live part reruns every 2 s during a call
        expect(chat).to_be_visible(timeout=10_000)
        page.wait_for_timeout(1500)
        expect(chat).to_be_visible()
        expect(status).to_contain_text(CALL_UP, timeout=LONG)
        assert stale.sent_stale == 2 * (hop + 1)
    assert not errors, errors
    context.close()
