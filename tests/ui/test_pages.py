"""The Events and Diagnostics pages (AppTest): empty states, and a conversation's log and figures.

The conversation is a real (never started) Bridge whose EventLog holds real events: the state a tab
is in after a call ended."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from realtime.bridge import Bridge
from realtime.image_log import SentImage
from realtime.pricing import PRICES_AS_OF
from realtime.settings import Settings
from ui.conversation import Conversation

ROOT = Path(__file__).resolve().parents[2]
CONV_KEY = "realtime_studio.conversation"


class _Sink:
    def push(self, pcm: bytes) -> None:
        pass

    def clear(self) -> None:
        pass


@pytest.fixture
def ended_call():
    bridge = Bridge(Settings(), _Sink())
    bridge.events.record("server", {"type": "session.created", "session": {"audio": {"output": {"voice": "marin"}}}})
    bridge.events.record(
        "client",
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello studio"}]},
        },
    )
    for piece in ("You ", "said"):
        bridge.events.record("server", {"type": "response.output_text.delta", "delta": piece})
    bridge.events.record(
        "server", {"type": "response.done", "response": {"status": "completed", "usage": {"total_tokens": 42}}}
    )
    conv = Conversation(Settings())
    conv._last_bridge = bridge
    yield conv
    bridge.close(timeout=1.0)


def _page(name: str, conv: Conversation | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / name), default_timeout=30)
    if conv is not None:
        at.session_state[CONV_KEY] = conv
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


@pytest.mark.parametrize("name", ["1_Events.py", "2_Diagnostics.py", "4_Vision.py"])
def test_without_a_conversation_the_page_says_what_it_will_show(name):
    at = _page(name)
    (info,) = at.info
    assert info.value.startswith("No conversation in this tab yet.")
    assert "**Start conversation**" in info.value


def test_events_page_lists_the_log_with_summaries(ended_call):
    at = _page("1_Events.py", ended_call)
    assert any("last conversation (it has ended)" in c.value for c in at.caption)
    labels = [e.label for e in at.expander]
    assert len(labels) == 3  # the two deltas are hidden by default
    assert "**response.done** · " in labels[0] and labels[0].endswith("— completed, 42 tokens")
    assert "→ sent" in labels[1] and labels[1].endswith("— user “hello studio”")
    assert "**session.created**" in labels[2] and labels[2].endswith("— voice marin")
    assert any(
        "5 events in this conversation · showing the newest 3 · 2 streaming pieces hidden" in c.value
        for c in at.caption
    )

    at.toggle(key="ev_hide_deltas").set_value(False).run()
    assert len(at.expander) == 5
    at.segmented_control(key="ev_dir").set_value("client").run()
    assert [e.label.endswith("“hello studio”") for e in at.expander] == [True]
    at.multiselect(key="ev_types").set_value(["session.created"]).run()  # received, not sent
    assert at.info[0].value == "No event matches these filters yet."


def test_diagnostics_page_reads_like_a_product(ended_call):
    at = _page("2_Diagnostics.py", ended_call)
    assert at.markdown[0].value.startswith("**Engine** Local (offline) · **Connection** Not connected")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Estimated cost"] == "Free"
    assert any(c.value.startswith("Free (local engine)") for c in at.caption)
    assert metrics["Round-trip time"] == "—" and metrics["Mic level"] == "silent"
    assert any(i.value.startswith("No completed turn yet") for i in at.info)
    assert [s.value for s in at.subheader] == [
        "WebRTC to the model",
        "Reconnects",
        "Latency per turn",
        "Tokens and cost",
    ]
    assert any(c.value == "No reconnects in this conversation." for c in at.caption)


@pytest.fixture
def running_call(ended_call, monkeypatch):
    """`ended_call` as a running call; the test sets the snapshot its bridge returns."""
    bridge = ended_call.latest_bridge
    ended_call._bridge = bridge

    def showing(snap):
        monkeypatch.setattr(bridge, "snapshot", lambda: snap)
        return ended_call

    return showing


@pytest.mark.parametrize("state", ["reconnecting", "paused"])
def test_pages_keep_following_a_call_that_is_away(running_call, state):
    from tests.ui.snapshots import snapshot

    conv = running_call(snapshot(state))
    at = _page("1_Events.py", conv)
    assert any(c.value.startswith("The conversation is running") for c in at.caption)
    at = _page("2_Diagnostics.py", conv)
    assert any(c.value.startswith("The conversation is running") for c in at.caption)
    assert f"**Connection** {'Reconnecting…' if state == 'reconnecting' else 'Paused'}" in at.markdown[0].value


def test_diagnostics_lists_the_reconnects_and_says_press_reconnect(running_call):
    from tests.ui.snapshots import GAVE_UP, replaced, snapshot

    history = (replaced(at=1_750_000_000.0, took_s=1.44), replaced("rollover", at=1_750_000_060.0, took_s=0.012))
    conv = running_call(snapshot("failed", error=GAVE_UP, reconnectable=True, replaced=history))
    at = _page("2_Diagnostics.py", conv)
    (error,) = at.error
    assert error.value.startswith("Could not reconnect:") and error.value.endswith(
        "Press Reconnect to try again, or Stop."
    )
    assert any(c.value == "2 calls replaced: 1 reconnect, 1 rollover. Reconnect time: 1.4 s." for c in at.caption)
    (table,) = [t for t in at.table if "What" in t.value.columns]
    assert list(table.value["What"]) == ["Reconnect", "Rollover"] and list(table.value["Took"]) == ["1.4 s", "12 ms"]


def usage_script(snap, backend, model):
    from ui.diagnostics_view import render_usage

    render_usage(snap, backend=backend, model=model)


def test_diagnostics_tokens_and_cost_on_openai():
    from realtime.bridge import BridgeSnapshot, RtcStats
    from realtime.metrics import UsageTotals
    from realtime.pricing import estimate_cost

    usage = UsageTotals(input_text=1000, input_audio=2000, cached_text=400, output_audio=3000, responses=2)
    snap = BridgeSnapshot(
        "closed", "idle", None, (), (), usage, estimate_cost(usage, "gpt-realtime"), RtcStats(), "call_1"
    )
    at = AppTest.from_function(usage_script, kwargs={"snap": snap, "backend": "openai", "model": "gpt-realtime"})
    at.run(timeout=30)
    assert not at.exception
    (table,) = at.table
    assert list(table.value.index) == ["Text", "Audio", "Image"]
    assert table.value.loc["Text", "of which cached"] == "400" and table.value.loc["Audio", "Output"] == "3,000"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Input tokens"] == "3,000" and metrics["Output tokens"] == "3,000" and metrics["Responses"] == "2"
    assert metrics["Estimated cost"] == f"${snap.cost_usd:.2f}" and snap.cost_usd > 0.1
    assert not any("local engine" in c.value for c in at.caption)
    assert any(c.value == f"Prices as of {PRICES_AS_OF} (OpenAI's published rates per 1M tokens)." for c in at.caption)


def test_diagnostics_says_price_unknown_for_an_unpriced_model_never_zero():
    from realtime.bridge import BridgeSnapshot, RtcStats
    from realtime.metrics import UsageTotals

    usage = UsageTotals(input_text=1000, output_audio=3000, responses=1)
    snap = BridgeSnapshot("closed", "idle", None, (), (), usage, 0.0, RtcStats(), "call_1")
    at = AppTest.from_function(usage_script, kwargs={"snap": snap, "backend": "openai", "model": "my-own-model"})
    at.run(timeout=30)
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Estimated cost"] == "Price unknown"
    assert not any("$0" in str(m.value) for m in at.metric)
    assert any(c.value == f"Price unknown for my-own-model (price table as of {PRICES_AS_OF})." for c in at.caption)


def rtc_script(snap):
    from ui.diagnostics_view import render_rtc

    render_rtc(snap)


@pytest.mark.parametrize("codec, shown", [("PCMU", "G.711 μ-law (PCMU)"), ("opus", "Opus"), (None, "—")])
def test_diagnostics_shows_the_negotiated_codec(codec, shown):
    from realtime.bridge import BridgeSnapshot, RtcStats
    from realtime.metrics import UsageTotals

    snap = BridgeSnapshot("connected", "idle", None, (), (), UsageTotals(), 0.0, RtcStats(codec=codec), "call_1")
    at = AppTest.from_function(rtc_script, kwargs={"snap": snap})
    at.run(timeout=30)
    assert not at.exception
    assert any(f"Audio codec to the model: **{shown}**" in c.value for c in at.caption)


def test_vision_page_lists_the_images_the_model_was_shown(ended_call):
    bridge = ended_call.latest_bridge
    bridge.image_log.sent(SentImage("img_1", 1_000.0, "camera", 640, 480, 31_000, "auto", b""))
    at = _page("4_Vision.py", ended_call)
    assert any(c.value.startswith("1 image sent (1 from the camera)") for c in at.caption)
    assert any("640 × 480 px" in c.value for c in at.caption)


@pytest.fixture
def api_call():
    from realtime.external_calls import external_calls
    from realtime.settings import Connection
    from realtime.sideband_call import CallSetup, SidebandCall
    from realtime.tools import DEFAULT_TOOLS

    setup = CallSetup(Settings(), DEFAULT_TOOLS)
    call = SidebandCall("rtc_api_call_0001", setup, Connection("http://127.0.0.1:9/v1", "k"))
    call._on_message(json.dumps({"type": "session.created", "session": {"audio": {"output": {"voice": "cedar"}}}}))
    registry = external_calls()
    registry.add(call)
    yield call
    registry._calls.pop(call.call_id, None)


def test_an_api_call_is_offered_beside_this_tab(ended_call, api_call):
    at = _page("1_Events.py", ended_call)
    (picker,) = at.selectbox
    assert picker.label == "Call"
    assert picker.options[0] == "This tab"
    assert picker.options[1].startswith("API client · rtc_api_call_0 · ")
    assert picker.value == "rtc_api_call_0001"  # this tab's call has ended: the live one is shown first
    assert any(e.label.endswith("— voice cedar") for e in at.expander)
    assert any(e.label.startswith("Transcript (") for e in at.expander)  # an API call's transcript is shown here
    picker.set_value("this-tab").run()
    assert any(e.label.endswith("— voice marin") for e in at.expander)
    at.selectbox[0].set_value("rtc_api_call_0001").run()
    # the choice holds on the other pages
    diagnostics = AppTest.from_file(str(ROOT / "pages" / "2_Diagnostics.py"), default_timeout=30)
    diagnostics.session_state[CONV_KEY] = ended_call
    diagnostics.session_state["watched_call"] = "rtc_api_call_0001"
    diagnostics.run()
    assert diagnostics.selectbox[0].value == "rtc_api_call_0001"
    assert any("the studio sees its events, not its WebRTC statistics" in c.value for c in diagnostics.caption)


def test_without_a_tab_call_the_api_call_is_shown(api_call):
    at = _page("1_Events.py")
    assert at.selectbox[0].value == "rtc_api_call_0001"
    assert any(e.label.endswith("— voice cedar") for e in at.expander)
