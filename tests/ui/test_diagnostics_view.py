"""ui/diagnostics_view.py: latency, usage and cost as people read them."""

from __future__ import annotations

from realtime.metrics import TurnMetrics, UsageTotals
from realtime.pricing import PRICES_AS_OF, estimate_cost
from ui.diagnostics_view import cost_metric, latency_summary, loss_text, price_date_line, turns_rows, usage_rows

USAGE = UsageTotals(input_text=100, input_audio=400, cached_text=20, output_text=50, output_audio=300, responses=1)


def _turn(audio, text, trigger="speech", status="completed", usage=USAGE):
    return TurnMetrics("t", 0.0, audio, text, usage, trigger, status)


def test_turn_rows_have_units_labels_and_cost():
    rows = turns_rows(
        [_turn(1467.4, 1452.0), _turn(None, 298.0, "text", "cancelled", UsageTotals())],
        model="gpt-realtime",
        backend="openai",
    )
    assert rows[0] == {
        "Turn": 1,
        "Started by": "your speech",
        "First audio": "1,467 ms",
        "First text": "1,452 ms",
        "Input tokens": "500",
        "Output tokens": "350",
        "Cost": f"${estimate_cost(USAGE, 'gpt-realtime'):.2f}",
        "Outcome": "completed",
    }
    assert rows[1]["First audio"] == "—" and rows[1]["Started by"] == "typed message"
    assert rows[1]["Outcome"] == "interrupted" and rows[1]["Cost"] == "$0.00"


def test_turn_rows_on_the_local_engine_are_free():
    (row,) = turns_rows([_turn(300.0, 250.0)], model="gpt-realtime", backend="local")
    assert row["Cost"] == "free (local engine)"
    (row,) = turns_rows([_turn(300.0, 250.0)], model="my-own-model", backend="openai")
    assert row["Cost"] == "price unknown"


def test_latency_summary():
    assert latency_summary([]) == "No turn has produced audio or text yet."
    assert latency_summary([_turn(400.0, 350.0)]) == "Time to first audio: median 400 ms (1 turn)."
    assert latency_summary([_turn(1467.0, 1.0), _turn(334.0, 1.0), _turn(500.0, 1.0)]) == (
        "Time to first audio: median 500 ms, best 334 ms, worst 1,467 ms over 3 turns."
    )
    # text-only conversations: the first text is what there is
    assert latency_summary([_turn(None, 120.0), _turn(None, 80.0)]) == (
        "Time to first text: median 100 ms, best 80 ms, worst 120 ms over 2 turns."
    )


def test_usage_rows():
    text, audio, image = usage_rows(USAGE)
    assert text == {"Tokens": "Text", "Input": "100", "of which cached": "20", "Output": "50"}
    assert audio["Input"] == "400" and audio["Output"] == "300"
    assert image["Input"] == "0" and image["Output"] == "—"


def test_cost_metric_says_free_for_the_local_engine():
    label, value, note = cost_metric(0.0123, backend="local", model="gpt-realtime")
    assert (label, value) == ("Estimated cost", "Free")
    assert note.startswith("Free (local engine)") and "$0.01" in note and "gpt-realtime" in note
    assert cost_metric(0.0, backend="local", model="x")[2] == "Free (local engine): the offline engine costs nothing."
    assert cost_metric(0.0123, backend="openai", model="gpt-realtime")[:2] == ("Estimated cost", "$0.01")
    label, value, note = cost_metric(0.0, backend="openai", model="mystery")
    assert value == "Price unknown" and "$" not in value and PRICES_AS_OF in note
    assert PRICES_AS_OF in cost_metric(0.0123, backend="openai", model="gpt-realtime-2.1")[2]


def test_price_date_line():
    assert price_date_line("openai", "gpt-realtime-2.1") == (
        f"Prices as of {PRICES_AS_OF} (OpenAI's published rates per 1M tokens)."
    )
    assert price_date_line("openai", "mystery") == f"Price unknown for mystery (price table as of {PRICES_AS_OF})."
    assert price_date_line("local", "gpt-realtime-2.1").startswith(f"Prices as of {PRICES_AS_OF}; the local engine")


def test_loss_text():
    assert loss_text(0, 100) == "0"
    assert loss_text(5, 995) == "5 (0.5 %)"
    assert loss_text(3, 0) == "3 (100.0 %)"


def test_connection_line():
    from realtime.bridge import BridgeSnapshot, RtcStats
    from ui.diagnostics_view import connection_line

    snap = BridgeSnapshot("connected", "assistant_speaking", None, (), (), UsageTotals(), 0.0, RtcStats(), "rtc_1")
    assert connection_line(snap, backend="local", model="gpt-realtime", live=True) == (
        "**Engine** Local (offline) · **Connection** Connected · **Now** Assistant speaking · "
        "**Model** `gpt-realtime` · **Call** `rtc_1`"
    )
    # the page's call has ended but the bridge never said so: not "Connected"
    assert connection_line(snap, backend="openai", model="m", live=False) == (
        "**Engine** OpenAI · **Connection** Call ended · **Model** `m` · **Call** `rtc_1`"
    )


def test_connection_line_while_reconnecting_and_after_the_page_ended_it():
    from tests.ui.snapshots import reconnecting
    from ui.diagnostics_view import connection_line

    line = connection_line(reconnecting(), backend="openai", model="m", live=True)
    assert line.startswith("**Engine** OpenAI · **Connection** Reconnecting… · **Model**")
    assert "**Connection** Call ended" in connection_line(reconnecting(), backend="openai", model="m", live=False)


def test_gaps_text():
    from realtime.rtc_stats import RtcStats
    from ui.diagnostics_view import gaps_text

    assert gaps_text(RtcStats()) == "No gaps in the audio so far."
    assert gaps_text(RtcStats(voice_underruns=1, voice_starved_ms=180.0)) == (
        "The assistant's voice ran out mid-reply 1 time (180 ms in all); mic audio arrived late for 0 ms in all."
    )
    assert gaps_text(RtcStats(voice_underruns=12, voice_starved_ms=2340.0, mic_late_ms=560.0)) == (
        "The assistant's voice ran out mid-reply 12 times (2.3 s in all); mic audio arrived late for 560 ms in all."
    )


def test_connection_line_says_when_the_audio_is_choppy_under_load_and_why():
    from tests.ui.snapshots import snapshot
    from ui.diagnostics_view import connection_line

    snap = snapshot("connected", overloaded="the server's media loop ran late 40% of the last 5 s")
    assert connection_line(snap, backend="local", model="m", live=True) == (
        "**Engine** Local (offline) · **Connection** Connected · **Now** Listening · "
        "**Audio** choppy, the server is overloaded: the server's media loop ran late 40% of the last 5 s · "
        "**Model** `m` · **Call** `rtc_1`"
    )
    assert "**Audio**" not in connection_line(snap, backend="local", model="m", live=False)
    assert "**Audio**" not in connection_line(snapshot("connected"), backend="local", model="m", live=True)


def test_replaced_rows_read_like_a_log():
    import datetime as dt

    from tests.ui.snapshots import replaced
    from ui.diagnostics_view import replaced_rows

    at = dt.datetime(2025, 3, 4, 10, 20, 30, 456_000).timestamp()
    rows = replaced_rows(
        [
            replaced(at=at, took_s=3.21, attempts=3, restored=12, cut=0),
            replaced("rollover", at=at + 60, took_s=0.012, reason="rollover at 55 min", restored=40, cut=4),
            replaced("resume", at=at + 120, took_s=0.8, reason="resumed", restored=3),
        ]
    )
    assert rows[0] == {
        "When": "10:20:30.456",
        "What": "Reconnect",
        "Why": "the realtime server ended the call",
        "Took": "3.2 s",
        "Attempts": "3",
        "Items restored": "12",
        "Left out": "0",
    }
    assert (rows[1]["What"], rows[1]["Took"], rows[1]["Left out"]) == ("Rollover", "12 ms", "4")
    assert (rows[2]["When"], rows[2]["What"], rows[2]["Took"]) == ("10:22:30.456", "Resume", "800 ms")
    assert replaced_rows([]) == []


def test_replaced_summary_counts_and_times_the_reconnects():
    from tests.ui.snapshots import replaced
    from ui.diagnostics_view import replaced_summary

    assert replaced_summary([]) == "No reconnects in this conversation."
    assert replaced_summary([replaced(at=0, took_s=1.44)]) == "1 call replaced: 1 reconnect. Reconnect time: 1.4 s."
    every = [
        replaced("rollover", at=0, took_s=0.012),
        replaced(at=1, took_s=3.2),
        replaced("resume", at=2, took_s=0.5),
        replaced(at=3, took_s=0.9),
        replaced(at=4, took_s=1.4),
    ]
    assert replaced_summary(every) == (
        "5 calls replaced: 3 reconnects, 1 resume, 1 rollover. Reconnect time: median 1.4 s, worst 3.2 s."
    )
    # no reconnect among them: no reconnect time
    assert (
        replaced_summary([replaced("rollover", at=0), replaced("rollover", at=1)]) == "2 calls replaced: 2 rollovers."
    )
