"""What fits on a 1280x800 screen during a conversation (real app, local engine, Chromium).

The call bar (title, status, controls) stays in view, the chat box follows the newest message
once the transcript is longer than its box, and a tool call reads as a one-line breadcrumb.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.driver import (
    items,
    open_app,
    screenshot,
    start_call,
    status,
    stop_call,
    type_message,
    wait_assistant_text,
)
from tests.browser.harness import VIEWPORT

pytestmark = pytest.mark.browser


def _box(locator) -> dict:
    box = locator.bounding_box()
    assert box is not None, "not laid out"
    return box


def test_long_chat_follows_the_newest_and_keeps_the_top_in_view(app, silent_browser):
    page = silent_browser.new_context(viewport=VIEWPORT).new_page()
    open_app(page, app.url)
    start_call(page)

    type_message(page, "delayed add 2 and 5")
    wait_assistant_text(page, r"delayed_add returned")
    expect(items(page, "tool").filter(has_text="delayed_add(a=2, b=5) → 7")).to_have_count(1)
    for n in range(1, 5):
        type_message(page, f"note number {n} for the layout")
        newest = wait_assistant_text(page, f"You said: note number {n} for the layout")

    box = page.locator(".st-key-transcript-follow").locator("xpath=../..")  # the scrolling box
    overflow = box.evaluate("el => el.scrollHeight - el.clientHeight")
    assert overflow > 100, f"the transcript should be longer than its box here (overflow {overflow} px)"
    # The newest reply is inside the box's visible area, not below its fold.
    outer, last = _box(box), _box(newest)
    assert last["y"] >= outer["y"] - 1 and last["y"] + last["height"] <= outer["y"] + outer["height"] + 1, (last, outer)
    # ...and the oldest message is scrolled out of view, above.
    first_user = _box(items(page, "user").first)
    assert first_user["y"] + first_user["height"] <= outer["y"] + 1, (first_user, outer)

    # The page itself is not scrolled away: the call bar's title and status are on screen, and the
    # chat box is on screen below the transcript.
    title = page.get_by_role("heading", name="Realtime Studio").first
    assert _box(title)["y"] >= 0, "the title is scrolled off the top"
    st = _box(status(page))
    assert st["y"] >= 0 and st["y"] + st["height"] <= VIEWPORT["height"]
    chat = _box(page.get_by_test_id("stChatInput"))
    assert chat["y"] + chat["height"] <= VIEWPORT["height"] and chat["y"] >= outer["y"] + outer["height"]
    screenshot(page, "layout-long-chat")

    stop_call(page)
    page.context.close()
