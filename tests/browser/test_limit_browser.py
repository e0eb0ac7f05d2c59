"""The server's conversation limit in the real app: with REALTIME_MAX_CONVERSATIONS=1, a second tab
is told the studio is busy (no Start button) while the first tab's call goes on untouched; when the
first call ends, the second tab can start by itself, without a reload."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.driver import (
    CALL_UP,
    LONG,
    START,
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

BUSY = "The studio is busy: 1 conversation is running on this server. Try again in a minute."


@pytest.fixture(scope="module")
def one_place(tmp_path_factory):
    db = tmp_path_factory.mktemp("history") / "realtime-studio.db"
    server = start_streamlit("local-limit", clean_env(REALTIME_HISTORY_DB=str(db), REALTIME_MAX_CONVERSATIONS="1"))
    yield server
    server.stop()


def test_one_tab_past_the_limit_is_told_the_studio_is_busy_and_the_running_call_is_untouched(one_place, silent_browser):
    first = silent_browser.new_context(viewport=VIEWPORT).new_page()
    second = silent_browser.new_context(viewport=VIEWPORT).new_page()
    try:
        open_app(first, one_place.url)
        start_call(first)
        open_app(second, one_place.url)
        expect(second.get_by_text(BUSY)).to_be_visible(timeout=LONG)
        expect(component_frame(second).get_by_role("button", name=START)).to_have_count(0)
        screenshot(second, "limit-busy-tab")

        type_message(first, "echo upper still here")  # the running call is untouched
        wait_assistant_text(first, "STILL HERE")
        expect(status(first)).to_contain_text(CALL_UP)

        stop_call(first)  # a place is free: the waiting tab offers Start again by itself
        expect(second.get_by_text(BUSY)).to_have_count(0, timeout=LONG)
        start_call(second)
        type_message(second, "echo upper my turn")
        wait_assistant_text(second, "MY TURN")
        stop_call(second)
    finally:
        first.context.close()
        second.context.close()
