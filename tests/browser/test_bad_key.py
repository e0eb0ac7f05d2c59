"""A key the provider rejects ends in a clear message on the page, and the key shows up nowhere.

The "provider" is a local engine started on its own with `LOCALENGINE_API_KEYS=good`; the app is
pointed at it with OPENAI_BASE_URL and a wrong OPENAI_API_KEY (so the app takes its OpenAI path).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import launch
from tests.browser.driver import LONG, component_frame, open_app, screenshot, status, type_message
from tests.browser.harness import VIEWPORT, clean_env, start_engine_process, start_streamlit

pytestmark = pytest.mark.browser

WRONG_KEY = "sk-wrong-test-key-5f3a9c1e"


@pytest.fixture(scope="module")
def strict_engine():
    engine = start_engine_process(clean_env(LOCALENGINE_API_KEYS="good"))
    yield engine
    engine.stop()


@pytest.fixture(scope="module")
def app_with_wrong_key(strict_engine):
    server = start_streamlit("wrong-key", clean_env(OPENAI_API_KEY=WRONG_KEY, OPENAI_BASE_URL=strict_engine.base_url))
    yield server
    server.stop()


def test_rejected_key_shows_a_clear_message(app_with_wrong_key, playwright_instance, media):
    browser = launch(playwright_instance, media["silence"], media["blue"])
    try:
        page = browser.new_context(viewport=VIEWPORT).new_page()
        open_app(page, app_with_wrong_key.url)
        expect(page.get_by_text("OpenAI key set (from environment)")).to_be_visible()
        expect(status(page)).to_contain_text("Engine: OpenAI")

        component_frame(page).get_by_role("button", name="Start conversation").click()
        error = page.get_by_test_id("stAlertContentError").filter(has_text="rejected the API key")
        expect(error).to_be_visible(timeout=LONG)
        expect(error).to_contain_text("OPENAI_API_KEY")
        expect(status(page)).to_contain_text("Connection failed")
        screenshot(page, "10-conversation-rejected-key")

        type_message(page, "are you there?")  # typed into a failed call: said, not silently dropped
        expect(page.get_by_text("Not sent, the call is not connected")).to_be_visible(timeout=LONG)

        body = page.content()
        assert WRONG_KEY not in body
        assert "Traceback" not in page.inner_text("body")
    finally:
        browser.close()
    app_with_wrong_key.stop()
    assert WRONG_KEY not in app_with_wrong_key.log_text(), "the API key leaked into the server log"
