"""The event inspector: this conversation's events (sent, received, and what the scenario's agents
did), newest first, each with a one-line summary (what a person wants to know about it) and its full
JSON in an expander."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import streamlit as st

from ui.format import byte_size, call_args, clock_time, escape_markdown, one_line

if TYPE_CHECKING:
    from realtime.eventlog import LoggedEvent

DIRECTION_LABELS = {"client": "→ sent", "server": "← received", "agent": ":violet[◆ agent]"}
# The direction filter's choices, with the words the page shows for them.
DIRECTION_FILTERS = {"all": "All", "client": "→ Sent", "server": "← Received", "agent": "◆ Agents"}


def is_delta(event_type: str) -> bool:
    """Streaming pieces (text, transcript, audio, arguments): many per reply, rarely interesting."""
    return event_type.endswith(".delta")


def filter_events(
    events: Sequence[LoggedEvent], *, types: Sequence[str], direction: str, limit: int, hide_deltas: bool = False
) -> list[LoggedEvent]:
    """Newest first, only the chosen types (all when empty) and direction ("all", "client", "server",
    "agent").
    `hide_deltas` drops streaming ``*.delta`` events unless their type was chosen explicitly."""
    wanted = set(types)
    out = [
        e
        for e in events
        if (e.type in wanted if wanted else not (hide_deltas and is_delta(e.type)))
        and (direction == "all" or e.direction == direction)
    ]
    out.reverse()
    return out[: max(limit, 0)]


# Payloads are the raw JSON the app or the provider sent (elided by the EventLog), of any shape: the
# readers below check what they find rather than trust a schema (a malformed event is logged too).
_EMPTY: Mapping[str, Any] = {}


def _object(value: object) -> Mapping[str, Any]:
    """A JSON object as a mapping; anything else (a string, a list, null) as an empty one."""
    return value if isinstance(value, Mapping) else _EMPTY


def _get(value: object, *path: str) -> object:
    """The value at `path` in nested JSON objects, or None where the path does not lead."""
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _num(value: object) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else one_line(value, 12) or "?"


def _quote(value: object, limit: int = 70) -> str:
    text = one_line(value, limit)
    return f"“{text}”" if text else ""


def _item_summary(item: object) -> str:
    if not isinstance(item, Mapping):
        return ""
    kind = item.get("type") or "item"
    if kind == "function_call":
        return f"{item.get('name') or 'tool'}({call_args(item.get('arguments'), 50)})"
    if kind == "function_call_output":
        return f"tool result {one_line(item.get('output'), 50)}"
    role = item.get("role") or ""
    parts = []
    for part in item.get("content") or ():
        if not isinstance(part, Mapping):
            continue
        ptype = part.get("type", "")
        if "image" in ptype:
            parts.append("[image]")
        elif part.get("text") or part.get("transcript"):
            parts.append(_quote(part.get("text") or part.get("transcript"), 50))
        elif "audio" in ptype:
            parts.append("[audio]")
    return " ".join(x for x in (role, kind if kind != "message" else "", *parts) if x)


def _usage_summary(usage: object) -> str:
    if not isinstance(usage, Mapping):
        return ""
    total = usage.get("total_tokens")
    if total is None:
        total = (usage.get("input_tokens") or 0) + (usage.get("output_tokens") or 0)
    return f"{int(total):,} tokens" if total else ""


def _names(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(one_line(v, 40) for v in value)
    return one_line(value, 60)


def _agent_summary(t: str, p: Mapping[str, Any]) -> str:
    """What a scenario's agent did (`agent.*` events: the fields of `realtime.agent_link`'s values)."""
    if t == "agent.HandedOff":
        return f"{one_line(p.get('source'), 40) or '?'} → {one_line(p.get('target'), 40) or '?'}"
    if t == "agent.AgentActive":
        return one_line(p.get("name"), 60)
    if t == "agent.GuardrailTripped":
        details = _names(p.get("details"))
        return f"{_names(p.get('guardrails')) or 'a guardrail'} stopped the reply" + (f": {details}" if details else "")
    if t in ("agent.ApprovalNeeded", "agent.ToolFinished"):
        tool = one_line(p.get("tool"), 40) or "tool"
        if t == "agent.ApprovalNeeded":
            call = f"{tool}({call_args(p.get('arguments'), 50)}) waits for approval"
        else:
            call = f"{tool} → {one_line(p.get('output'), 50)}"
        agent = one_line(p.get("agent"), 40)
        return f"{agent}: {call}" if agent else call
    if t == "agent.AgentFailed":
        return one_line(p.get("message"), 100)
    return ""


def event_summary(event: LoggedEvent) -> str:
    """A short phrase about one logged event ("" when the type says it all)."""
    p = event.payload
    t = event.type
    if event.direction == "agent" or t.startswith("agent."):
        return _agent_summary(t, p)
    if t == "error" or t.endswith(".failed"):
        return one_line(_get(p, "error", "message") or _get(p, "error", "code") or "", 100)
    if t in ("session.created", "session.updated", "session.update"):
        s = _object(p.get("session"))
        voice = _get(s, "audio", "output", "voice") or s.get("voice")
        audio_in = _get(s, "audio", "input")
        turn = audio_in.get("turn_detection") if isinstance(audio_in, Mapping) else None
        turn_text = turn.get("type") if isinstance(turn, Mapping) else None
        if isinstance(audio_in, Mapping) and "turn_detection" in audio_in and turn is None:
            turn_text = "push to talk"
        tools = s.get("tools")
        bits = [
            f"voice {voice}" if voice else "",
            turn_text or "",
            f"{len(tools)} tool{'s' if len(tools) != 1 else ''}" if isinstance(tools, list) else "",
        ]
        return ", ".join(b for b in bits if b)
    if t == "response.done":
        r = _object(p.get("response"))
        return ", ".join(b for b in (r.get("status") or "", _usage_summary(r.get("usage"))) if b)
    if t in (
        "conversation.item.create",
        "conversation.item.added",
        "conversation.item.done",
        "response.output_item.added",
        "response.output_item.done",
        "conversation.item.created",
    ):
        return _item_summary(p.get("item"))
    if t == "conversation.item.truncated":
        at = p.get("audio_end_ms")
        return f"cut at {int(at):,} ms of audio" if isinstance(at, (int, float)) else ""
    if t in ("input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped"):
        key = "audio_start_ms" if t.endswith("started") else "audio_end_ms"
        at = p.get(key)
        return f"at {int(at):,} ms" if isinstance(at, (int, float)) else ""
    if t.endswith("transcription.completed") or t.endswith("transcript.done"):
        return _quote(p.get("transcript"))
    if t.endswith("text.done"):
        return _quote(p.get("text"))
    if t == "response.function_call_arguments.done":
        return f"{p.get('name') or 'tool'}({call_args(p.get('arguments'), 50)})"
    if is_delta(t):
        delta = p.get("delta")
        if isinstance(delta, str) and delta.startswith("<base64"):
            return "audio chunk"
        return _quote(delta, 40)
    if t == "rate_limits.updated":
        limits = p.get("rate_limits")
        if isinstance(limits, list):
            return ", ".join(
                f"{one_line(x.get('name'), 20)} {_num(x.get('remaining'))}/{_num(x.get('limit'))} left"
                for x in limits[:2]
                if isinstance(x, Mapping)
            )
    if t == "(invalid)":
        return "not valid JSON: " + one_line(p.get("raw"), 60)
    return ""


def event_label(event: LoggedEvent) -> str:
    """The expander label: time, direction, type, size and the summary (markdown-escaped)."""
    label = (
        f"{clock_time(event.time)} · {DIRECTION_LABELS.get(event.direction, event.direction)} · "
        f"**{escape_markdown(event.type)}** · {byte_size(event.size_bytes)}"
    )
    summary = event_summary(event)
    return f"{label} — {escape_markdown(summary)}" if summary else label


def render_event_list(events: Sequence[LoggedEvent]) -> None:
    for event in events:
        with st.expander(event_label(event)):
            st.json(dict(event.payload), expanded=True)
