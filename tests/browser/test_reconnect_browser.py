"""The provider dies mid-conversation and comes back: the page reconnects by itself, with the context.

Tried as a new user would: Chromium with fake media, the app pointed at a standalone local engine with
OPENAI_BASE_URL. The engine is killed with SIGKILL and started again on the same port; nobody clicks.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from realtime.history import HistoryStore
from tests.browser.conftest import launch
from tests.browser.driver import (
    LONG,
    items,
    open_app,
    screenshot,
    start_call,
    status,
    stop_call,
    type_message,
    wait_assistant_text,
)
from tests.browser.harness import VIEWPORT, clean_env, free_port, start_engine_process, start_streamlit

pytestmark = pytest.mark.browser

SECRET = "my secret word is pineapple"


def _conversations(db: Path) -> list[tuple[str, list[str]]]:
    store = HistoryStore(db)
    try:
        return [(s.id, [i.text for i in store.load(s.id).items]) for s in store.list_conversations()]
    finally:
        store.close()


def test_killing_the_engine_mid_conversation_reconnects_by_itself_with_the_context(
    playwright_instance, media, tmp_path
):
    port = free_port()
    engine = start_engine_process(clean_env(), port=port)
    db = tmp_path / "realtime-studio.db"
    server = start_streamlit(
        "reconnect", clean_env(OPENAI_API_KEY="test-key", OPENAI_BASE_URL=engine.base_url, REALTIME_HISTORY_DB=str(db))
    )
    browser = launch(playwright_instance, media["silence"], media["blue"])
    try:
        page = browser.new_context(viewport=VIEWPORT).new_page()
        open_app(page, server.url)
        start_call(page)
        type_message(page, SECRET)
        wait_assistant_text(page, SECRET)

        engine.process.send_signal(signal.SIGKILL)
        engine.process.wait(timeout=10)
        expect(status(page)).to_contain_text("Connection lost", timeout=LONG)
        screenshot(page, "reconnect-1-lost")

        engine = start_engine_process(clean_env(), port=port)
        back = time.monotonic()
        expect(status(page)).to_contain_text("Reconnected in", timeout=10_000)
        took = time.monotonic() - back
        expect(status(page)).to_contain_text("items restored")
        screenshot(page, "reconnect-2-back")
        print(f"RECONNECT (browser): the call bar said reconnected {took:.1f} s after the engine was back")

        type_message(page, "what did I say first?")
        wait_assistant_text(page, f"You first said: {SECRET}")
        user_texts = items(page, "user").all_inner_texts()
        assert sum(SECRET in t for t in user_texts) == 1  # the first exchange, shown once
        expect(items(page, "assistant").filter(has_text=f"You said: {SECRET}")).to_have_count(1)
        stop_call(page)
        assert "Traceback" not in page.inner_text("body")
    finally:
        browser.close()
        server.stop()
        engine.stop()
    (conversation,) = _conversations(db)  # History keeps one conversation across the reconnect
    _, texts = conversation
    assert SECRET in texts and "what did I say first?" in texts
