"""The comparison report: totals per setup, the JSON file, the word diff and the offline HTML page."""

from __future__ import annotations

import io
import json
import re
import wave
from datetime import datetime
from typing import Any

import pytest
from PIL import Image

from realtime.replay.model import Comparison, ReplayTurn, ReplyResult, SetupRun
from realtime.replay.report import from_json, to_html, to_json, totals, word_diff


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 30)).save(buf, format="JPEG")
    return buf.getvalue()


def _wav() -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(24_000)
        w.writeframes(b"\x00\x00" * 240)
    return buf.getvalue()


JPEG, WAV = _jpeg(), _wav()
SCRIPT = "<script>alert(1)</script>"


def _comparison() -> Comparison:
    turns = (
        ReplayTurn(0, "typed", "What colour is this?", images=(JPEG,)),
        ReplayTurn(1, "spoken", "What time is it in Paris?", audio=b"\x01\x00" * 480),
        ReplayTurn(2, "typed", "Thanks, bye"),
    )
    original = SetupRun(
        name="original",
        label="Original conversation",
        voice="marin",
        model="gpt-realtime",
        backend="openai",
        results=(
            ReplyResult(0, "It looks red to me.", WAV, 400.0, 380.0, 100, 50, 0.001),
            ReplyResult(1, "It is noon in Paris.", None, None, 500.0, 120, 60, 0.002, ("get_time(Paris) -> 12:00",)),
            ReplyResult(2, "Goodbye!", None, 600.0, 550.0, 90, 20, 0.0005),
        ),
        seconds=0.0,
    )
    brief = SetupRun(
        name="preset:Brief",
        label="Preset “Brief” <b>",
        voice="cedar",
        model="gpt-realtime-mini",
        backend="openai",
        results=(
            ReplyResult(0, "It looks quite red to you.", WAV, 412.0, 380.0, 100, 30, 0.0021),
            ReplyResult(1, "", error="server error: rate limited"),
            ReplyResult(2, SCRIPT, None, None, 300.0, 80, 10, 0.0004),
        ),
        seconds=12.5,
    )
    local = SetupRun(
        name="current",
        label="Current sidebar setup",
        voice="af_heart",
        model="local-small",
        backend="local",
        results=(ReplyResult(0, "Red.", None, 250.0, 200.0, 70, 5, 0.0, ("look() -> red", "note(red) -> ok")),),
        error="connection lost",
        seconds=3.0,
    )
    return Comparison("conv-1", "What colour is this?", turns, (original, brief, local), 1_764_500_000.25)


# --- totals -----------------------------------------------------------------------------------------


def test_totals_of_a_complete_run():
    t = totals(_comparison().runs[0], 3)
    assert (t.turns, t.failed) == (3, 0)
    assert t.median_latency_ms == 500.0  # first audio 400, first text 500 (no audio), first audio 600
    assert (t.input_tokens, t.output_tokens, t.tool_calls) == (310, 130, 1)
    assert t.cost_usd == pytest.approx(0.0035)


def test_totals_count_failed_turns_and_skip_them_for_latency():
    t = totals(_comparison().runs[1], 3)
    assert t.failed == 1
    assert t.median_latency_ms == pytest.approx(356.0)  # median of 412 and 300: the failed turn has none
    assert t.cost_usd == pytest.approx(0.0025)


def test_totals_count_turns_a_stopped_run_never_reached_as_failed():
    t = totals(_comparison().runs[2], 3)
    assert (t.failed, t.tool_calls, t.median_latency_ms) == (2, 2, 250.0)


def test_totals_of_an_empty_run():
    t = totals(SetupRun("x", "X"), 2)
    assert (t.failed, t.median_latency_ms, t.cost_usd) == (2, None, 0.0)


# --- JSON -------------------------------------------------------------------------------------------


def test_json_round_trip_is_lossless():
    c = _comparison()
    assert from_json(to_json(c)) == c
    text = json.dumps(to_json(c))
    assert from_json(json.loads(text)) == c
    doc = json.loads(text)
    assert doc["format"] == "realtime-studio-comparison" and doc["version"] == 1
    assert isinstance(doc["turns"][0]["images"][0], str)  # bytes travel as base64
    assert isinstance(doc["turns"][1]["audio"], str) and doc["turns"][0]["audio"] is None
    del doc["turns"][0]["audio"]  # a file from before the user's voice was kept
    assert from_json(doc) == c


def test_json_round_trip_keeps_whole_number_floats():
    c = Comparison("c", "t", (), (SetupRun("o", "O", seconds=2.0),), 1_764_500_000.0)
    assert from_json(json.loads(json.dumps(to_json(c)))) == c


def _doc() -> dict[str, Any]:
    return json.loads(json.dumps(to_json(_comparison())))


def test_from_json_rejects_another_format():
    doc = _doc()
    doc["format"] = "something-else"
    with pytest.raises(ValueError, match=r"not a Realtime Studio comparison.*something-else"):
        from_json(doc)


def test_from_json_rejects_another_version():
    doc = _doc()
    doc["version"] = 2
    with pytest.raises(ValueError, match="version 2"):
        from_json(doc)


def test_from_json_names_a_missing_key():
    doc = _doc()
    del doc["runs"][1]["results"][0]["text"]
    with pytest.raises(ValueError, match=r"runs\[1\]\.results\[0\]: missing key 'text'"):
        from_json(doc)


def test_from_json_names_a_wrong_type():
    doc = _doc()
    doc["turns"][0]["index"] = "0"
    with pytest.raises(ValueError, match=r"turns\[0\]\.index: expected int, got str"):
        from_json(doc)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["turns"][1].update(kind="shouted"), r"turns\[1\]\.kind"),
        (lambda d: d["turns"][0].update(images=["not base64!"]), r"turns\[0\]\.images\[0\]: not valid base64"),
        (lambda d: d["runs"].append(3), r"comparison\.runs\[3\]: expected dict"),
        (lambda d: d["runs"][0]["results"][0].update(tool_calls="x"), r"tool_calls: expected list"),
        (lambda d: d["runs"][0]["results"][0].update(input_tokens=True), r"input_tokens: expected int, got bool"),
        (lambda d: d.pop("created_at"), r"comparison: missing key 'created_at'"),
    ],
)
def test_from_json_other_problems_are_value_errors(change, message):
    doc = _doc()
    change(doc)
    with pytest.raises(ValueError, match=message):
        from_json(doc)


def test_from_json_rejects_a_non_object():
    with pytest.raises(ValueError, match="JSON object"):
        from_json([])  # type: ignore[arg-type]


# --- word diff --------------------------------------------------------------------------------------


def test_word_diff_marks_added_and_removed_words():
    assert word_diff("It looks red to me.", "It looks quite red to you.") == [
        ("same", "It looks"),
        ("added", "quite"),
        ("same", "red to"),
        ("removed", "me."),
        ("added", "you."),
    ]


def test_word_diff_simple_cases():
    assert word_diff("", "") == []
    assert word_diff("the cat sat", "the  cat\nsat") == [("same", "the cat sat")]
    assert word_diff("the cat sat", "the dog sat") == [
        ("same", "the"),
        ("removed", "cat"),
        ("added", "dog"),
        ("same", "sat"),
    ]
    assert word_diff("", "hello there") == [("added", "hello there")]
    assert word_diff("hello there", "") == [("removed", "hello there")]


# --- HTML -------------------------------------------------------------------------------------------


def _cells(doc: str) -> list[tuple[str, str]]:
    """(run name, cell html) for every reply cell of the comparison table, row by row."""
    return re.findall(r'<td class="reply" data-run="([^"]*)">(.*?)</td>', doc, re.S)


def test_html_shows_every_reply_and_the_totals():
    doc = to_html(_comparison())
    assert doc.startswith("<!DOCTYPE html>")
    for reply in ("It looks red to me.", "It is noon in Paris.", "Goodbye!", "It looks quite red to you.", "Red."):
        assert reply in doc
    assert "<h1>Replay comparison: What colour is this?</h1>" in doc
    assert datetime.fromtimestamp(1_764_500_000.25).strftime("%Y-%m-%d %H:%M") in doc  # when it was made (local time)
    assert "first audio 412 ms · first text 380 ms · $0.0021" in doc
    assert "free" in doc  # the local engine
    assert "$0.0035" in doc and "1 of 3" in doc and "2 of 3" in doc and "356 ms" in doc
    assert "Stopped: connection lost" in doc
    assert "server error: rate limited" in doc
    assert "get_time(Paris) -&gt; 12:00" in doc


def test_html_embeds_images_and_audio_inline():
    doc = to_html(_comparison())
    assert doc.count("<audio") == 3  # two replies, and the spoken turn's own voice
    assert doc.count('src="data:audio/wav;base64,') == 3
    assert doc.count('<img class="thumb"') == 1 and 'src="data:image/jpeg;base64,' in doc
    assert "http://" not in doc and "https://" not in doc


def test_html_says_which_turns_a_stopped_run_never_reached():
    cells = [html for name, html in _cells(to_html(_comparison())) if name == "current"]
    assert len(cells) == 3
    assert "not replayed (the run stopped before this turn)" not in cells[0]
    assert all("not replayed (the run stopped before this turn)" in c for c in cells[1:])


def test_html_escapes_what_users_wrote():
    doc = to_html(_comparison())
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in doc
    assert "<script>alert" not in doc and "<script" not in doc
    assert "Preset “Brief” &lt;b&gt;" in doc and "<b>" not in doc


def test_html_diffs_only_the_replayed_columns_against_the_original():
    cells = _cells(to_html(_comparison()))
    assert [name for name, _ in cells[:3]] == ["original", "preset:Brief", "current"]
    assert all("<details" not in html for name, html in cells if name == "original")
    brief = [html for name, html in cells if name == "preset:Brief"]
    assert all("<summary>Differences from the original</summary>" in html for html in brief)
    assert "<ins>quite</ins>" in brief[0] and "<del>me.</del> <ins>you.</ins>" in brief[0]
    assert "<del>Goodbye!</del>" in brief[2]


def test_html_says_price_unknown_for_an_unpriced_model():
    c = _comparison()
    run = SetupRun("x", "X", model="mystery-model", backend="openai", results=(ReplyResult(0, "hi", cost_usd=0.0),))
    doc = to_html(Comparison(c.conversation_id, c.title, c.turns[:1], (c.runs[0], run), c.created_at))
    assert "price unknown" in doc
