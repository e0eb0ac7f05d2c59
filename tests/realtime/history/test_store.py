"""The history store: what a user would notice after a restart, or with a damaged or locked file."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from realtime.history import (
    SCHEMA_VERSION,
    HistoryStore,
    HistoryUnavailable,
    default_db_path,
    export_markdown,
    open_history,
)
from realtime.metrics import UsageTotals
from realtime.pricing import estimate_cost
from tests.realtime.history.samples import JPEG, USAGE_1, USAGE_2, item, record_sample, settings


def test_a_conversation_reads_back_in_order_with_images_tools_and_turns(store):
    cid = record_sample(store)
    record = store.load(cid)
    assert [i.item_id for i in record.items] == ["u1", "t1", "a1", "img1", "u2", "a2"]
    assert [i.role for i in record.items] == ["user", "tool", "assistant", "user", "user", "assistant"]
    assert record.items[2].text == "It is noon in Paris."
    (call,) = record.tool_calls
    assert call.tool_name == "get_datetime"
    assert json.loads(call.tool_args) == {"timezone": "Europe/Paris"}
    assert json.loads(call.tool_result)["iso"].startswith("2025-01-01T12")
    (image,) = record.images
    assert image.image_jpeg == JPEG
    assert [t.latency_ms for t in record.turns] == [412.0, 388.0]
    assert [t.output_tokens for t in record.turns] == [30, 12]
    assert record.settings["instructions"] == "Be brief."
    summary = record.summary
    assert summary.turns == 2
    model = settings().model
    expected = estimate_cost(UsageTotals(**USAGE_1), model) + estimate_cost(UsageTotals(**USAGE_2), model)
    assert expected > 0 and summary.cost_usd == pytest.approx(expected)
    assert record.turns[0].turn_id == "turn-1" and record.turns[1].input_tokens == 900
    assert summary.first_user_line == "What time is it in Paris?"
    assert summary.ended_at is not None and summary.duration_s >= 0


def test_history_survives_reopening_the_file(tmp_path):
    first = HistoryStore(tmp_path / "h.db")
    cid = record_sample(first)
    first.close()
    again = HistoryStore(tmp_path / "h.db")
    try:
        assert [s.id for s in again.list_conversations()] == [cid]
        assert len(again.load(cid).items) == 6
    finally:
        again.close()


def test_list_is_newest_first_and_search_matches_any_text(store):
    rec = store.recorder
    old = rec.start_conversation(settings(), started_at=time.time() - 3600)
    rec.listener(old)(item("x1", "user", "Tell me about 100% cotton_shirts"))
    rec.end_conversation(old, ended_at=time.time() - 3500)
    new = record_sample(store)
    assert [s.id for s in store.list_conversations()] == [new, old]
    assert store.list_conversations()[1].duration_s == pytest.approx(100, abs=1)
    assert [s.id for s in store.list_conversations("PARIS")] == [new]
    assert [s.id for s in store.list_conversations("get_datetime")] == [new]  # tool name
    assert [s.id for s in store.list_conversations("Europe/Paris")] == [new]  # tool arguments
    assert [s.id for s in store.list_conversations("100% cotton_")] == [old]  # LIKE wildcards literal
    assert store.list_conversations("0% c") == store.list_conversations("100% c")
    assert store.list_conversations("nothing like this") == ()
    assert len(store.list_conversations("   ")) == 2


def test_delete_one_and_delete_all(store):
    a = record_sample(store)
    b = record_sample(store)
    assert store.delete(a) is True
    assert store.delete(a) is False
    assert [s.id for s in store.list_conversations()] == [b]
    with pytest.raises(KeyError):
        store.load(a)
    with sqlite3.connect(store.path) as conn:  # no orphan rows left behind
        assert conn.execute("SELECT COUNT(*) FROM items WHERE conversation_id = ?", (a,)).fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM images WHERE conversation_id = ?", (a,)).fetchone()[0] == 0
    assert store.delete_all() == 1
    assert store.list_conversations() == ()


def test_a_garbage_file_is_moved_aside_and_a_fresh_history_started(tmp_path):
    db = tmp_path / "h.db"
    junk = b"this is not a database, it is a shopping list\n" * 100
    db.write_bytes(junk)
    store = HistoryStore(db)
    try:
        asides = [p for p in tmp_path.iterdir() if p.name.startswith("h.db.corrupt-")]
        assert len(asides) == 1 and asides[0].read_bytes() == junk  # moved, not deleted
        assert store.notice and "moved aside" in store.notice and asides[0].name in store.notice
        assert "fresh" in store.notice
        cid = record_sample(store)  # and it records again
        assert [s.id for s in store.list_conversations()] == [cid]
    finally:
        store.close()


def test_a_damaged_page_inside_a_real_database_is_detected(tmp_path):
    db = tmp_path / "h.db"
    first = HistoryStore(db)
    for _ in range(20):
        record_sample(first, instructions="x" * 3000)
    first.close()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(db.read_bytes())
    page = 4096
    assert len(data) > 6 * page
    data[2 * page : 5 * page] = b"\x5a" * (3 * page)  # scribble over pages 3..5 (the header stays valid)
    db.write_bytes(bytes(data))
    store, notice = open_history(db)
    assert store is not None
    try:
        assert notice and "damaged" in notice and "moved aside" in notice
        assert store.list_conversations() == ()
    finally:
        store.close()


def test_a_locked_file_turns_recording_off_with_a_clear_message(tmp_path):
    db = tmp_path / "h.db"
    sqlite3.connect(db).close()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        t0 = time.monotonic()
        with pytest.raises(HistoryUnavailable) as err:
            HistoryStore(db, busy_timeout_ms=200)
        assert time.monotonic() - t0 < 5
        assert "locked" in err.value.message and "disabled" in err.value.message
        store, notice = open_history(db, busy_timeout_ms=200)
        assert store is None and notice is not None and "locked" in notice
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not [p for p in tmp_path.iterdir() if "corrupt" in p.name]  # a lock is not damage
    store = HistoryStore(db)
    store.close()


def test_a_file_from_a_newer_version_is_left_untouched(tmp_path):
    db = tmp_path / "h.db"
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    before = db.read_bytes()
    with pytest.raises(HistoryUnavailable, match="newer version"):
        HistoryStore(db)
    assert db.read_bytes() == before


def test_an_unwritable_location_is_a_message_not_a_crash(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store, notice = open_history(blocker / "sub" / "h.db")
    assert store is None and notice is not None and "History is off" in notice


def test_the_path_comes_from_the_environment_with_a_default():
    assert default_db_path(env={}) == Path("./data/realtime-studio.db")
    assert default_db_path(env={"REALTIME_HISTORY_DB": "/tmp/x.db"}) == Path("/tmp/x.db")


def test_the_database_uses_wal_and_a_schema_version(store):
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_an_empty_history_reads_sensibly(store):
    assert store.list_conversations() == ()
    assert store.list_conversations("anything") == ()
    cid = store.recorder.start_conversation(settings())
    store.recorder.end_conversation(cid)
    assert store.recorder.flush(5)
    (summary,) = store.list_conversations()
    assert summary.turns == 0 and summary.first_user_line == "" and summary.cost_usd == 0
    md = export_markdown(store.load(cid))
    assert "Nothing was said" in md
