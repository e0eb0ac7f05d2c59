"""Pure text formatting for the pages (no Streamlit, no protocol): labels, numbers, breadcrumbs."""

from __future__ import annotations

import datetime as dt
import json
import math

STATE_LABELS = {
    "idle": "Not connected",
    "connecting": "Connecting…",
    "connected": "Connected",
    "reconnecting": "Reconnecting…",
    "paused": "Paused",
    "closed": "Call ended",
    "failed": "Connection failed",
}

ACTIVITY_LABELS = {
    "idle": "Idle",
    "listening": "Listening",
    "user_speaking": "You are speaking",
    "assistant_speaking": "Assistant speaking",
}

ENGINE_LABELS = {"openai": "OpenAI", "local": "Local (offline)"}

TRIGGER_LABELS = {"speech": "your speech", "text": "typed message", "response": "the assistant"}
OUTCOME_LABELS = {
    "completed": "completed",
    "cancelled": "interrupted",
    "failed": "failed",
    "incomplete": "cut short",
    "no_audio": "no audio",
    "reconnect": "cut by a reconnect",
}
# Why a new upstream call took over the conversation (`CallReplaced.kind`), in the order they are summed up.
REPLACED_LABELS = {"reconnect": "Reconnect", "resume": "Resume", "rollover": "Rollover"}

STREAMING_MARK = " …"
INTERRUPTED_MARK = "(interrupted)"
FREE_LOCAL = "free (local engine)"
PRICE_UNKNOWN = "price unknown"
_CODEC_LABELS = {"opus": "Opus", "pcmu": "G.711 μ-law (PCMU)", "pcma": "G.711 A-law (PCMA)"}
TOOL_ICON = "🔧"


def state_label(state: str | None) -> str:
    return STATE_LABELS.get(state or "idle", str(state).replace("_", " ").capitalize())


def activity_label(activity: str | None) -> str:
    return ACTIVITY_LABELS.get(activity or "idle", str(activity).replace("_", " ").capitalize())


def engine_label(backend: str | None) -> str:
    return ENGINE_LABELS.get(backend or "", backend or "unknown")


def trigger_label(trigger: str | None) -> str:
    return TRIGGER_LABELS.get(trigger or "", (trigger or "—").replace("_", " "))


def outcome_label(status: str | None) -> str:
    return OUTCOME_LABELS.get(status or "", (status or "—").replace("_", " "))


def replaced_label(kind: str | None) -> str:
    return REPLACED_LABELS.get(kind or "", (kind or "—").replace("_", " ").capitalize())


def one_line(text: object, limit: int = 200) -> str:
    """Whitespace collapsed to single spaces, cut to ``limit`` characters with an ellipsis."""
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _parse(value: object) -> object:
    """A JSON string parsed (other values as they are); text that is not JSON stays text."""
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _dump(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)


def compact_json(value: object, limit: int = 120) -> str:
    """Arguments/results as short one-line text: JSON strings are re-dumped compactly, long text cut."""
    if value is None:
        return ""
    parsed = _parse(value)
    if isinstance(value, str) and parsed is value:
        text = value  # plain text, not JSON
    elif isinstance(parsed, str):
        text = json.dumps(parsed, ensure_ascii=False)  # a JSON string stays visibly a string
    else:
        text = _dump(parsed)
    return one_line(text, limit)


def call_args(args: object, limit: int = 80) -> str:
    """Tool arguments as a call reads: ``{"a": 2, "b": 5}`` -> ``a=2, b=5``; strings quoted."""
    parsed = _parse(args)
    if parsed is None or parsed == "" or parsed == {}:
        return ""
    if isinstance(parsed, dict):
        text = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False, default=str)}" for k, v in parsed.items())
        return one_line(text, limit)
    return compact_json(args, limit)


def tool_outcome(result: object, limit: int = 80) -> str:
    """A tool's result as a short phrase: the one value of a one-key object (``{"sum": 7}`` -> ``7``),
    ``error: …`` for ``{"error": …}``, ``key=value`` pairs otherwise; ``running…`` while pending."""
    if result is None or result == "":
        return "running…"
    parsed = _parse(result)
    if isinstance(parsed, dict):
        if set(parsed) == {"error"}:
            return "error: " + one_line(parsed["error"], limit)
        if len(parsed) == 1:
            (only,) = parsed.values()
            return one_line(_dump(only), limit)
        if not parsed:
            return "done"
        return one_line(", ".join(f"{k}={_dump(v)}" for k, v in parsed.items()), limit)
    return one_line(_dump(parsed), limit)


def tool_call_text(name: str | None, args: object, result: object) -> str:
    """``delayed_add(a=2, b=5) → 7``, or ``… → running…`` while the result is pending."""
    return f"{name or 'tool'}({call_args(args)}) → {tool_outcome(result)}"


def tool_breadcrumb(name: str | None, args: object, result: object) -> str:
    """``🔧 delayed_add(a=2, b=5) → 7`` (plain text: exports, the "earlier" list)."""
    return f"{TOOL_ICON} {tool_call_text(name, args, result)}"


def tool_failed(result: object) -> bool:
    parsed = _parse(result)
    return isinstance(parsed, dict) and set(parsed) == {"error"}


def ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} ms"


def seconds_as_ms(value: float | None) -> str:
    return "—" if value is None else f"{value * 1000:,.0f} ms"


def short_duration(seconds: float | None) -> str:
    """How long something took: ``12 ms`` under a second, ``1.4 s`` under a minute, then `duration`."""
    if seconds is None or seconds < 0:
        return "—"
    if round(seconds * 1000) < 1000:  # compared as shown: 0.9996 s is "1.0 s", not "1,000 ms"
        return seconds_as_ms(seconds)
    if round(seconds, 1) < 60:
        return f"{seconds:.1f} s"
    return duration(seconds)


def usd(value: float | None) -> str:
    if value is None:
        return "—"
    if value == 0:
        return "$0.00"
    if value < 0.0001:
        return "< $0.0001"
    return f"${value:.4f}" if value < 0.01 else f"${value:.2f}"


def cost_label(value: float | None, backend: str | None, *, priced: bool = True) -> str:
    """The estimated cost as a person reads it: the local engine is free (not "$0.00"), a model
    with no known price says so."""
    if backend == "local":
        return FREE_LOCAL
    if not priced:
        return PRICE_UNKNOWN
    return usd(value)


def codec_label(codec: str | None) -> str:
    """``opus`` -> ``Opus``, ``PCMU`` -> ``G.711 μ-law (PCMU)``; not negotiated yet -> ``—``."""
    if not codec:
        return "—"
    return _CODEC_LABELS.get(codec.strip().lower(), codec)


def count(value: int | float | None) -> str:
    return "—" if value is None else f"{int(value):,}"


def percent(level: float | None) -> str:
    """A 0..1 level as a whole percentage; tiny but non-zero levels read as "< 1 %"."""
    if level is None:
        return "—"
    if 0 < level < 0.005:
        return "< 1 %"
    return f"{level * 100:.0f} %"


def byte_size(n: int | None) -> str:
    if n is None:
        return "—"
    if n < 1024:
        return f"{n:,} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / (1024 * 1024):.1f} MB"


def clock_time(ts: float | None) -> str:
    """Wall-clock time of day with milliseconds (local time), as the event log shows it."""
    if ts is None:
        return "—"
    return dt.datetime.fromtimestamp(ts).strftime("%H:%M:%S.%f")[:-3]


def duration(seconds: float | None) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``."""
    if seconds is None or seconds < 0:
        return "—"
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


_MARKDOWN_SPECIALS = ("\\", "`", "*", "_", "#", "<", ">", "[", "]", "$", "~", "|")


def escape_markdown(text: str) -> str:
    """Text shown as text: characters Streamlit's markdown would act on are escaped."""
    for ch in _MARKDOWN_SPECIALS:
        text = text.replace(ch, "\\" + ch)
    return text


def dbfs(level: float | None) -> str:
    """A 0..1 RMS level in dB full scale (what audio meters show); zero reads as "silent"."""
    if level is None:
        return "—"
    if level <= 0.00001:
        return "silent"
    return f"{20 * math.log10(min(level, 1.0)):.0f} dBFS"
