"""The History page, run by Streamlit's own script runner (AppTest): list, search, open, export,
delete, and what it says when history is empty, locked, or a call is still going."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from realtime.history import HistoryStore, close_process_stores, process_store
from tests.realtime.history.samples import item, record_sample, settings

ROOT = Path(__file__).resolve().parents[2]
PAGE = str(ROOT / "pages" / "3_History.py")


def test_history_page_loads_with_an_empty_history(tmp_path, monkeypatch):
    monkeypatch.setenv("REALTIME_HISTORY_DB", str(tmp_path / "history.db"))
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert [t.value for t in at.title] == ["History"]
    assert any(i.value.startswith("No conversations yet.") for i in at.info)


@pytest.fixture
def page(tmp_path, monkeypatch) -> Iterator[tuple[HistoryStore, AppTest]]:
    db = tmp_path / "page" / "h.db"
    monkeypatch.setenv("REALTIME_HISTORY_DB", str(db))
    store, notice = process_store()
    assert store is not None and notice is None
    yield store, AppTest.from_file(PAGE, default_timeout=30)
    close_process_stores()
    assert not [t for t in threading.enumerate() if t.name == "history-writer"]


def test_page_empty_history_explains_itself(page):
    _, at = page
    at.run()
    assert not at.exception
    assert "No conversations yet" in at.info[0].value


def test_page_lists_searches_opens_exports_and_deletes(page):
    store, at = page
    first = record_sample(store)
    rec = store.recorder
    other = rec.start_conversation(settings())
    rec.listener(other)(item("o1", "user", "Tell me a joke about llamas"))
    rec.listener(other)(item("o2", "user", kind="image", image_thumb=b"\xff\xd8 damaged"))
    rec.end_conversation(other)
    assert rec.flush(5)
    at.run()
    titles = [m.value for m in at.markdown if m.value.startswith("**")]
    assert titles == ["**Tell me a joke about llamas**", "**What time is it in Paris?**"]
    at.text_input(key="history.search").input("llama").run()
    assert [m.value for m in at.markdown if m.value.startswith("**")] == ["**Tell me a joke about llamas**"]
    at.text_input(key="history.search").input("zebra").run()
    assert "No saved conversation mentions" in at.info[0].value
    at.text_input(key="history.search").input("").run()

    at.button(key="history.open." + other).click().run()  # a damaged thumbnail is described
    assert not at.exception
    assert any("could not be read" in m.value for m in [*at.markdown, *at.caption])
    at.button(key="history.back").click().run()

    at.button(key="history.open." + first).click().run()
    assert not at.exception
    said = [m.value for m in at.markdown]
    for text in ("What time is it in Paris?", "It is noon in Paris.", "It looks red."):
        assert text in said, (text, said)
    assert any("get_datetime" in c.value.replace("\\", "") for c in at.caption)  # the tool call (markdown-escaped)
    assert len(at.get("image")) == 1  # the camera frame
    labels = {b.label for b in at.get("download_button")}
    assert labels == {"Markdown", "JSON"}
    assert [m.value for m in at.metric][2] == "2"  # turns

    at.button(key="history.delete_one").click().run()
    at.button(key="history.confirm_one.no").click().run()
    assert len(store.list_conversations()) == 2
    at.button(key="history.delete_one").click().run()
    at.button(key="history.confirm_one.yes").click().run()
    assert [s.id for s in store.list_conversations()] == [other]
    assert "Deleted the conversation." in at.success[0].value

    at.button(key="history.delete_all").click().run()
    assert "Delete all 1 saved conversations?" in at.warning[0].value
    at.button(key="history.confirm_all.yes").click().run()
    assert store.list_conversations() == ()
    assert "No conversations yet" in at.info[0].value
    assert not at.exception


def test_page_when_history_is_locked_says_so_and_does_not_crash(tmp_path, monkeypatch):
    db = tmp_path / "locked.db"
    sqlite3.connect(db).close()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    monkeypatch.setenv("REALTIME_HISTORY_DB", str(db))
    try:
        at = AppTest.from_file(PAGE, default_timeout=30).run()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        close_process_stores()
    assert not at.exception
    assert "locked" in at.warning[0].value and "still work" in at.info[0].value


def test_page_tells_a_call_in_progress_from_one_that_never_ended(page):
    store, at = page
    crashed = HistoryStore(store.path)  # another process's recorder that died mid-call
    gone = crashed.recorder.start_conversation(settings(), started_at=time.time() - 60)
    crashed.recorder.listener(gone)(item("g1", "user", "I was cut off"))
    crashed.close()
    live = store.recorder.start_conversation(settings())
    store.recorder.listener(live)(item("l1", "user", "Still talking"))
    assert store.recorder.flush(5)
    at.run()
    captions = {c.value for c in at.caption}
    assert any("(in progress)" in c for c in captions)
    assert any("(not ended cleanly)" in c for c in captions)
    store.recorder.end_conversation(live)
