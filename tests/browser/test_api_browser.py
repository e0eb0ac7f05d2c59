"""The studio as a backend, as a new user would try it: the example client page in Chromium (fake mic)
talks to the local engine through the studio's SDP proxy, hears the reply, a tool runs on the server,
and the studio shows that call live on its Events page and keeps it in History.

The server is configured with ``REALTIME_TOOL_CHOICE=required``: the offline engine's speech
recognition cannot be trusted to hear a tool's name, and with ``required`` every spoken turn calls the
first tool, which the studio runs on the call's sideband."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.browser.driver import LONG, go_to, install_meter, items, open_app, played_level, screenshot
from tests.browser.harness import VIEWPORT, StreamlitApp, clean_env, start_streamlit

pytestmark = pytest.mark.browser

TOKEN = "browser-test-token-0123456789"


@pytest.fixture(scope="module")
def api_app(tmp_path_factory) -> Iterator[StreamlitApp]:
    db = tmp_path_factory.mktemp("history") / "realtime-studio.db"
    server = start_streamlit(
        "local-api",
        clean_env(
            REALTIME_HISTORY_DB=str(db),
            REALTIME_API_TOKEN=TOKEN,
            REALTIME_TOOL_CHOICE="required",
            REALTIME_TOOLS="get_datetime",
        ),
    )
    yield server
    server.stop()


def test_the_example_client_talks_through_the_studio(api_app, speaking_browser):
    context = speaking_browser.new_context(viewport=VIEWPORT)
    client = context.new_page()
    client.goto(api_app.url + "/studio/example")
    expect(client.get_by_role("heading", name=re.compile("example client"))).to_be_visible()
    client.locator("#token").fill(TOKEN)
    client.locator("#start").click()
    expect(client.locator("#status")).to_have_text("connected", timeout=LONG)
    meter = install_meter(client.main_frame)
    call_id = client.locator("#call-id").inner_text().strip()
    assert call_id

    # The spoken turn calls get_datetime; the studio runs it and the engine answers with its result.
    reply = client.locator("#transcript .line.assistant").filter(has_text=re.compile(r"\d{4}-\d{2}-\d{2}|tool", re.I))
    expect(reply.first).to_be_visible(timeout=LONG)
    client.wait_for_function("() => window.__meter && window.__meter.peak > 0.01", timeout=LONG * 1000)
    assert played_level(meter)["peak"] > 0.01  # the voice was heard, not only its transcript
    expect(client.locator("#frames-sent")).not_to_have_text("0", timeout=LONG)  # camera snapshots accepted
    expect(client.locator("#error")).to_have_text("")

    # The studio, in another tab: the Events page shows that call live, with the tool run on the server.
    studio = context.new_page()
    open_app(studio, api_app.url)
    go_to(studio, "Events")
    picker = studio.get_by_role("combobox", name="Call")
    expect(picker).to_have_value(re.compile(r"^API client · " + re.escape(call_id[:14]) + ".* · live$"), timeout=LONG)
    expect(studio.get_by_text("The conversation is running")).to_be_visible()
    expect(items(studio, "tool").first).to_contain_text("get_datetime", timeout=LONG)  # the tool's breadcrumb
    expect(studio.get_by_text("response.function_call_arguments.done").first).to_be_visible()
    screenshot(studio, "13-api-call-in-events")

    client.locator("#stop").click()
    expect(client.locator("#status")).to_have_text("ended", timeout=LONG)
    studio.reload()  # the page learns of the end at its next run (the list itself polls)
    expect(picker).to_have_value(re.compile(r" · ended$"), timeout=LONG)
    expect(studio.get_by_text("The log of this API call (it has ended).")).to_be_visible(timeout=LONG)

    go_to(studio, "History")
    expect(studio.get_by_text("API client").first).to_be_visible(timeout=LONG)
    context.close()


def test_the_api_refuses_a_page_without_the_token(api_app, speaking_browser):
    context = speaking_browser.new_context(viewport=VIEWPORT)
    client = context.new_page()
    client.goto(api_app.url + "/studio/example")
    client.locator("#token").fill("not-the-token-at-all")
    client.locator("#start").click()
    expect(client.locator("#error")).to_contain_text("The token was refused (401)", timeout=LONG)
    expect(client.locator("#status")).not_to_have_text("connected")
    context.close()
