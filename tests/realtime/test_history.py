"""History store: what a user would notice after a restart, a crash, a damaged or locked file."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from realtime.history import (
    SCHEMA_VERSION,
    HistoryStore,
    HistoryUnavailable,
    default_db_path,
    export_json,
    export_markdown,
    open_history,
)
from realtime.metrics import TurnMetrics, UsageTotals
from realtime.pricing import estimate_cost
from realtime.settings import Settings
from realtime.transcript import TranscriptItem

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-test-DO-NOT-STORE-0123456789abcdef"


def _jpeg(rgb: tuple[int, int, int]) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), rgb).save(buf, "JPEG", quality=80)
    return buf.getvalue()


JPEG = _jpeg((200, 30, 30))


def item(item_id: str, role: str, text: str = "", kind: str = "text", **extra) -> TranscriptItem:
    fields = dict(
        id=item_id,
        role=role,
        kind=kind,
        text=text,
        final=True,
        image_thumb=None,
        tool_name=None,
        tool_args=None,
        tool_result=None,
    )
    fields.update(extra)
    return TranscriptItem(**fields)


def settings(**changes) -> Settings:
    base = Settings.from_env(env={"OPENAI_API_KEY": KEY})
    return base.replace(**changes) if changes else base


def turn(turn_id: str, first_audio_ms: float | None, **usage: int) -> TurnMetrics:
    return TurnMetrics(
        turn_id=turn_id,
        started_at=time.monotonic(),
        first_audio_ms=first_audio_ms,
        first_text_ms=None if first_audio_ms is None else first_audio_ms - 50,
        usage=UsageTotals(responses=1, **usage),
    )


USAGE_1 = dict(input_text=100, input_audio=20, output_audio=30)
USAGE_2 = dict(input_text=100, input_image=800, output_text=12)


@pytest.fixture
def store(tmp_path):
    s = HistoryStore(tmp_path / "h.db")
    yield s
    s.close()


def record_sample(store: HistoryStore, instructions: str = "Be brief.") -> str:
    rec = store.recorder
    cid = rec.start_conversation(settings(instructions=instructions))
    on_update = rec.listener(cid)
    on_update(item("u1", "user", "What time is it in Paris?", kind="audio"))
    on_update(
        item(
            "t1",
            "tool",
            kind="tool_call",
            tool_name="get_datetime",
            tool_args='{"timezone": "Europe/Paris"}',
            tool_result='{"iso": "2025-01-01T12:00:00+01:00"}',
        )
    )
    on_update(item("a1", "assistant", "It is noon in Paris.", kind="audio"))
    on_update(turn("turn-1", 412.0, **USAGE_1))
    on_update(item("img1", "user", kind="image", image_thumb=JPEG))
    on_update(item("u2", "user", "What colour is this?"))
    on_update(item("a2", "assistant", "It looks red."))
    on_update(turn("turn-2", 388.0, **USAGE_2))
    rec.end_conversation(cid)
    assert rec.flush(5)
    return cid


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
    expected = estimate_cost(UsageTotals(**USAGE_1), "gpt-realtime") + estimate_cost(
        UsageTotals(**USAGE_2), "gpt-realtime"
    )
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


def test_the_same_item_finalised_twice_is_updated_not_duplicated(store):
    rec = store.recorder
    cid = rec.start_conversation(settings())
    on_update = rec.listener(cid)
    on_update(item("u1", "user", "helo", kind="audio"))
    on_update(item("a1", "assistant", "Hi."))
    on_update(item("u1", "user", "hello", kind="audio"))
    assert rec.flush(5)
    record = store.load(cid)
    assert [(i.item_id, i.text) for i in record.items] == [("u1", "hello"), ("a1", "Hi.")]


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


def test_markdown_export_has_every_turn_tool_call_and_image(store):
    record = store.load(record_sample(store))
    md = export_markdown(record)
    for text in ("What time is it in Paris?", "It is noon in Paris.", "What colour is this?", "It looks red."):
        assert text in md
    assert md.index("What time is it in Paris?") < md.index("It is noon in Paris.") < md.index("It looks red.")
    assert "get_datetime" in md and '"timezone": "Europe/Paris"' in md and "2025-01-01T12:00:00+01:00" in md
    assert "data:image/jpeg;base64," in md
    assert "Be brief." in md
    assert "| 412 |" in md and f"${record.summary.cost_usd:.4f}" in md


def test_json_export_round_trips_the_record(store):
    import base64

    record = store.load(record_sample(store))
    doc = json.loads(export_json(record))
    assert doc["id"] == record.id
    assert [i["text"] for i in doc["items"]] == [i.text for i in record.items]
    images = [i for i in doc["items"] if i["image_jpeg_base64"]]
    assert base64.b64decode(images[0]["image_jpeg_base64"]) == JPEG
    assert [t["input_tokens"] for t in doc["turns"]] == [120, 900]
    assert doc["settings"]["instructions"] == "Be brief."


def test_the_api_key_never_reaches_the_database_or_exports(tmp_path):
    store = HistoryStore(tmp_path / "h.db")
    cid = record_sample(store, instructions=f"My key is {KEY}, keep it secret")
    rec = store.recorder
    rec.listener(cid)(item("leak", "user", f"here it is: {KEY}"))
    assert rec.flush(5)
    record = store.load(cid)
    exported = export_markdown(record) + export_json(record)
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())  # db, -wal, -shm
    store.close()
    raw_after = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    for blob in (raw, raw_after, exported.encode()):
        assert KEY.encode() not in blob
    assert "api_key" not in record.settings
    assert "[redacted]" in record.settings["instructions"]


def test_listener_never_blocks_even_while_the_file_is_locked(tmp_path):
    store = HistoryStore(tmp_path / "h.db", busy_timeout_ms=100)
    rec = store.recorder
    cid = rec.start_conversation(settings())
    assert rec.flush(5)
    holder = sqlite3.connect(store.path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        on_update = rec.listener(cid)
        loop = asyncio.new_event_loop()
        try:

            async def feed() -> float:
                t0 = time.perf_counter()
                for n in range(500):
                    on_update(item(f"i{n}", "user", f"line {n}"))
                return time.perf_counter() - t0

            elapsed = loop.run_until_complete(feed())
        finally:
            loop.close()
        assert elapsed < 0.25, f"500 listener calls took {elapsed:.3f}s on the caller's loop"
        deadline = time.monotonic() + 5
        while rec.notice is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert rec.notice and "locked" in rec.notice
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert rec.flush(10)  # everything held during the lock is written afterwards
    assert [i.text for i in store.load(cid).items] == [f"line {n}" for n in range(500)]
    assert rec.notice is None
    store.close()


def test_close_flushes_and_joins_the_writer_thread(tmp_path):
    store = HistoryStore(tmp_path / "h.db")
    rec = store.recorder
    cid = rec.start_conversation(settings())
    for n in range(50):
        rec.listener(cid)(item(f"i{n}", "assistant", f"n{n}"))
    store.close()
    assert not rec.alive
    assert not [t for t in threading.enumerate() if t.name == "history-writer" and t.is_alive() and t is rec._thread]
    store.close()  # idempotent
    reopened = HistoryStore(tmp_path / "h.db")
    assert len(reopened.load(cid).items) == 50
    reopened.close()


_CHILD = textwrap.dedent("""
    import sys, time
    from realtime.history import HistoryStore
    from realtime.settings import Settings
    from realtime.transcript import TranscriptItem
    store = HistoryStore(sys.argv[1])
    rec = store.recorder
    cid = rec.start_conversation(Settings.from_env(env={}))
    print("cid", cid, flush=True)
    on_update = rec.listener(cid)
    pause = float(sys.argv[2])
    for n in range(100000):
        on_update(TranscriptItem(id=f"i{n}", role="user" if n % 2 else "assistant", kind="text",
                                 text=f"item {n} " + "x" * 200, final=True, image_thumb=None,
                                 tool_name=None, tool_args=None, tool_result=None))
        print(n, flush=True)
        if pause:
            time.sleep(pause)
""")


def _run_child_and_kill(db: Path, pause: float, kill_after: int) -> tuple[str, int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(db), str(pause)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        cid = proc.stdout.readline().split()[1]
        handed = -1
        while handed < kill_after:
            handed = int(proc.stdout.readline())
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(10)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return cid, handed


def test_a_killed_process_loses_at_most_the_item_in_progress(tmp_path):
    db = tmp_path / "h.db"
    # Items at a (fast) conversational pace: 20 ms apart; killed right after handing over item 30.
    cid, handed = _run_child_and_kill(db, pause=0.02, kill_after=30)
    store = HistoryStore(db)
    try:
        assert store.notice is None  # not damaged
        texts = [i.text.split()[1] for i in store.load(cid).items]
        assert texts == [str(n) for n in range(len(texts))]  # an unbroken prefix, in order
        assert len(texts) >= handed  # 0..handed were handed over: at most 1 lost
    finally:
        store.close()


def test_a_process_killed_mid_burst_leaves_a_sound_file_with_an_unbroken_prefix(tmp_path):
    db = tmp_path / "h.db"
    cid, handed = _run_child_and_kill(db, pause=0, kill_after=2000)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store = HistoryStore(db)
    try:
        texts = [i.text.split()[1] for i in store.load(cid).items]
        assert texts == [str(n) for n in range(len(texts))]
    finally:
        store.close()


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
    try:
        assert store is not None and notice and "damaged" in notice and "moved aside" in notice
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
        assert store is None and "locked" in notice
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
    assert store is None and "History is off" in notice


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


async def test_a_real_bridge_call_is_recorded_as_it_happens(engine, tmp_path):
    """Bridge -> listener -> writer thread, against the local engine: a camera frame, a typed
    message, a tool call and spoken replies all land in the store while the call is still up."""
    from realtime.settings import CameraSettings
    from tests.fakebrowser import BridgedCall, wait_until

    store = HistoryStore(tmp_path / "h.db")
    rec = store.recorder
    call_settings = Settings(
        api_key="test-key", base_url=engine.base_url, camera=CameraSettings(enabled=True, interval_s=30)
    )
    try:
        async with BridgedCall(call_settings, rgb=(255, 0, 0)) as call:
            await wait_until(lambda: call.bridge.snapshot().images_in_context >= 1, 15, "a camera frame")
            cid = rec.attach(call.bridge, call_settings)  # late on purpose: the frame is replayed
            assert rec.attach(call.bridge, call_settings) == cid  # idempotent: one record per call
            before = len(call.texts("assistant"))
            call.bridge.send_text("delayed add 2 and 5")
            reply = await call.reply_after(before, timeout=30)
            await wait_until(lambda: call.bridge.snapshot().turns, 15, "turn metrics")

            def stored():
                items = store.load(cid).items
                return any(i.role == "assistant" and "7" in i.text for i in items) and items

            items = await wait_until(stored, 10, "the reply in the history store")  # no flush: live
        rec.end_conversation(cid)
        assert rec.flush(5)
        record = store.load(cid)
        assert record.summary.ended_at is not None
        images = record.images
        assert images and images[0].image_jpeg[:2] == b"\xff\xd8"  # a real JPEG thumbnail
        assert [i.text for i in record.items if i.role == "user" and i.kind == "text"] == ["delayed add 2 and 5"]
        (tool,) = record.tool_calls
        assert tool.tool_name == "delayed_add" and "7" in tool.tool_result
        assert reply in [i.text for i in record.items if i.role == "assistant"]
        assert len({i.item_id for i in record.items}) == len(record.items)
        assert [s.id for s in store.list_conversations()] == [cid]
        assert record.turns and record.turns[0].latency_ms is not None
        assert record.settings["base_url"] == engine.base_url and "api_key" not in record.settings
        assert b"test-key" not in (tmp_path / "h.db").read_bytes() + (tmp_path / "h.db-wal").read_bytes()
        assert "delayed add 2 and 5" in export_markdown(record)
        del items
    finally:
        store.close()


# ---- the History page, run by Streamlit's own script runner (AppTest) -------------------------


@pytest.fixture
def page(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    db = tmp_path / "page" / "h.db"
    monkeypatch.setenv("REALTIME_HISTORY_DB", str(db))
    from realtime.history import close_process_stores, process_store

    store, notice = process_store()
    assert store is not None and notice is None
    yield store, AppTest.from_file(str(ROOT / "pages" / "3_History.py"), default_timeout=30)
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
    from streamlit.testing.v1 import AppTest

    db = tmp_path / "locked.db"
    sqlite3.connect(db).close()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    monkeypatch.setenv("REALTIME_HISTORY_DB", str(db))
    try:
        at = AppTest.from_file(str(ROOT / "pages" / "3_History.py"), default_timeout=30).run()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        from realtime.history import close_process_stores

        close_process_stores()
    assert not at.exception
    assert "locked" in at.warning[0].value and "still work" in at.info[0].value


def test_a_malformed_update_is_dropped_alone_and_recording_goes_on(store):
    class Broken:  # what a buggy producer might hand over
        role, kind, id, final = "user", "text", "bad", True

        @property
        def text(self):
            raise ValueError("no text here")

    rec = store.recorder
    cid = rec.start_conversation(settings())
    on_update = rec.listener(cid)
    on_update(item("a", "user", "before"))
    on_update(Broken())
    on_update(item("b", "assistant", "after"))
    assert rec.flush(5)
    assert [i.text for i in store.load(cid).items] == ["before", "after"]
    assert rec.dropped == 1 and "no text here" in rec.notice


def test_page_tells_a_call_in_progress_from_one_that_never_ended(page, tmp_path):
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
