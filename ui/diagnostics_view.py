"""Diagnostics: connection, WebRTC stats, per-turn latency, token usage and cost of one conversation."""

from __future__ import annotations

import dataclasses
from typing import Any

import streamlit as st

from ui.format import count, ms, state_label, usd


def _pct(level: float | None) -> str:
    return "—" if level is None else f"{level * 100:.0f} %"


def _humanize(name: str) -> str:
    return name.replace("_ms", " (ms)").replace("_s", " (s)").replace("_", " ").capitalize()


def turns_rows(turns: Any) -> list[dict[str, Any]]:
    rows = []
    for i, turn in enumerate(turns, 1):
        fields = dataclasses.asdict(turn) if dataclasses.is_dataclass(turn) else dict(vars(turn))
        row: dict[str, Any] = {"Turn": i}
        for key, value in fields.items():
            if isinstance(value, float):
                value = round(value, 1)
            row[_humanize(key)] = value
        rows.append(row)
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


def render_usage(snap: Any) -> None:
    usage = snap.usage
    fields = dataclasses.asdict(usage) if dataclasses.is_dataclass(usage) else {}
    numbers = {k: v for k, v in fields.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    cols = st.columns(min(4, len(numbers) + 1) or 1)
    cols[0].metric("Estimated cost", usd(snap.cost_usd))
    for i, (key, value) in enumerate(numbers.items(), 1):
        cols[i % len(cols)].metric(_humanize(key), count(value))
