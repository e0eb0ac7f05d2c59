"""A saved conversation as a file to take away: readable Markdown, or the whole record as JSON."""

from __future__ import annotations

import base64
import datetime as _dt
import json

from .records import ConversationRecord

__all__ = ["export_json", "export_markdown", "format_duration"]


def _fmt_time(ts: float | None) -> str:
    if ts is None:
        return "?"
    return _dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def format_duration(seconds: float) -> str:
    """``42s``, ``3m 05s``, ``1h 02m 05s``."""
    seconds = max(0, round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h {m:02d}m {s:02d}s"
    if m:
        return f"{m}m {s:02d}s"
    return f"{s}s"


_ROLE_LABEL = {"user": "User", "assistant": "Assistant", "tool": "Tool", "error": "Error", "system": "System"}


def _fence(text: str, lang: str = "") -> str:
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}{lang}\n{text}\n{fence}"


def _pretty_json(text: str | None) -> tuple[str, str]:
    if text is None:
        return "", ""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False), "json"
    except ValueError:
        return text, ""


def _cell(value: float | None, fmt: str = "{}") -> str:
    return "" if value is None else fmt.format(value)


def export_markdown(record: ConversationRecord) -> str:
    """A readable Markdown transcript: every item in order, tool calls with arguments and results,
    images embedded as JPEG data URLs, then the per-turn figures."""
    s = record.summary
    lines = [f"# Conversation {_fmt_time(s.started_at)}", ""]
    lines.append(f"- Started: {_fmt_time(s.started_at)}")
    lines.append(
        f"- Duration: {format_duration(s.duration_s)}" + ("" if s.ended_at is not None else " (not ended cleanly)")
    )
    engine = {"openai": "OpenAI", "local": "Local (offline)"}.get(s.backend, s.backend or "unknown")
    lines.append(f"- Engine: {engine}" + (f", model `{s.model}`" if s.model else ""))
    lines.append(f"- Turns: {s.turns}")
    lines.append(f"- Estimated cost: ${s.cost_usd:.4f}")
    voice = record.settings.get("voice")
    if voice:
        lines.append(f"- Voice: {voice}")
    instructions = record.settings.get("instructions")
    if instructions:
        lines += ["", "## Instructions", "", _fence(str(instructions))]
    lines += ["", "## Transcript", ""]
    if not record.items:
        lines += ["_Nothing was said in this conversation._", ""]
    for item in record.items:
        label = _ROLE_LABEL.get(item.role, item.role.capitalize())
        stamp = _dt.datetime.fromtimestamp(item.created_at).strftime("%H:%M:%S")
        if item.kind == "tool_call":
            lines.append(f"**Tool call** `{item.tool_name or '?'}` ({stamp})")
            args, lang = _pretty_json(item.tool_args)
            lines += ["", "Arguments:", "", _fence(args or "{}", lang)]
            result, lang = _pretty_json(item.tool_result)
            lines += ["", "Result:", "", _fence(result if item.tool_result is not None else "(no result)", lang)]
        elif item.image_jpeg is not None or item.kind == "image":
            caption = item.text.strip() or "camera frame"
            lines.append(f"**{label}** ({stamp}) sent an image: {caption}")
            if item.image_jpeg is not None:
                data = base64.b64encode(item.image_jpeg).decode("ascii")
                lines += ["", f"![image {item.seq}: {caption}](data:image/jpeg;base64,{data})"]
        else:
            text = item.text.strip() or "_(no transcript)_"
            lines.append(f"**{label}** ({stamp}): {text}")
        lines.append("")
    if record.turns:
        lines += [
            "## Turns",
            "",
            "| # | Latency (ms) | Input tokens | Output tokens | Cost (USD) |",
            "|---|---|---|---|---|",
        ]
        for i, t in enumerate(record.turns, 1):
            lines.append(
                f"| {i} | {_cell(t.latency_ms, '{:.0f}')} | {_cell(t.input_tokens)} | "
                f"{_cell(t.output_tokens)} | {_cell(t.cost_usd, '{:.5f}')} |"
            )
        lines.append("")
    return "\n".join(lines)


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return _dt.datetime.fromtimestamp(ts, _dt.UTC).isoformat()


def export_json(record: ConversationRecord) -> str:
    """The whole record as JSON (images as base64 JPEG); stable keys, UTC ISO-8601 times."""
    s = record.summary
    doc = {
        "format": "realtime-studio.conversation",
        "version": 1,
        "id": s.id,
        "started_at": _iso(s.started_at),
        "ended_at": _iso(s.ended_at),
        "duration_s": round(s.duration_s, 3),
        "backend": s.backend,
        "model": s.model,
        "turn_count": s.turns,
        "estimated_cost_usd": s.cost_usd,
        "settings": dict(record.settings),
        "items": [
            {
                "seq": i.seq,
                "item_id": i.item_id,
                "role": i.role,
                "kind": i.kind,
                "text": i.text,
                "tool_name": i.tool_name,
                "tool_args": i.tool_args,
                "tool_result": i.tool_result,
                "created_at": _iso(i.created_at),
                "image_jpeg_base64": None if i.image_jpeg is None else base64.b64encode(i.image_jpeg).decode(),
            }
            for i in record.items
        ],
        "turns": [
            {
                "seq": t.seq,
                "turn_id": t.turn_id,
                "latency_ms": t.latency_ms,
                "input_tokens": t.input_tokens,
                "output_tokens": t.output_tokens,
                "total_tokens": t.total_tokens,
                "cost_usd": t.cost_usd,
                "details": dict(t.details),
                "created_at": _iso(t.created_at),
            }
            for t in record.turns
        ],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)
