"""EventLog: bounded ring buffer, base64 elided, thread-safe, bad input logged not raised."""

from __future__ import annotations

import base64
import json
import os
import threading
from typing import Any

import pytest

from realtime.eventlog import MAX_STRING_CHARS, EventLog


def b64(n: int) -> str:
    return base64.b64encode(os.urandom(n)).decode()


def test_record_and_snapshot_fields():
    log = EventLog()
    ev: dict[str, Any] = {"type": "response.create", "response": {"instructions": "Say hi."}}
    logged = log.record("client", ev)
    (snap,) = log.snapshot()
    assert snap is logged
    assert (snap.seq, snap.direction, snap.type, snap.payload) == (1, "client", "response.create", ev)
    assert snap.size_bytes == len(json.dumps(ev, separators=(",", ":"))) == snap.size
    assert abs(snap.time - __import__("time").time()) < 5
    ev["response"]["instructions"] = "changed"  # the log keeps its own copy
    assert log.snapshot()[0].payload["response"]["instructions"] == "Say hi."


def test_audio_and_image_base64_elided():
    log = EventLog()
    audio = b64(30_000)
    image = "data:image/jpeg;base64," + b64(40_000)
    log.record("server", {"type": "response.output_audio.delta", "delta": audio, "item_id": "a1"})
    log.record("client", {"type": "input_audio_buffer.append", "audio": b64(100)})
    log.record(
        "client",
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_image", "image_url": image},
                    {"type": "input_text", "text": "what is this?"},
                ],
            },
        },
    )
    log.record("server", {"type": "whatever", "blob": b64(3000)})
    a, append, img, other = log.snapshot()
    assert a.payload["delta"] == f"<base64 audio: {len(audio):,} chars>" and a.payload["item_id"] == "a1"
    assert a.size_bytes > 30_000  # size is of the real event
    assert append.payload["audio"].startswith("<base64 audio:")
    url = img.payload["item"]["content"][0]["image_url"]
    assert url.startswith("data:image/jpeg;base64,<base64 image/jpeg: ") and len(url) < 80
    assert img.payload["item"]["content"][1]["text"] == "what is this?"
    assert other.payload["blob"].startswith("<base64: ")
    # transcripts are not base64 even when long, and text deltas are kept
    log.record("server", {"type": "response.output_audio_transcript.delta", "delta": "hello " * 100})
    assert log.snapshot()[-1].payload["delta"] == "hello " * 100


def test_long_strings_cut_and_memory_bounded():
    log = EventLog(maxlen=50)
    huge = "word " * 100_000
    for i in range(500):
        log.record("client", {"type": "session.update", "session": {"instructions": huge}, "i": i})
    snap = log.snapshot()
    assert len(snap) == len(log) == 50
    assert [e.payload["i"] for e in snap] == list(range(450, 500))
    assert [e.seq for e in snap] == list(range(451, 501))
    text = snap[-1].payload["session"]["instructions"]
    assert len(text) < MAX_STRING_CHARS + 40 and text.endswith(" chars)")
    assert snap[-1].size_bytes > 500_000


def test_raw_text_and_invalid_input_are_logged_not_raised():
    log = EventLog()
    log.record("server", '{"type": "session.created", "session": {}}')
    log.record("server", b"\xff\xfe not json")
    log.record("server", "[1, 2]")
    log.record("server", {"no": "type"})
    ok, bad, arr, untyped = log.snapshot()
    assert ok.type == "session.created" and ok.size_bytes == len('{"type": "session.created", "session": {}}')
    assert bad.type == "(invalid)" and "not json" in bad.payload["raw"]
    assert arr.type == "(invalid)"
    assert untyped.type == "(no type)"
    with pytest.raises(ValueError, match="direction"):
        log.record("sideways", {"type": "x"})  # type: ignore[arg-type]  # a programming error, not user input
    with pytest.raises(ValueError):
        EventLog(maxlen=0)


def test_types_since_seq_and_clear():
    log = EventLog(maxlen=3)
    for t in ("a", "b", "c", "d", "a"):
        log.record("server", {"type": t})
    assert log.types() == ("a", "b", "c", "d")  # also evicted ones, for the filter
    assert log.counts() == {"a": 2, "b": 1, "c": 1, "d": 1}
    assert [e.type for e in log.snapshot(since_seq=3)] == ["d", "a"]
    assert log.last_seq == 5
    log.clear()
    assert log.snapshot() == () and log.types() == ()


def test_concurrent_writers_and_readers():
    log = EventLog(maxlen=1000)
    errors: list[BaseException] = []

    def writer(direction):
        try:
            for i in range(2000):
                log.record(direction, {"type": f"t{i % 7}", "i": i})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader():
        try:
            for _ in range(300):
                seqs = [e.seq for e in log.snapshot()]
                assert seqs == sorted(seqs) and len(seqs) <= 1000
                log.types()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(d,)) for d in ("client", "server")]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert log.last_seq == 4000 and len(log) == 1000
    assert len({e.seq for e in log.snapshot()}) == 1000
