"""ui/format.py: the words and numbers people read on the pages."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from ui import format as fmt


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ('{"a": 2, "b": 5}', "a=2, b=5"),
        ({"text": "hi there"}, 'text="hi there"'),
        ('{"when": null, "flag": true}', "when=null, flag=true"),
        ("{}", ""),
        (None, ""),
        ("", ""),
        ("not json at all", "not json at all"),
        ("[1, 2]", "[1, 2]"),
    ],
)
def test_call_args_read_like_a_call(args, expected):
    assert fmt.call_args(args) == expected


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ('{"sum": 7}', "7"),
        ({"text": "HELLO"}, "HELLO"),
        (
            '{"error": "Bad arguments for delayed_add: b is missing"}',
            "error: Bad arguments for delayed_add: b is missing",
        ),
        ('{"datetime": "2025-01-02T03:04:05", "timezone": "UTC"}', "datetime=2025-01-02T03:04:05, timezone=UTC"),
        ("{}", "done"),
        ("42", "42"),
        ("plain words", "plain words"),
        (None, "running…"),
        ("", "running…"),
    ],
)
def test_tool_outcome(result, expected):
    assert fmt.tool_outcome(result) == expected


def test_tool_breadcrumb_matches_the_product_wording():
    assert fmt.tool_breadcrumb("delayed_add", '{"a": 2, "b": 5}', '{"sum": 7}') == "🔧 delayed_add(a=2, b=5) → 7"
    assert fmt.tool_breadcrumb("get_datetime", "{}", None) == "🔧 get_datetime() → running…"
    assert fmt.tool_call_text(None, None, None) == "tool() → running…"
    assert fmt.tool_failed('{"error": "boom"}') and not fmt.tool_failed('{"sum": 1}') and not fmt.tool_failed(None)


def test_long_arguments_and_results_stay_on_one_short_line():
    args = json.dumps({"text": "word\n" * 200})
    crumb = fmt.tool_breadcrumb("echo_upper", args, json.dumps({"text": "WORD " * 200}))
    assert "\n" not in crumb
    assert len(crumb) < 200 and crumb.count("…") == 2


def test_compact_json():
    assert fmt.compact_json('{"a":1,\n "b":[1,2]}') == '{"a": 1, "b": [1, 2]}'
    assert fmt.compact_json('"quoted"') == '"quoted"'
    assert fmt.compact_json("not json") == "not json"
    assert fmt.compact_json(None) == ""
    assert fmt.compact_json("x" * 300, limit=10) == "x" * 9 + "…"


def test_one_line():
    assert fmt.one_line("  a\n\n b\tc ") == "a b c"
    assert fmt.one_line(None) == ""
    assert fmt.one_line("abcdef", 4) == "abc…"


def test_labels_fall_back_readably():
    assert fmt.state_label("connected") == "Connected"
    assert fmt.state_label(None) == "Not connected"
    assert fmt.state_label("half_open") == "Half open"
    assert fmt.activity_label("assistant_speaking") == "Assistant speaking"
    assert fmt.engine_label("local") == "Local (offline)" and fmt.engine_label("openai") == "OpenAI"
    assert fmt.engine_label(None) == "unknown"
    assert fmt.trigger_label("text") == "typed message" and fmt.trigger_label("odd_one") == "odd one"
    assert fmt.outcome_label("cancelled") == "interrupted" and fmt.outcome_label(None) == "—"


def test_labels_for_a_call_that_comes_back():
    assert fmt.state_label("reconnecting") == "Reconnecting…" and fmt.state_label("paused") == "Paused"
    assert fmt.outcome_label("reconnect") == "cut by a reconnect"
    assert [fmt.replaced_label(k) for k in ("reconnect", "resume", "rollover")] == ["Reconnect", "Resume", "Rollover"]
    assert fmt.replaced_label("new_kind") == "New kind" and fmt.replaced_label(None) == "—"


def test_short_duration_says_ms_under_a_second_and_tenths_of_seconds_above():
    assert fmt.short_duration(None) == "—" and fmt.short_duration(-1.0) == "—"
    assert fmt.short_duration(0.012) == "12 ms" and fmt.short_duration(0.8124) == "812 ms"
    assert fmt.short_duration(0.9996) == "1.0 s"  # as shown, never "1,000 ms"
    assert fmt.short_duration(1.44) == "1.4 s" and fmt.short_duration(59.9) == "59.9 s"
    assert fmt.short_duration(59.96) == "1 min 00 s" and fmt.short_duration(185) == "3 min 05 s"


def test_numbers_carry_units():
    assert fmt.ms(None) == "—" and fmt.ms(1467.4) == "1,467 ms" and fmt.ms(0) == "0 ms"
    assert fmt.seconds_as_ms(0.25) == "250 ms"
    assert fmt.count(None) == "—" and fmt.count(12345) == "12,345"
    assert fmt.percent(None) == "—" and fmt.percent(0) == "0 %" and fmt.percent(0.001) == "< 1 %"
    assert fmt.percent(0.42) == "42 %"
    assert fmt.byte_size(512) == "512 B" and fmt.byte_size(2048) == "2.0 KB" and fmt.byte_size(3 << 20) == "3.0 MB"
    assert fmt.duration(None) == "—" and fmt.duration(42) == "42 s"
    assert fmt.duration(185) == "3 min 05 s" and fmt.duration(3720) == "1 h 02 min"


def test_money():
    assert fmt.usd(None) == "—" and fmt.usd(0) == "$0.00"
    assert fmt.usd(0.00001) == "< $0.0001" and fmt.usd(0.0042) == "$0.0042" and fmt.usd(1.234) == "$1.23"
    assert fmt.cost_label(0.0, "local") == "free (local engine)"
    assert fmt.cost_label(0.5, "local") == "free (local engine)"  # priced as if OpenAI: still free here
    assert fmt.cost_label(0.0123, "openai") == "$0.01"
    assert fmt.cost_label(0.0, "openai", priced=False) == "price unknown"  # never $0.00
    assert fmt.codec_label("opus") == "Opus" and fmt.codec_label("PCMU") == "G.711 μ-law (PCMU)"
    assert fmt.codec_label("PCMA") == "G.711 A-law (PCMA)" and fmt.codec_label(None) == "—"
    assert fmt.codec_label("G722") == "G722"


def test_clock_time_has_milliseconds():
    ts = dt.datetime(2025, 3, 4, 5, 6, 7, 891_000).timestamp()
    assert fmt.clock_time(ts) == "05:06:07.891"
    assert fmt.clock_time(None) == "—"
