"""Share screen, in Debian's Chromium on the local engine (issue 12).

The fake camera is solid blue. With `--use-fake-ui-for-media-stream` and
`--use-fake-device-for-media-stream`, Chromium answers `getDisplayMedia` with its fake desktop: a
1280x720 picture that is mostly green (whatever file feeds the fake camera). So a reply naming green
came from a screen frame, and one naming blue from the camera. Screen frames go out like camera
frames under the "turn" policy: a typed question takes the current frame with it when it changed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.driver import (
    CALL_UP,
    LONG,
    go_to,
    items,
    open_app,
    screenshot,
    start_call,
    type_message,
    wait_assistant_text,
)
from tests.browser.harness import CHROMIUM, VIEWPORT, chromium_args

pytestmark = pytest.mark.browser

NO_TRACEBACK = re.compile(r"Traceback|File \".*\.py\"", re.I)
# A browser (or user) that refuses: getDisplayMedia rejects as Chromium does when the picker is cancelled.
_REFUSE = (
    "navigator.mediaDevices.getDisplayMedia = () => "
    "Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));"
)


def screen_share_args(audio: Path, video: Path) -> list[str]:
    """The harness's fake camera and mic. The same two flags also give getDisplayMedia its fake
    desktop, picked without a prompt (checked with Debian's Chromium 156, headless):
    `--auto-select-desktop-capture-source` and `--auto-accept-this-tab-capture` are not needed, and
    without `--use-fake-device-for-media-stream` the call never returns (a picker nobody sees)."""
    args = chromium_args(audio, video)
    assert "--use-fake-ui-for-media-stream" in args and "--use-fake-device-for-media-stream" in args
    return args


@pytest.fixture(scope="module")
def browser(playwright_instance, media):
    browser = playwright_instance.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=screen_share_args(media["silence"], media["blue"]),
    )
    yield browser
    browser.close()


def share_button(page: Page, name: str):
    return page.locator(".st-key-screen-share").get_by_role("button", name=name)


def test_a_shared_screen_replaces_the_camera_until_sharing_stops(app, browser):
    page = browser.new_context(viewport=VIEWPORT).new_page()
    open_app(page, app.url)
    start_call(page)

    # The camera first: its blue frame goes out with the question.
    type_message(page, "what do you see?")
    wait_assistant_text(page, r"mostly blue")

    share_button(page, "Share screen").click()
    expect(share_button(page, "Stop sharing")).to_be_visible(timeout=LONG)
    page.wait_for_timeout(2500)  # a couple of screen frames reach the server
    type_message(page, "and now, what do you see?")
    reply = wait_assistant_text(page, r"mostly green")
    expect(page.get_by_text("Screen frame sent").first).to_be_visible()  # the bubble says where it came from
    size = re.search(r"(\d+) by (\d+) image", reply.inner_text())
    assert size is not None, reply.inner_text()
    assert int(size[1]) * 9 == int(size[2]) * 16, size[0]  # the fake desktop's 16:9, not the camera's shape
    screenshot(page, "14-screen-share")

    # Stop sharing: the camera is the source again, and its (changed) frame goes with the next question.
    share_button(page, "Stop sharing").click()
    expect(share_button(page, "Share screen")).to_be_visible(timeout=LONG)
    page.wait_for_timeout(1500)  # a camera frame reaches the throttle again
    answered = items(page, "assistant").count()
    type_message(page, "what do you see now?")
    expect(items(page, "assistant").nth(answered)).to_contain_text("mostly blue", timeout=LONG)

    # The Vision page says where each image came from: camera, screen, camera again (newest first).
    go_to(page, "Vision")
    captions = page.get_by_text(re.compile(r"^(Screen|Camera) · "))
    expect(captions).to_have_count(3, timeout=LONG)
    assert [c.split(" · ")[0] for c in captions.all_inner_texts()] == ["Camera", "Screen", "Camera"]
    screenshot(page, "15-vision-screen")
    assert not NO_TRACEBACK.search(page.inner_text("body"))
    page.context.close()


def test_a_refused_screen_share_says_so_and_the_call_goes_on(app, browser):
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(_REFUSE)
    page = context.new_page()
    open_app(page, app.url)
    start_call(page)

    share_button(page, "Share screen").click()
    warning = page.locator(".st-key-screen-share").get_by_test_id("stAlert")
    expect(warning).to_contain_text("Screen sharing was not allowed", timeout=LONG)
    expect(warning).to_contain_text("The camera stays the image source")
    expect(share_button(page, "Share screen")).to_be_enabled()
    screenshot(page, "16-screen-share-refused")

    type_message(page, "what do you see?")
    wait_assistant_text(page, r"mostly blue")
    assert not NO_TRACEBACK.search(page.inner_text("body"))
    context.close()


def test_moving_between_pages_while_sharing_keeps_the_call_and_the_share(app, browser):
    """The call bar (and the share in it) stays mounted across pages while frames keep coming."""
    page = browser.new_context(viewport=VIEWPORT).new_page()
    open_app(page, app.url)
    start_call(page)
    share_button(page, "Share screen").click()
    expect(share_button(page, "Stop sharing")).to_be_visible(timeout=LONG)
    for _hop in range(4):
        go_to(page, "Vision")
        expect(page.get_by_role("heading", name="Vision")).to_be_visible(timeout=LONG)
        page.wait_for_timeout(1200)
        go_to(page, "Conversation")
        expect(page.get_by_test_id("stChatInputTextArea")).to_be_visible(timeout=LONG)
        expect(page.locator(".st-key-status")).to_contain_text(CALL_UP, timeout=LONG)
        expect(share_button(page, "Stop sharing")).to_be_visible(timeout=LONG)
        page.wait_for_timeout(1200)
    type_message(page, "what do you see?")
    wait_assistant_text(page, r"mostly green")  # still the screen
    assert not NO_TRACEBACK.search(page.inner_text("body"))
    page.context.close()
