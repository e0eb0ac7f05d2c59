"""Issue 9 as a new user tries it, in Debian's Chromium on the local engine: the newest flagship is
the default model, a phone-line codec is picked before the call and named by Diagnostics, and a voice
speed change mid-call goes out as one session.update that the engine answers with session.updated."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from realtime.settings import DEFAULT_MODEL
from tests.browser.driver import (
    CALL_UP,
    LONG,
    component_frame,
    go_to,
    install_level_meter,
    open_app,
    played_level,
    reset_level,
    screenshot,
    start_call,
    status,
    type_message,
    wait_assistant_text,
)
from tests.browser.harness import VIEWPORT

pytestmark = pytest.mark.browser


def test_phone_line_default_model_and_a_live_speed_change(app, silent_browser):
    page = silent_browser.new_context(viewport=VIEWPORT).new_page()
    open_app(page, app.url)
    component_frame(page).get_by_role("button", name="Start conversation").wait_for(timeout=LONG)
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar).to_match_aria_snapshot(f'- combobox "Model": {DEFAULT_MODEL}')  # the Model select shows it

    sidebar.get_by_text("G.711 μ-law (PCMU)").click()  # Phone line, before the call
    start_call(page)
    meter = install_level_meter(page)
    reset_level(meter)
    type_message(page, "count to 10")
    wait_assistant_text(page, r"one, two, three")
    page.wait_for_timeout(2000)
    assert played_level(meter)["peak"] > 0.02, "the phone-line reply was not audible"

    # Voice speed, mid-call: one step up with the keyboard, as a slider is moved.
    slider = sidebar.get_by_role("slider", name="Voice speed")
    slider.focus()
    slider.press("ArrowRight")
    expect(page.get_by_text("Changes apply to the live call")).to_be_visible(timeout=LONG)

    go_to(page, "Events")
    expect(page.get_by_text("session.update", exact=True).first).to_be_visible(timeout=LONG)
    expect(page.get_by_text("session.updated", exact=True).first).to_be_visible()
    screenshot(page, "11-events-speed-update")

    go_to(page, "Diagnostics")
    main = page.get_by_test_id("stMain")
    expect(main.get_by_text("Audio codec to the model")).to_contain_text("PCMU", timeout=LONG)
    expect(status(page)).to_contain_text(CALL_UP)
    screenshot(page, "12-diagnostics-phone-line")
    page.context.close()
