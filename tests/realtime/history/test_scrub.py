"""The API key (and any other secret) never reaches the history file or an export."""

from __future__ import annotations

from realtime.history import HistoryStore, export_json, export_markdown, settings_record
from realtime.settings import IceServer
from tests.realtime.history.samples import KEY, item, record_sample, settings


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
    instructions = record.settings["instructions"]
    assert isinstance(instructions, str) and "[redacted]" in instructions


def test_settings_record_drops_secret_fields_and_names_the_backend():
    turn_password = "turn-password-0123"
    s = settings(ice_servers=(IceServer(urls=("turn:example.org",), username="me", credential=turn_password),))
    record = settings_record(s)
    assert record["backend"] == "openai" and record["model"] == s.model
    assert "api_key" not in record and KEY not in str(record)
    assert record["max_output_tokens"] == s.max_output_tokens  # a token count, not a secret token
    assert record["ice_servers"] == [{"urls": ["turn:example.org"], "username": "me"}]
    assert turn_password not in str(record)
    assert record["turn_detection"] == {
        "mode": "server_vad",
        "threshold": 0.5,
        "silence_ms": 500,
        "prefix_padding_ms": 300,
        "eagerness": "auto",
        "idle_timeout_ms": None,
    }
