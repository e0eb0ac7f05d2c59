"""Diagnostics: connection, WebRTC stats, per-turn latency, token usage and cost of one conversation.

The row/summary builders are pure (tested without Streamlit); the `render_*` functions draw them."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import TYPE_CHECKING

import streamlit as st

from realtime.pricing import PRICES_AS_OF, estimate_cost, price_for
from ui.format import (
    FREE_LOCAL,
    PRICE_UNKNOWN,
    REPLACED_LABELS,
    activity_label,
    clock_time,
    codec_label,
    cost_label,
    count,
    dbfs,
    engine_label,
    escape_markdown,
    ms,
    outcome_label,
    replaced_label,
    short_duration,
    state_label,
    trigger_label,
    usd,
)
from ui.status import shown_state, state_badge

if TYPE_CHECKING:
    from realtime.bridge import BridgeSnapshot
    from realtime.metrics import TurnMetrics, UsageTotals
    from realtime.rtc_stats import RtcStats
    from realtime.updates import CallReplaced

NO_RECONNECTS = "No reconnects in this conversation."


def turns_rows(turns: Sequence[TurnMetrics], *, model: str, backend: str) -> list[dict[str, int | str]]:
    """One row per completed turn: what started it, time to first audio and text (from the end of your
    speech or message), tokens, cost, outcome."""
    priced = price_for(model) is not None
    rows: list[dict[str, int | str]] = []
    for i, turn in enumerate(turns, 1):
        usage = turn.usage
        rows.append(
            {
                "Turn": i,
                "Started by": trigger_label(turn.trigger),
                "First audio": ms(turn.first_audio_ms),
                "First text": ms(turn.first_text_ms),
                "Input tokens": count(usage.input_tokens),
                "Output tokens": count(usage.output_tokens),
                "Cost": cost_label(estimate_cost(usage, model), backend, priced=priced),
                "Outcome": outcome_label(turn.status),
            }
        )
    return rows


def latency_summary(turns: Sequence[TurnMetrics]) -> str:
    """``Time to first audio: median 334 ms, best 298 ms, worst 1,467 ms over 2 turns.``"""
    audio = [t.first_audio_ms for t in turns if t.first_audio_ms is not None]
    text = [t.first_text_ms for t in turns if t.first_text_ms is not None]
    values, what = (audio, "audio") if audio else (text, "text")
    if not values:
        return "No turn has produced audio or text yet."
    n = len(values)
    head = f"Time to first {what}: median {ms(statistics.median(values))}"
    if n == 1:
        return f"{head} (1 turn)."
    return f"{head}, best {ms(min(values))}, worst {ms(max(values))} over {n} turns."


def usage_rows(usage: UsageTotals) -> list[dict[str, str]]:
    """Tokens by modality: input (of which cached) and output."""
    return [
        {
            "Tokens": "Text",
            "Input": count(usage.input_text),
            "of which cached": count(usage.cached_text),
            "Output": count(usage.output_text),
        },
        {
            "Tokens": "Audio",
            "Input": count(usage.input_audio),
            "of which cached": count(usage.cached_audio),
            "Output": count(usage.output_audio),
        },
        {
            "Tokens": "Image",
            "Input": count(usage.input_image),
            "of which cached": count(usage.cached_image),
            "Output": "—",
        },
    ]


def cost_metric(cost: float | None, *, backend: str, model: str) -> tuple[str, str, str]:
    """(label, value, note) for the cost metric: the local engine is free (the note says so and what
    OpenAI would have charged); an unpriced model says "price unknown", never $0. The note names the
    date of the price table."""
    if backend == "local":
        at_openai = (
            f" At OpenAI's prices for {model} (as of {PRICES_AS_OF}) these tokens would cost about {usd(cost)}."
            if price_for(model) is not None and cost
            else ""
        )
        return "Estimated cost", "Free", f"{FREE_LOCAL.capitalize()}: the offline engine costs nothing.{at_openai}"
    if price_for(model) is None:
        return (
            "Estimated cost",
            PRICE_UNKNOWN.capitalize(),
            f"No price is known for the model {model!r} in the price table of {PRICES_AS_OF} (realtime/pricing.py).",
        )
    return (
        "Estimated cost",
        usd(cost),
        f"Estimated from OpenAI's prices for {model} as of {PRICES_AS_OF} (realtime/pricing.py).",
    )


def price_date_line(backend: str, model: str) -> str:
    """The caption beside the cost: which price table the figure comes from."""
    if backend == "local":
        return f"Prices as of {PRICES_AS_OF}; the local engine itself is free."
    if price_for(model) is None:
        return f"Price unknown for {model} (price table as of {PRICES_AS_OF})."
    return f"Prices as of {PRICES_AS_OF} (OpenAI's published rates per 1M tokens)."


def loss_text(lost: int, received: int) -> str:
    """``0``, or ``12 (0.5 %)`` of the packets expected."""
    if not lost:
        return "0"
    expected = lost + max(received, 0)
    return f"{lost:,} ({lost / expected * 100:.1f} %)" if expected else f"{lost:,}"


def gaps_text(rtc: RtcStats) -> str:
    """What broke up in the audio so far: the voice running out mid-reply, mic audio arriving late."""
    if not rtc.voice_underruns and not rtc.mic_late_ms:
        return "No gaps in the audio so far."
    times = f"{rtc.voice_underruns:,} time{'s' if rtc.voice_underruns != 1 else ''}"
    return (
        f"The assistant's voice ran out mid-reply {times} ({short_duration(rtc.voice_starved_ms / 1000)} in all); "
        f"mic audio arrived late for {short_duration(rtc.mic_late_ms / 1000)} in all."
    )


def connection_line(snap: BridgeSnapshot, *, backend: str, model: str, live: bool) -> str:
    """One markdown line: engine, connection state, who is speaking, whether the audio is degraded
    under load (and why), model, call id."""
    state = shown_state(snap, live=live)
    parts = [f"**Engine** {engine_label(backend)}", f"**Connection** {state_label(state)}"]
    if live and state == "connected":
        parts.append(f"**Now** {activity_label(snap.activity)}")
    overloaded = state_badge(snap, live=live).detail
    if overloaded:
        parts.append(f"**Audio** choppy, the server is overloaded: {escape_markdown(overloaded)}")
    parts.append(f"**Model** `{model}`")
    if snap.call_id:
        parts.append(f"**Call** `{snap.call_id}`")
    return " · ".join(parts)


def replaced_rows(replaced: Sequence[CallReplaced]) -> list[dict[str, str]]:
    """One row per call that took over the conversation (reconnect, resume, rollover), oldest first."""
    return [
        {
            "When": clock_time(r.at),
            "What": replaced_label(r.kind),
            "Why": r.reason or "—",
            "Took": short_duration(r.took_s),
            "Attempts": count(r.attempts),
            "Items restored": count(r.restored),
            "Left out": count(r.cut),
        }
        for r in replaced
    ]


def _times(n: int, what: str) -> str:
    return f"{n} {what.lower()}{'s' if n != 1 else ''}"


def replaced_summary(replaced: Sequence[CallReplaced]) -> str:
    """``3 calls replaced: 2 reconnects, 1 rollover. Reconnect time: median 1.4 s, worst 3.2 s.``"""
    if not replaced:
        return NO_RECONNECTS
    kinds = [r.kind for r in replaced]
    tally = ", ".join(_times(kinds.count(k), label) for k, label in REPLACED_LABELS.items() if k in kinds)
    n = len(replaced)
    text = f"{n} call{'s' if n != 1 else ''} replaced: {tally}."
    took = [r.took_s for r in replaced if r.kind == "reconnect"]
    if len(took) == 1:
        text += f" Reconnect time: {short_duration(took[0])}."
    elif took:
        text += f" Reconnect time: median {short_duration(statistics.median(took))}, worst {short_duration(max(took))}."
    return text


def render_connection(snap: BridgeSnapshot, *, backend: str, model: str, live: bool) -> None:
    st.markdown(connection_line(snap, backend=backend, model=model, live=live))


def render_rtc(snap: BridgeSnapshot) -> None:
    rtc = snap.rtc
    c = st.columns(4)
    c[0].metric("Round-trip time", ms(rtc.rtt_ms), help="From RTCP reports of the server ⇄ model leg.")
    c[1].metric("Jitter", ms(rtc.jitter_ms), help="Variation in packet arrival of the assistant's voice.")
    c[2].metric("Packets lost", loss_text(rtc.packets_lost, rtc.packets_received))
    c[3].metric("Packets sent / received", f"{count(rtc.packets_sent)} / {count(rtc.packets_received)}")
    c = st.columns(4)
    c[0].metric(
        "Mic level", dbfs(rtc.mic_level), help="RMS level of your voice sent to the model (0 dBFS is full scale)."
    )
    c[1].metric("Assistant voice level", dbfs(rtc.voice_level), help="RMS level of the voice received from the model.")
    c[2].metric("Voice buffered", ms(rtc.voice_buffer_ms), help="Assistant audio waiting to be played to you.")
    c[3].metric(
        "Voice dropped",
        ms(rtc.voice_dropped_ms),
        help="Audio dropped to keep the voice from lagging behind (the buffer cap).",
    )
    st.caption(
        f"Audio codec to the model: **{codec_label(rtc.codec)}** (negotiated in the call's SDP; "
        "the phone line setting chooses it for the next call)."
    )
    st.caption(gaps_text(rtc))


def render_turns(snap: BridgeSnapshot, *, model: str, backend: str) -> None:
    rows = turns_rows(snap.turns, model=model, backend=backend)
    if not rows:
        st.info(
            "No completed turn yet: after the assistant answers, each turn's latency (from the end of your "
            "speech or message to its first audio and text) appears here.",
            icon=":material/timer:",
        )
        return
    st.caption(latency_summary(snap.turns) + " Measured from the end of your speech or message.")
    st.dataframe(rows, hide_index=True, width="stretch")


def render_usage(snap: BridgeSnapshot, *, backend: str, model: str) -> None:
    usage = snap.usage
    label, value, note = cost_metric(snap.cost_usd, backend=backend, model=model)
    cols = st.columns(4)
    cols[0].metric(label, value, help=note)
    cols[1].metric("Input tokens", count(usage.input_tokens))
    cols[2].metric("Output tokens", count(usage.output_tokens))
    cols[3].metric("Responses", count(usage.responses))
    if backend == "local":
        st.caption(note)
    st.caption(price_date_line(backend, model))
    if usage.total_tokens:
        import pandas as pd

        # a small static table (the per-turn table above is the page's one interactive grid)
        st.table(pd.DataFrame(usage_rows(usage)).set_index("Tokens"))
    images = snap.images_in_context
    if images:
        st.caption(f"{images} camera image{'s' if images != 1 else ''} currently kept in the conversation.")


def render_reconnects(snap: BridgeSnapshot) -> None:
    st.caption(replaced_summary(snap.replaced))
    rows = replaced_rows(snap.replaced)
    if rows:
        import pandas as pd

        # a small static table (the per-turn table is the page's one interactive grid)
        st.table(pd.DataFrame(rows).set_index("When"))
