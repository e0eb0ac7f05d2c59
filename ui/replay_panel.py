"""History's "Replay with…": rerun a saved conversation against setups, then compare them side by side.

The replays run on the bridge loop (``realtime.replay.compare``), not on the page's thread; a polling
fragment shows one progress bar per setup until they are done, then the page draws the comparison:
totals per setup, a latency chart, and one row per user turn with a column per setup (the original
first): the reply, its voice, latency and cost, and on demand the words that differ from the original.
The report downloads as one HTML file (it opens on its own) or as JSON.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import threading
from collections.abc import Sequence

import streamlit as st

from realtime.audio_tape import CLIP_RATE
from realtime.history.records import ConversationRecord
from realtime.history.registry import default_db_path
from realtime.loop import run_coro
from realtime.presets import PresetStore, presets_path
from realtime.replay.compare import ReplayError, Setup, compare, resolve_setups
from realtime.replay.model import Comparison, ReplyResult, SetupRun
from realtime.replay.plan import plan_turns
from realtime.replay.report import to_html, to_json, totals, word_diff
from realtime.settings import Settings
from realtime.voice_codec import wav_bytes
from ui.format import cost_label, escape_markdown
from ui.live import live_fragment
from ui.scenario_choice import scenario_label, scenario_options
from ui.settings_source import default_settings

__all__ = ["REPLAY_HELP", "open_for_replay", "render_replay"]

_JOB = "replay_job"  # session key: the running or finished replay, with its conversation id
_EXPAND = "replay_expand"  # session key: the conversation whose "Replay with…" opens expanded
_HISTORY_OPEN = "history.open"  # the History page's open entry (pages/3_History.py)
REPLAY_HELP = (
    "Send this conversation's turns again, in order, to other setups (spoken turns as their recorded "
    "voice when it was kept, else as their transcript; typed turns as text; images as sent), and "
    "compare the replies, their voices, latency and cost side by side."
)
POLL_S = 0.5


class ReplayJob:
    """A comparison being made off the page's thread; ``progress`` counts the turns each setup did."""

    def __init__(self, record: ConversationRecord, setups: Sequence[Setup]) -> None:
        self.conversation_id = record.id
        self.turns = len(plan_turns(record))
        self.labels = {s.name: s.label for s in setups}
        self._lock = threading.Lock()
        self._progress = dict.fromkeys(self.labels, 0)
        self.future: concurrent.futures.Future[Comparison] = run_coro(compare(record, setups, on_turn=self._tick))

    def _tick(self, name: str, _index: int) -> None:
        with self._lock:
            self._progress[name] += 1

    def progress(self) -> dict[str, int]:
        with self._lock:
            return dict(self._progress)


def _setup_label(spec: str) -> str:
    if spec == "current":
        return "Current setup (the sidebar)"
    if spec.startswith("scenario:"):
        return f"Scenario: {scenario_label(spec.removeprefix('scenario:'))}"
    return f"Preset “{spec.removeprefix('preset:')}”"


def open_for_replay(conversation_id: str) -> None:
    """Make the History page open this conversation with "Replay with…" expanded (from the
    Conversation page: replay the call running now, or the one just ended)."""
    st.session_state[_HISTORY_OPEN] = conversation_id
    st.session_state[_EXPAND] = conversation_id


def render_replay(record: ConversationRecord, base: Settings) -> None:
    job = st.session_state.get(_JOB)
    if isinstance(job, ReplayJob) and job.conversation_id != record.id:
        job = None
    # kept, not popped: an expander whose `expanded` changes between runs is drawn anew, closed
    expand = st.session_state.get(_EXPAND) == record.id
    with st.expander("Replay with…", icon=":material/replay:", expanded=job is not None or expand):
        st.caption(REPLAY_HELP)
        presets = PresetStore(presets_path(default_db_path()))
        scenarios = scenario_options(default_settings().scenario)  # never a spec typed into the page
        options = ["current", *(f"preset:{name}" for name in presets.names()), *(f"scenario:{s}" for s in scenarios)]
        chosen = st.multiselect("Setups", options, format_func=_setup_label, key="replay_setups", max_selections=4)
        running = isinstance(job, ReplayJob) and not job.future.done()
        if st.button("Replay", icon=":material/play_arrow:", disabled=not chosen or running, key="replay_go"):
            try:
                job = ReplayJob(record, resolve_setups(chosen, base, presets))
            except ReplayError as exc:
                st.error(str(exc), icon=":material/error:")
                return
            st.session_state[_JOB] = job
            running = True
        if isinstance(job, ReplayJob):
            if running:
                _progress(job)
            else:
                _finished(job)


def _progress(job: ReplayJob) -> None:
    @live_fragment("replay-progress", run_every=POLL_S)
    def bars() -> None:
        done = job.progress()
        for name, label in job.labels.items():
            st.progress(min(done[name] / max(job.turns, 1), 1.0), text=f"{label}: {done[name]} of {job.turns} turns")
        if job.future.done():
            st.rerun()  # the whole page: the comparison replaces the bars

    bars()


def _finished(job: ReplayJob) -> None:
    try:
        comparison = job.future.result()
    except ReplayError as exc:
        st.error(str(exc), icon=":material/error:")
        return
    except Exception as exc:  # a bug, not the provider (its failures are inside the runs): say it plainly
        st.error(f"The replay failed: {type(exc).__name__}: {exc}", icon=":material/error:")
        return
    render_comparison(comparison)


def _cell_facts(result: ReplyResult, run: SetupRun) -> str:
    audio = "—" if result.first_audio_ms is None else f"{result.first_audio_ms:.0f} ms"
    text = "—" if result.first_text_ms is None else f"{result.first_text_ms:.0f} ms"
    cost = cost_label(result.cost_usd, run.backend)
    return f"first audio {audio} · first text {text} · {cost}"


def render_comparison(comparison: Comparison) -> None:
    runs, turns = comparison.runs, comparison.turns
    stamp = dt.datetime.fromtimestamp(comparison.created_at).strftime("%Y%m%d-%H%M%S")
    html_col, json_col, _ = st.columns([1, 1, 3])
    html_col.download_button(
        "Report (HTML)",
        to_html(comparison),
        file_name=f"replay-{stamp}.html",
        mime="text/html",
        icon=":material/download:",
        key="replay_html",
    )
    json_col.download_button(
        "JSON",
        json.dumps(to_json(comparison), indent=1),
        file_name=f"replay-{stamp}.json",
        mime="application/json",
        icon=":material/download:",
        key="replay_json",
    )
    for run in runs[1:]:
        if run.error:
            st.warning(f"{run.label}: {run.error}", icon=":material/warning:")
    rows = []
    for run in runs:
        t = totals(run, len(turns))
        rows.append(
            {
                "Setup": run.label,
                "Voice": run.voice or "—",
                "Median latency": "—" if t.median_latency_ms is None else f"{t.median_latency_ms:.0f} ms",
                "Tokens in / out": f"{t.input_tokens:,} / {t.output_tokens:,}",
                "Cost": cost_label(t.cost_usd, run.backend),
                "Tool calls": t.tool_calls,
                "Failed turns": t.failed,
                "Replay time": "—" if run.name == "original" else f"{run.seconds:.1f} s",
            }
        )
    st.dataframe(rows, hide_index=True, width="stretch")
    chart = {
        run.label: [next((r.latency_ms or 0.0 for r in run.results if r.turn == t.index), 0.0) for t in turns]
        for run in runs
    }
    st.caption("Latency to the first audio (else text) per turn, ms")
    st.bar_chart({**chart, "turn": [f"Turn {t.index + 1}" for t in turns]}, x="turn", stack=False, height=220)
    show_diff = st.toggle("Show the words that differ from the original", key="replay_diff")
    for turn in turns:
        with st.container(border=True, key=f"replay-turn-{turn.index}"):
            images = " · with an image" if turn.images else ""
            kind = "spoken · replayed as its recorded voice" if turn.audio else turn.kind
            st.markdown(f"**Turn {turn.index + 1}** ({kind}{images}): {escape_markdown(turn.text)}")
            if turn.audio:
                st.audio(wav_bytes(turn.audio, CLIP_RATE), format="audio/wav")
            for jpeg in turn.images:
                st.image(jpeg, width=96)
            original = next((r for r in runs[0].results if r.turn == turn.index), None)
            for col, run in zip(st.columns(len(runs)), runs, strict=True):
                result = next((r for r in run.results if r.turn == turn.index), None)
                with col:
                    st.caption(run.label)
                    if result is None:
                        st.caption("Not replayed (the run stopped before this turn).")
                        continue
                    if show_diff and run is not runs[0]:
                        st.markdown(_diff_markdown(original.text if original else "", result.text))
                    else:
                        st.markdown(escape_markdown(result.text) or "_(no reply)_")
                    if result.audio_wav:
                        st.audio(result.audio_wav, format="audio/wav")
                    for call in result.tool_calls:
                        st.caption(f":material/build: {escape_markdown(call)}")
                    if result.error:
                        st.error(result.error, icon=":material/error:")
                    st.caption(_cell_facts(result, run))


def _diff_markdown(original: str, reply: str) -> str:
    parts = []
    for op, text in word_diff(original, reply):
        shown = escape_markdown(text)
        parts.append(f":green[**{shown}**]" if op == "added" else f":red[~~{shown}~~]" if op == "removed" else shown)
    return " ".join(parts) or "_(no reply)_"
