"""The self-view (issue 15) in Debian's Chromium on the local engine.

The camera is no longer echoed through the server: the page draws the user's own picture from the
browser's capture (`ui.self_view`), and the server receives a copy limited to SEND_FPS frames a second.
Chromium's fake camera is solid blue at 15 frames a second.

What a user notices: the picture beside Start is there and live during a call (blue, mirrored), the
component itself shows no video, the assistant still sees the camera, the camera button reads
"Camera off", the picture survives moving between pages, and after Stop it is gone and the camera
released. What the server pays for: how many frames reached it, from its own count (the log line
`ui.self_view.CameraMeter` writes when the call's camera track ends).
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import BLUE, launch
from tests.browser.driver import (
    CALL_UP,
    LONG,
    START,
    component_frame,
    go_to,
    open_app,
    screenshot,
    start_call,
    stop_call,
    type_message,
    wait_assistant_text,
)
from tests.browser.harness import VIEWPORT, StreamlitApp, clean_env, start_streamlit
from ui.self_view import MIC_DENIED, MIC_OR_CAMERA_DENIED, OFF_LABEL, SEND_FPS

pytestmark = pytest.mark.browser

CAPTURE_FPS = 15  # the fake camera's clip (tests.media.solid_y4m) and ui.studio.VIDEO's frameRate max
RATE_LINE = re.compile(r"camera: (\d+) frames reached the server in ([\d.]+) s \(([\d.]+) frames/s")
NO_TRACEBACK = re.compile(r"Traceback|File \".*\.py\"", re.I)

# The user (or the site settings) refuses the capture, as Chromium's getUserMedia does then.
_REFUSE_CAPTURE = (
    "navigator.mediaDevices.getUserMedia = () => "
    "Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));"
)


def refused_start_says(browser, url: str, said: tuple[str, str]) -> None:
    """Start in a tab whose capture is refused: ``said`` shows, Start stays, no call comes up."""
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(_REFUSE_CAPTURE)
    page = context.new_page()
    open_app(page, url)
    frame = component_frame(page)
    frame.get_by_role("button", name=START).click()
    expect(frame.get_by_role("alert")).to_have_text(": ".join(said), timeout=LONG)
    expect(frame.get_by_role("button", name=START)).to_be_visible()
    page.wait_for_timeout(1000)
    expect(page.locator(".st-key-status")).not_to_contain_text(CALL_UP)
    assert not NO_TRACEBACK.search(page.inner_text("body"))
    context.close()


# What the <video> of the self-view shows: playing or not, its size, the colour at its centre, and
# whether its tracks are live (kept on window so they can be checked once the element let them go).
_PICTURE = """el => {
  const v = el.querySelector('video');
  const tracks = v.srcObject ? v.srcObject.getVideoTracks() : [];
  if (tracks.length) window.__selfViewTracks = tracks;
  let px = null;
  if (v.videoWidth) {
    const c = document.createElement('canvas'); c.width = 8; c.height = 6;
    const g = c.getContext('2d'); g.drawImage(v, 0, 0, 8, 6);
    px = Array.from(g.getImageData(4, 3, 1, 1).data.slice(0, 3));
  }
  return {state: el.dataset.state, playing: !v.paused && v.readyState >= 2, width: v.videoWidth,
          height: v.videoHeight, centre: px, live: tracks.map(t => t.readyState === 'live'),
          mirrored: getComputedStyle(v).transform, inDocument: v.ownerDocument === document};
}"""


def self_view(page: Page):
    """The self-view element, in the page's own document (a locator does not look into iframes)."""
    return page.locator(".self-view")


def picture(page: Page) -> dict:
    return self_view(page).evaluate(_PICTURE)


def wait_live(page: Page, timeout_s: float = 20.0) -> dict:
    began, seen = time.monotonic(), {}
    while time.monotonic() - began < timeout_s:
        seen = picture(page)
        if seen["state"] == "live" and seen["playing"] and seen["centre"]:
            return seen
        page.wait_for_timeout(200)
    raise AssertionError(f"the self-view never played: {seen}")


def camera_lines(app: StreamlitApp) -> list[tuple[int, float, float]]:
    return [(int(m[1]), float(m[2]), float(m[3])) for m in RATE_LINE.finditer(app.log_text())]


def wait_camera_line(app: StreamlitApp, before: int, timeout_s: float = 30.0) -> tuple[int, float, float]:
    """The server's count for the call that just ended (logged when its camera track ends)."""
    began = time.monotonic()
    while time.monotonic() - began < timeout_s:
        lines = camera_lines(app)
        if len(lines) > before:
            return lines[-1]
        time.sleep(0.25)
    raise AssertionError("the server logged no camera count for the call")


def test_the_browser_draws_the_self_view_and_the_server_gets_a_few_frames_a_second(app, silent_browser):
    page = silent_browser.new_context(viewport=VIEWPORT).new_page()
    open_app(page, app.url)
    frame = component_frame(page)
    expect(self_view(page)).to_be_hidden()  # no picture, and no camera prompt, before Start
    lines_before = len(camera_lines(app))

    start_call(page)
    seen = wait_live(page)
    assert seen["inDocument"] and seen["width"] == 640 and seen["height"] == 480, seen
    assert all(abs(a - b) <= 12 for a, b in zip(seen["centre"], BLUE, strict=True)), seen  # the camera, not black
    assert seen["mirrored"].startswith("matrix(-1"), seen  # like a mirror
    assert frame.locator("video").count() == 0, "the component shows no video: nothing comes back"
    expect(frame.locator("audio")).to_have_count(1)  # the assistant's voice still does
    screenshot(page, "17-self-view")

    # The model still gets the camera.
    type_message(page, "what do you see?")
    wait_assistant_text(page, r"\bblue\b")
    page.wait_for_timeout(8000)  # a long enough call for the server's rate to mean something
    assert picture(page)["playing"]

    stop_call(page)
    expect(self_view(page)).to_be_hidden(timeout=LONG)
    after = self_view(page).evaluate(
        "el => ({src: el.querySelector('video').srcObject, live: (window.__selfViewTracks || [])"
        ".filter(t => t.readyState === 'live').length, kept: (window.__selfViewTracks || []).length})"
    )
    assert after == {"src": None, "live": 0, "kept": 1}, after  # the preview's camera track is released

    frames, seconds, rate = wait_camera_line(app, lines_before)
    print(f"server received {frames} camera frames in {seconds:.1f} s: {rate:.1f} frames/s")
    assert seconds > 8, (frames, seconds, rate)
    assert SEND_FPS * 0.7 <= rate <= SEND_FPS * 1.15, f"{rate:.1f} frames/s reached the server, not about {SEND_FPS}"
    assert rate < CAPTURE_FPS / 2
    assert not NO_TRACEBACK.search(page.inner_text("body"))
    page.context.close()


def test_the_camera_button_and_page_changes_keep_the_self_view_truthful(app, silent_browser):
    page = silent_browser.new_context(viewport=VIEWPORT).new_page()
    open_app(page, app.url)
    start_call(page)
    wait_live(page)
    frame = component_frame(page)

    # streamlit-webrtc's own camera button stops what is sent: the self-view says so.
    frame.get_by_role("button", name="Turn camera off").click()
    expect(self_view(page)).to_have_attribute("data-state", "off", timeout=LONG)
    expect(self_view(page).get_by_text(OFF_LABEL)).to_be_visible()
    assert not picture(page)["playing"]
    screenshot(page, "18-self-view-camera-off")
    frame.get_by_role("button", name="Turn camera on").click()
    wait_live(page)

    # The call bar is drawn on every page: the picture stays with the call.
    go_to(page, "Vision")
    expect(page.get_by_role("heading", name="Vision")).to_be_visible(timeout=LONG)
    expect(page.get_by_text(re.compile(r"^Camera · ")).first).to_be_visible(timeout=LONG)  # the model got frames
    wait_live(page)
    go_to(page, "Conversation")
    expect(page.get_by_test_id("stChatInputTextArea")).to_be_visible(timeout=LONG)
    expect(page.locator(".st-key-status")).to_contain_text(CALL_UP, timeout=LONG)
    wait_live(page)

    stop_call(page)
    expect(self_view(page)).to_be_hidden(timeout=LONG)
    assert not NO_TRACEBACK.search(page.inner_text("body"))
    page.context.close()


def test_a_refused_capture_says_to_allow_the_microphone_and_the_camera(app, silent_browser):
    refused_start_says(silent_browser, app.url, MIC_OR_CAMERA_DENIED)


def test_with_the_camera_off_in_settings_there_is_no_video_and_no_self_view(playwright_instance, media):
    server = start_streamlit("self-view-no-camera", clean_env(REALTIME_CAMERA="off"))
    browser = launch(playwright_instance, media["silence"], media["blue"])
    try:
        page = browser.new_context(viewport=VIEWPORT).new_page()
        open_app(page, server.url)
        start_call(page)
        frame = component_frame(page)
        expect(frame.get_by_role("button", name="Mute microphone")).to_be_visible(timeout=LONG)  # the mic is there
        expect(frame.get_by_role("button", name="Turn camera off")).to_have_count(0)  # nothing captured
        page.wait_for_timeout(2000)
        expect(self_view(page)).to_be_hidden()
        stop_call(page)
        assert camera_lines(server) == []  # no camera frame reached the server
        refused_start_says(browser, server.url, MIC_DENIED)  # only the mic asked for
    finally:
        browser.close()
        server.stop()
