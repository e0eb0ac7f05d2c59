"""The frame policy in the real page: what the Vision page says was shown to the model, and when.

Chromium's fake camera is a solid blue clip, so it never changes after the first frame.
- ``manual``: nothing goes until **Send frame**; then exactly one camera image.
- ``turn`` (the default): the first frame at once; a typed question is answered from the camera
  ("blue"), and no new image follows while nothing changes.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import launch
from tests.browser.driver import LONG, go_to, open_app, start_call, stop_call, type_message, wait_assistant_text
from tests.browser.harness import VIEWPORT, clean_env, start_streamlit

pytestmark = pytest.mark.browser


def vision_summary(page: Page):
    """The Vision page's summary line (its first caption)."""
    go_to(page, "Vision")
    expect(page.get_by_role("heading", name="Vision")).to_be_visible(timeout=LONG)
    return page.get_by_test_id("stMainBlockContainer").get_by_test_id("stCaptionContainer").first


def back_to_conversation(page: Page) -> None:
    go_to(page, "Conversation")


@pytest.mark.parametrize("policy", ["manual", "turn"])
def test_the_vision_page_shows_what_each_frame_policy_sent(playwright_instance, media, policy):
    server = start_streamlit(f"frame-policy-{policy}", clean_env(REALTIME_FRAME_POLICY=policy))
    browser = launch(playwright_instance, media["silence"], media["blue"])
    try:
        page = browser.new_context(viewport=VIEWPORT).new_page()
        open_app(page, server.url)
        start_call(page)
        page.wait_for_timeout(4000)  # two camera intervals: under "interval" two frames would be out
        if policy == "manual":
            expect(vision_summary(page)).to_contain_text("No image has been sent in this conversation yet.")
            back_to_conversation(page)
            page.get_by_role("button", name="Send frame").click()
            page.wait_for_timeout(1500)
            expect(vision_summary(page)).to_contain_text("1 image sent (1 from the camera)", timeout=LONG)
        else:
            expect(vision_summary(page)).to_contain_text("1 image sent (1 from the camera)", timeout=LONG)
            back_to_conversation(page)
            type_message(page, "what do you see?")
            wait_assistant_text(page, r"\bblue\b")
            # the picture did not change: the question went without a second copy of it
            expect(vision_summary(page)).to_contain_text("1 image sent (1 from the camera)")
        back_to_conversation(page)
        stop_call(page)
    finally:
        browser.close()
        server.stop()
