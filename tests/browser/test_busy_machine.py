"""The page keeps its chat box, call controls and sidebar while the machine is busy.

Two CPU-bound processes run beside the app (this machine has 2 cores), so Streamlit's script thread
and its event loop fall behind the browser. Before `ui.live.live_fragment`, a polling fragment's
rerun could start before the full run that drew it was flushed, and the browser then merged the
transcript into the chat box's block and hid the chat input (measured: hidden after 4, 7, 16 and
28 typed messages in six runs).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys

import pytest
from playwright.sync_api import expect

from tests.browser.driver import open_app, start_call, stop_call, type_message, wait_assistant_text
from tests.browser.harness import VIEWPORT

pytestmark = pytest.mark.browser

MESSAGES = 16
HOGS = 2
HOG_SECONDS = 240  # each hog ends by itself even if the test is killed


@contextlib.contextmanager
def busy_cpu():
    code = f"import time\nend = time.monotonic() + {HOG_SECONDS}\nwhile time.monotonic() < end: pass\n"
    hogs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(HOGS)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait(timeout=10)


def _say(page, text: str) -> None:
    chat = page.get_by_test_id("stChatInputTextArea")
    expect(chat, f"the chat box is hidden before {text!r}").to_be_visible(timeout=5_000)
    type_message(page, text)
    wait_assistant_text(page, f"You said: {text}$")


def test_chat_box_controls_and_sidebar_stay_through_a_busy_conversation(app, silent_browser):
    page = silent_browser.new_context(viewport=VIEWPORT).new_page()
    open_app(page, app.url)
    start_call(page)
    _say(page, "a quiet start")  # the call is up before the machine gets busy
    with busy_cpu():
        for n in range(1, MESSAGES + 1):
            _say(page, f"busy note {n}")
    chat = page.get_by_test_id("stChatInputTextArea")
    expect(chat, "the chat box is hidden after the last reply").to_be_visible(timeout=5_000)
    expect(page.get_by_role("button", name="Interrupt")).to_be_visible()
    expect(page.get_by_label("Mute mic")).to_be_visible()
    expect(page.get_by_role("combobox", name="Voice")).to_be_visible()
    stop_call(page)
    page.context.close()
