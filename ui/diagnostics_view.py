"""Diagnostics: connection, WebRTC stats, per-turn latency, token usage and cost of one conversation."""

from __future__ import annotations

from typing import Any

import streamlit as st

from ui.format import count, ms, state_label, usd


def _pct(level: float | None) -> str:
    return "—" if level is None else f"{level * 100:.0f} %"


def _tokens(usage: Any) -> int:
    return sum(
        int(getattr(usage, name, 0) or 0)
        for name in ("input_text", "input_audio", "input_image", "output_text", "output_audio")
    )


def turns_rows(turns: Any) -> list[dict[str, Any]]:
    """One row per completed turn: what started it, time to first audio and text, tokens."""
    rows = []
    for i, turn in enumerate(turns, 1):
        rows.append({
            "Turn": i,
            "Started by": {"speech": "your speech", "text": "typed message", "response": "the assistant"}.get(
                turn.trigger, turn.trigger),
            "First audio": ms(turn.first_audio_ms),
            "First text": ms(turn.first_text_ms),
            "Tokens": count(_tokens(turn.usage)),
            "Outcome": turn.status,
        })
    return rows


def render_connection(snap: Any, backend_label: str) -> None:
    c1, c2, c3 = st.columns(3)
    c1.metric("Engine", backend_label)
    c2.metric("Connection", state_label(snap.state))
    c3.metric("Call id", (snap.call_id or "—")[-18:])


def render_rtc(snap: Any) -> None:
    rtc = snap.rtc
    c = st.columns(4)
    c[0].metric("Round-trip time", ms(rtc.rtt_ms))
    c[1].metric("Jitter", ms(rtc.jitter_ms))
    c[2].metric("Packets lost", count(rtc.packets_lost))
    c[3].metric("Packets sent / received", f"{count(rtc.packets_sent)} / {count(rtc.packets_received)}")
    c = st.columns(4)
    c[0].metric("Mic level", _pct(rtc.mic_level))
    c[1].metric("Assistant voice level", _pct(rtc.voice_level))
    c[2].metric("Voice buffered", ms(rtc.voice_buffer_ms))
    c[3].metric("Voice dropped (cap)", ms(rtc.voice_dropped_ms))


def render_turns(snap: Any) -> None:
    rows = turns_rows(snap.turns)
    if not rows:
        st.caption("No completed turn yet: after the assistant answers, each turn's latency appears here.")
        return
    st.dataframe(rows, hide_index=True, width="stretch")


_USAGE_LABELS = {
    "input_text": "Input text tokens",
    "input_audio": "Input audio tokens",
    "input_image": "Input image tokens",
    "output_text": "Output text tokens",
    "output_audio": "Output audio tokens",
    "responses": "Responses",
}


def render_usage(snap: Any) -> None:
    usage = snap.usage
    cols = st.columns(4)
    cols[0].metric("Estimated cost", usd(snap.cost_usd), help="From the price table in realtime/pricing.py.")
    for i, (name, label) in enumerate(_USAGE_LABELS.items(), 1):
        cols[i % 4].metric(label, count(getattr(usage, name, None)))
