"""History, export and share links in the real app, driven through Debian's Chromium.

A conversation (typed messages, a tool call, camera frames) is saved while it happens; the app
server is restarted; the conversation is found on the History page with its transcript; its
Markdown export has every turn. A share link opened in a new tab reproduces the setup.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from realtime.history import HistoryStore
from tests.browser.conftest import launch
from tests.browser.driver import (
    LONG,
    go_to,
    items,
    open_app,
    screenshot,
    start_call,
    type_message,
    wait_assistant_text,
    wait_replies_finished,
)
from tests.browser.harness import VIEWPORT, clean_env, start_streamlit

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def history_db(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("history") / "realtime-studio.db"


def _wait_saved(db: Path, texts: list[str], timeout: float = 20.0) -> None:
    """Poll the database file (as another process would) until every text is stored."""
    deadline = time.monotonic() + timeout
    missing = texts
    while time.monotonic() < deadline:
        store = HistoryStore(db)
        try:
            stored = " ".join(i.text for s in store.list_conversations() for i in store.load(s.id).items)
        finally:
            store.close()
        missing = [t for t in texts if t not in stored]
        if not missing:
            return
        time.sleep(0.25)
    raise AssertionError(f"not saved to history within {timeout}s: {missing}")


def _bubble_texts(page: Page, role: str) -> list[str]:
    return [t.strip() for t in items(page, role).get_by_test_id("stMarkdownContainer").all_inner_texts()]


def test_a_conversation_survives_a_restart_and_exports_every_turn(playwright_instance, media, history_db, tmp_path):
    env = clean_env(REALTIME_HISTORY_DB=str(history_db))
    server = start_streamlit("history-before", env)
    browser = launch(playwright_instance, media["silence"], media["blue"])
    try:
        page = browser.new_context(viewport=VIEWPORT).new_page()
        open_app(page, server.url)
        start_call(page)
        type_message(page, "hello")
        wait_assistant_text(page, r"\w")
        type_message(page, "delayed add 2 and 5")
        wait_assistant_text(page, r"\b7\b")
        expect(page.get_by_text("This conversation is being saved to History")).to_be_visible(timeout=LONG)
        wait_replies_finished(page)
        assistant = [t for t in _bubble_texts(page, "assistant") if t]
        assert len(assistant) >= 2
        # Saved while the call is still up (not at exit): read the file from this process.
        _wait_saved(history_db, ["hello", "delayed add 2 and 5", *assistant])
    finally:
        browser.close()
        server.stop()  # the server goes away mid-call

    server = start_streamlit("history-after", env)
    browser = launch(playwright_instance, media["silence"], media["blue"])
    try:
        context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
        page = context.new_page()
        open_app(page, server.url)
        go_to(page, "History")
        expect(page.get_by_role("heading", name="History")).to_be_visible(timeout=LONG)
        entry = page.locator("[class*='st-key-conv-']").first
        expect(entry).to_contain_text("hello", timeout=LONG)
        expect(entry).to_contain_text("turn")
        screenshot(page, "history-list")
        entry.get_by_role("button", name="Open").click()
        transcript = page.locator(".st-key-history-transcript")
        expect(transcript).to_contain_text("delayed add 2 and 5", timeout=LONG)
        for text in assistant:
            expect(transcript).to_contain_text(text)
        expect(transcript).to_contain_text("delayed_add")  # the tool call breadcrumb
        expect(transcript.locator("img").first).to_be_visible()  # a camera frame thumbnail
        screenshot(page, "history-open")

        with page.expect_download() as download:
            page.get_by_role("button", name="Markdown").click()
        markdown = Path(download.value.path()).read_text()
        for text in ["hello", "delayed add 2 and 5", *assistant]:
            assert text in markdown, text
        assert "delayed_add" in markdown and "data:image/jpeg;base64," in markdown
        with page.expect_download() as download:
            page.get_by_role("button", name="JSON").click()
        assert '"format": "realtime-studio.conversation"' in Path(download.value.path()).read_text()
    finally:
        browser.close()
        server.stop()


def _sidebar_voice(page: Page):
    return page.get_by_test_id("stSidebar").get_by_role("combobox", name="Voice", exact=True)


def test_a_share_link_opened_in_a_new_tab_reproduces_the_setup(playwright_instance, media, history_db):
    server = start_streamlit("history-share", clean_env(REALTIME_HISTORY_DB=str(history_db)))
    browser = launch(playwright_instance, media["silence"], media["blue"])
    try:
        page = browser.new_context(viewport=VIEWPORT).new_page()
        open_app(page, server.url)
        sidebar = page.get_by_test_id("stSidebar")
        sidebar.get_by_text("Presets", exact=True).click()
        sidebar.get_by_test_id("stSelectbox").filter(has_text="Preset").first.click()
        page.get_by_role("option", name=re.compile("Tool demo")).click()
        sidebar.get_by_role("button", name="Load").click()
        expect(sidebar.get_by_text("Loaded preset “Tool demo”")).to_be_visible(timeout=LONG)
        expect(_sidebar_voice(page)).to_have_value("verse")
        sidebar.get_by_text("Share settings", exact=True).click()
        link = sidebar.locator("[class*='st-key-'] code, [data-testid='stCode'] code").filter(has_text="voice=").first
        expect(link).to_contain_text("voice=verse", timeout=LONG)  # follows the settings in force
        url = link.inner_text().strip()
        assert url.startswith(server.url) and "voice=verse" in url and "key=" not in url.replace("_key", "")
        screenshot(page, "share-settings")

        other = browser.new_context(viewport=VIEWPORT).new_page()  # another person, a new tab
        other.goto(url)
        expect(other.get_by_text("Opened a shared setup")).to_be_visible(timeout=LONG)
        expect(_sidebar_voice(other)).to_have_value("verse", timeout=LONG)
        instructions = other.get_by_test_id("stSidebar").get_by_role("textbox", name="Instructions")
        expect(instructions).to_have_value(re.compile("You demonstrate function tools"), timeout=LONG)
        screenshot(other, "share-opened")
    finally:
        browser.close()
        server.stop()
