"""The app in Debian's Chromium on the local engine: what a user sees and hears.

One `streamlit run app.py` for the module (no key: the app starts its local engine). Chromium's
fake devices play a generated speech WAV (looped, with silence around it) or silence, and a
generated solid-blue camera.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.driver import (
    CALL_UP,
    LONG,
    component_frame,
    event_count,
    go_to,
    install_level_meter,
    items,
    open_app,
    played_level,
    reset_level,
    screenshot,
    seconds_until_quiet,
    start_call,
    status,
    stop_call,
    type_message,
    wait_assistant_text,
)
from tests.browser.harness import VIEWPORT

pytestmark = pytest.mark.browser

NO_TRACEBACK = re.compile(r"Traceback|File \".*\.py\"", re.I)
# The local engine starts with the app server, so Start only sets up the two WebRTC legs. On demand,
# the first call waited 15-23 s for the engine child to boot.
FIRST_CONNECT_S = 12.0
# After Interrupt the page is quiet within this (the click's rerun, the browser's jitter buffer).
QUIET_AFTER_INTERRUPT_S = 1.5


def new_page(browser):
    context = browser.new_context(viewport=VIEWPORT)
    return context.new_page()


def assert_reads_like_a_product(page) -> None:
    body = page.inner_text("body")
    assert not NO_TRACEBACK.search(body), body[-2000:]


def test_pages_explain_themselves_before_a_call(app, silent_browser):
    page = new_page(silent_browser)
    open_app(page, app.url)
    component_frame(page).get_by_role("button", name="Start conversation").wait_for(timeout=LONG)
    expect(status(page)).to_contain_text("Not connected")
    expect(status(page)).to_contain_text("Local (offline)")
    expect(page.get_by_text("speech recognition is approximate")).to_be_visible()
    expect(page.get_by_text("Press Start conversation, allow the microphone")).to_be_visible()
    expect(page.get_by_test_id("stChatInputTextArea")).to_be_disabled()
    # The local engine started with the server: the page says so while it boots, then stops saying it.
    expect(page.get_by_text("Starting local engine")).to_have_count(0, timeout=LONG)
    assert_reads_like_a_product(page)
    screenshot(page, "01-conversation-idle")

    go_to(page, "Events")
    expect(page.get_by_text("No conversation in this tab yet")).to_be_visible(timeout=LONG)
    # the call bar (Start, status) is on every page
    component_frame(page).get_by_role("button", name="Start conversation").wait_for(timeout=LONG)
    expect(status(page)).to_contain_text("Not connected")
    assert_reads_like_a_product(page)
    screenshot(page, "02-events-idle")

    go_to(page, "Diagnostics")
    expect(page.get_by_text("No conversation in this tab yet")).to_be_visible(timeout=LONG)
    expect(page.get_by_text("round-trip time")).to_be_visible()
    assert_reads_like_a_product(page)
    screenshot(page, "03-diagnostics-idle")
    page.context.close()


def test_spoken_turn_is_transcribed_answered_and_heard(app, speaking_browser):
    page = new_page(speaking_browser)
    open_app(page, app.url)
    connect_s = start_call(page)
    assert connect_s < FIRST_CONNECT_S, f"the first call took {connect_s:.1f}s to connect"
    meter = install_level_meter(page)

    # The looped speech file: a user item (the local engine's recognition is approximate, so its
    # words are not checked) and an assistant reply, both final.
    expect(items(page, "user").first).to_be_visible(timeout=LONG)
    expect(items(page, "assistant").first).to_be_visible(timeout=LONG)
    expect(status(page)).to_contain_text(CALL_UP)

    # The assistant's voice really plays in the page: a long reply, measured while it plays.
    reset_level(meter)
    type_message(page, "count to 20")
    wait_assistant_text(page, r"one, two, three")
    page.wait_for_timeout(2500)
    level = played_level(meter)
    assert level["elements"] >= 1 and level["state"] == "running", level
    assert level["peak"] > 0.02, f"no assistant voice audible in the page: {level}"
    assert_reads_like_a_product(page)
    screenshot(page, "04-conversation-voice")

    # The call stays up on Events and Diagnostics (the call bar is on every page), and they are live:
    # the looped speech file keeps producing turns, whose events show up while the Events page is open.
    go_to(page, "Events")
    expect(page.get_by_text("The conversation is running")).to_be_visible(timeout=LONG)
    expect(page.get_by_text("session.created").first).to_be_visible()
    expect(page.get_by_text("response.done").first).to_be_visible()
    expect(status(page)).to_contain_text(CALL_UP)
    before = event_count(page)
    expect(page.get_by_text(re.compile(r"[\d,]+ events in this conversation")).first).not_to_have_text(
        re.compile(rf"^{before:,} events"), timeout=LONG
    )
    assert_reads_like_a_product(page)
    screenshot(page, "05-events-live")

    go_to(page, "Diagnostics")
    expect(page.get_by_text("Latency per turn")).to_be_visible(timeout=LONG)
    expect(page.get_by_text("Estimated cost")).to_be_visible()
    expect(page.get_by_test_id("stDataFrame")).to_be_visible()
    expect(status(page)).to_contain_text(CALL_UP)
    assert_reads_like_a_product(page)
    screenshot(page, "06-diagnostics-live")

    # Back on the Conversation page it is still the same call: its transcript, and it answers.
    go_to(page, "Conversation")
    expect(component_frame(page).get_by_role("button", name="Stop (hang up)")).to_be_visible(timeout=LONG)
    expect(status(page)).to_contain_text(CALL_UP)
    type_message(page, "still the same call")
    wait_assistant_text(page, "still the same call")
    page.context.close()


def test_typed_camera_instructions_interrupt_and_stop(app, silent_browser):
    page = new_page(silent_browser)
    open_app(page, app.url)
    start_call(page)

    type_message(page, "hello there studio")
    wait_assistant_text(page, r"You said: hello there studio")
    expect(items(page, "user").filter(has_text="hello there studio")).to_have_count(1)

    type_message(page, "what do you see?")
    wait_assistant_text(page, r"\bblue\b")
    expect(page.locator("[class*='st-key-item-user-'] img").first).to_be_visible()  # the frame sent

    # Instructions changed mid-call change the next reply.
    instructions = page.get_by_role("textbox", name="Instructions")
    instructions.fill("Say: Pineapple express.\nBe brief.")
    instructions.press("Control+Enter")
    expect(page.get_by_text("Changes apply to the live call")).to_be_visible()
    page.wait_for_timeout(1000)
    type_message(page, "anything new")
    wait_assistant_text(page, r"Pineapple express\..*You said: anything new")
    screenshot(page, "07-conversation-typed")

    # Interrupt stops a long reply: "count to 60" speaks for far longer than this test waits, and
    # after Interrupt the page goes quiet and the status stops saying the assistant is speaking.
    meter = install_level_meter(page)
    type_message(page, "count to 60")
    wait_assistant_text(page, r"one, two")
    expect(status(page)).to_contain_text("Assistant speaking", timeout=LONG)
    page.wait_for_timeout(1500)
    assert played_level(meter)["peak"] > 0.02, "the long reply was not audible before Interrupt"
    page.get_by_role("button", name="Interrupt").click()
    quiet_after = seconds_until_quiet(page, meter)
    assert quiet_after <= QUIET_AFTER_INTERRUPT_S, f"the voice went on for {quiet_after:.2f}s after Interrupt"
    reset_level(meter)
    page.wait_for_timeout(2500)  # and it stays quiet: the rest of "count to 60" is not played
    quiet = played_level(meter)
    assert quiet["peak"] < 0.01, f"the assistant kept talking after Interrupt: {quiet}"
    expect(status(page)).not_to_contain_text("Assistant speaking", timeout=10_000)
    expect(items(page, "assistant").last).to_contain_text("(interrupted)", timeout=10_000)  # the reply says it was cut
    screenshot(page, "08-conversation-interrupted")

    # Stop hangs up: the call ends and typing is off.
    stop_call(page)
    expect(status(page)).not_to_contain_text(CALL_UP, timeout=LONG)
    expect(page.get_by_test_id("stChatInputTextArea")).to_be_disabled()
    assert_reads_like_a_product(page)
    screenshot(page, "09-conversation-stopped")
    page.context.close()


def test_two_tabs_are_two_conversations(app, silent_browser):
    context = silent_browser.new_context(viewport=VIEWPORT)
    tab_a, tab_b = context.new_page(), context.new_page()
    open_app(tab_a, app.url)
    open_app(tab_b, app.url)
    tab_a.bring_to_front()
    start_call(tab_a)
    type_message(tab_a, "mango from tab one")
    wait_assistant_text(tab_a, "mango from tab one")

    tab_b.bring_to_front()
    expect(tab_b.get_by_text("Press Start conversation, allow the microphone")).to_be_visible()
    start_call(tab_b)
    type_message(tab_b, "banana from tab two")
    wait_assistant_text(tab_b, "banana from tab two")
    expect(tab_b.get_by_text("mango", exact=False)).to_have_count(0)
    expect(tab_a.get_by_text("banana", exact=False)).to_have_count(0)

    stop_call(tab_b)
    expect(status(tab_a)).to_contain_text(CALL_UP)  # one tab's hang-up leaves the other talking
    type_message(tab_a, "still here")
    wait_assistant_text(tab_a, "still here")
    stop_call(tab_a)

    # Each call was saved to History as its own conversation.
    go_to(tab_a, "History")
    expect(tab_a.get_by_text("mango from tab one").first).to_be_visible(timeout=LONG)
    expect(tab_a.get_by_text("banana from tab two").first).to_be_visible()
    context.close()
