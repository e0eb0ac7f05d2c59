"""Pure text formatting for the pages (no Streamlit, no protocol): labels, numbers, breadcrumbs."""

from __future__ import annotations

import json
from typing import Any

STATE_LABELS = {
    "idle": "Not connected",
    "connecting": "Connecting…",
    "connected": "Connected",
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


def state_label(state: str | None) -> str:
    return STATE_LABELS.get(state or "idle", str(state).replace("_", " ").capitalize())


def activity_label(activity: str | None) -> str:
    return ACTIVITY_LABELS.get(activity or "idle", str(activity).replace("_", " ").capitalize())


def engine_label(backend: str) -> str:
    return ENGINE_LABELS.get(backend, backend)


def compact_json(value: Any, limit: int = 120) -> str:
    """Arguments/results as short one-line text: JSON strings are re-dumped compactly, long text cut."""
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            text = value
        else:
            text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tool_breadcrumb(name: str | None, args: Any, result: Any) -> str:
    """`delayed_add({"a": 2, "b": 5}) → 7`, or `… → running…` while the result is pending."""
    call = f"{name or 'tool'}({compact_json(args)})"
    outcome = compact_json(result) if result not in (None, "") else "running…"
    return f"{call} → {outcome}"


def ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} ms"


def seconds_as_ms(value: float | None) -> str:
    return "—" if value is None else f"{value * 1000:.0f} ms"


def usd(value: float | None) -> str:
    if value is None:
        return "—"
    if value == 0:
        return "$0.00"
    return f"${value:.4f}" if value < 0.01 else f"${value:.2f}"


def count(value: int | float | None) -> str:
    return "—" if value is None else f"{int(value):,}"
