"""ui/events_view.py: filtering and one-line summaries of logged events (real EventLog entries)."""

from __future__ import annotations

from typing import Any

from realtime.eventlog import Direction, EventLog, LoggedEvent
from ui.events_view import DIRECTION_FILTERS, event_label, event_summary, filter_events, is_delta


def _log(*events: tuple[Direction, dict[str, Any]]) -> tuple[LoggedEvent, ...]:
    log = EventLog()
    for direction, event in events:
        log.record(direction, event)
    return log.snapshot()


def _one(direction: Direction, event: dict[str, Any]) -> LoggedEvent:
    (logged,) = _log((direction, event))
    return logged


def test_filter_newest_first_by_type_direction_and_deltas():
    events = _log(
        ("server", {"type": "session.created", "session": {}}),
        ("client", {"type": "conversation.item.create", "item": {"type": "message", "role": "user"}}),
        ("server", {"type": "response.output_audio_transcript.delta", "delta": "Hel"}),
        ("server", {"type": "response.output_audio_transcript.delta", "delta": "lo"}),
        ("server", {"type": "response.done", "response": {"status": "completed"}}),
    )
    assert [e.type for e in filter_events(events, types=(), direction="all", limit=10)] == [
        "response.done",
        "response.output_audio_transcript.delta",
        "response.output_audio_transcript.delta",
        "conversation.item.create",
        "session.created",
    ]
    assert [e.type for e in filter_events(events, types=(), direction="all", limit=10, hide_deltas=True)] == [
        "response.done",
        "conversation.item.create",
        "session.created",
    ]
    # a delta type chosen explicitly is shown even when deltas are hidden
    chosen = filter_events(
        events, types=["response.output_audio_transcript.delta"], direction="all", limit=10, hide_deltas=True
    )
    assert [e.payload["delta"] for e in chosen] == ["lo", "Hel"]
    assert [e.type for e in filter_events(events, types=(), direction="client", limit=10)] == [
        "conversation.item.create"
    ]
    assert len(filter_events(events, types=(), direction="all", limit=2)) == 2
    assert is_delta("response.output_text.delta") and not is_delta("response.done")


def test_summaries_say_what_happened():
    assert event_summary(
        _one("server", {"type": "error", "error": {"type": "invalid_request_error", "message": "Unknown\nparameter"}})
    ) == ("Unknown parameter")
    assert event_summary(
        _one(
            "server",
            {
                "type": "response.done",
                "response": {
                    "status": "completed",
                    "usage": {"total_tokens": 1234, "input_tokens": 1000, "output_tokens": 234},
                },
            },
        )
    ) == ("completed, 1,234 tokens")
    assert (
        event_summary(
            _one(
                "client",
                {
                    "type": "session.update",
                    "session": {
                        "type": "realtime",
                        "audio": {"input": {"turn_detection": {"type": "server_vad"}}, "output": {"voice": "marin"}},
                        "tools": [{"name": "a"}, {"name": "b"}],
                    },
                },
            )
        )
        == "voice marin, server_vad, 2 tools"
    )
    assert (
        event_summary(
            _one("client", {"type": "session.update", "session": {"audio": {"input": {"turn_detection": None}}}})
        )
        == "push to talk"
    )
    assert event_summary(
        _one(
            "client",
            {
                "type": "conversation.item.create",
                "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello there"}]},
            },
        )
    ) == ("user “hello there”")
    image = _one(
        "client",
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_image", "image_url": "data:image/jpeg;base64," + "A" * 5000}],
            },
        },
    )
    assert event_summary(image) == "user [image]"
    assert (
        event_summary(
            _one(
                "server",
                {
                    "type": "response.function_call_arguments.done",
                    "name": "delayed_add",
                    "arguments": '{"a": 2, "b": 5}',
                },
            )
        )
        == "delayed_add(a=2, b=5)"
    )
    assert (
        event_summary(
            _one(
                "server",
                {"type": "conversation.item.input_audio_transcription.completed", "transcript": "hello studio"},
            )
        )
        == "“hello studio”"
    )
    assert (
        event_summary(_one("server", {"type": "input_audio_buffer.speech_started", "audio_start_ms": 1500}))
        == "at 1,500 ms"
    )
    assert event_summary(_one("server", {"type": "conversation.item.truncated", "audio_end_ms": 2400})) == (
        "cut at 2,400 ms of audio"
    )
    assert event_summary(_one("server", {"type": "response.output_audio.delta", "delta": "QUJD" * 100})) == (
        "audio chunk"
    )
    assert event_summary(
        _one(
            "server",
            {
                "type": "rate_limits.updated",
                "rate_limits": [
                    {"name": "requests", "limit": 5000, "remaining": 4999},
                    {"name": "tokens", "limit": 400000, "remaining": 399134},
                ],
            },
        )
    ) == ("requests 4,999/5,000 left, tokens 399,134/400,000 left")
    assert event_summary(_one("server", {"type": "output_audio_buffer.started"})) == ""


def test_bad_input_is_summarised_not_raised():
    log = EventLog()
    log.record("server", "{not json")
    (bad,) = log.snapshot()
    assert event_summary(bad) == "not valid JSON: {not json"
    weird = _one("server", {"type": "response.done", "response": "oops"})
    assert event_summary(weird) == ""
    odd_item = _one("server", {"type": "conversation.item.added", "item": {"content": ["x", None]}})
    assert event_summary(odd_item) == "item"


def test_label_has_time_direction_type_size_and_escaped_summary():
    label = event_label(
        _one("server", {"type": "response.output_audio_transcript.done", "transcript": "*bold* [link]"})
    )
    assert " · ← received · **response.output\\_audio\\_transcript.done** · " in label
    assert label.endswith("— “\\*bold\\* \\[link\\]”")
    assert " B — " in label


def test_session_update_without_turn_detection_is_not_push_to_talk():
    voice_only = _one("client", {"type": "session.update", "session": {"audio": {"output": {"voice": "sage"}}}})
    assert event_summary(voice_only) == "voice sage"


def test_what_the_agents_did_is_its_own_direction_with_summaries():
    events = _log(
        ("server", {"type": "session.created", "session": {}}),
        ("agent", {"type": "agent.AgentActive", "name": "front_desk"}),
        ("agent", {"type": "agent.HandedOff", "source": "front_desk", "target": "billing"}),
        ("client", {"type": "session.update", "session": {}}),
        (
            "agent",
            {"type": "agent.ApprovalNeeded", "call_id": "c1", "tool": "issue_refund", "arguments": '{"amount": 20}'}
            | {"agent": "billing"},
        ),
        ("agent", {"type": "agent.ToolFinished", "tool": "issue_refund", "output": '{"ok": true}', "agent": "billing"}),
        (
            "agent",
            {"type": "agent.GuardrailTripped", "guardrails": ["no_secrets"], "details": ["match: 1234"], "reply": "x"},
        ),
        ("agent", {"type": "agent.AgentFailed", "message": "The sideband\nclosed"}),
    )
    agents = filter_events(events, types=(), direction="agent", limit=10)
    assert [e.type.removeprefix("agent.") for e in agents] == [
        "AgentFailed",
        "GuardrailTripped",
        "ToolFinished",
        "ApprovalNeeded",
        "HandedOff",
        "AgentActive",
    ]
    assert [event_summary(e) for e in agents] == [
        "The sideband closed",
        "no_secrets stopped the reply: match: 1234",
        'billing: issue_refund → {"ok": true}',
        "billing: issue_refund(amount=20) waits for approval",
        "front_desk → billing",
        "front_desk",
    ]
    assert len(filter_events(events, types=(), direction="all", limit=10)) == 8
    assert [e.type for e in filter_events(events, types=(), direction="client", limit=10)] == ["session.update"]
    label = event_label(agents[-2])
    assert " · :violet[◆ agent] · **agent.HandedOff** · " in label and label.endswith("front\\_desk → billing")
    assert DIRECTION_FILTERS["agent"] == "◆ Agents" and list(DIRECTION_FILTERS) == ["all", "client", "server", "agent"]
    # an agent event missing its fields is summarised, not raised
    assert event_summary(_one("agent", {"type": "agent.HandedOff"})) == "? → ?"
