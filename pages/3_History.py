"""History: every saved conversation, searchable; open one to read it, export it, or delete it."""

from __future__ import annotations

import datetime as dt
import io

import streamlit as st
from PIL import Image

from realtime.history import (
    ConversationRecord,
    ConversationSummary,
    HistoryStore,
    HistoryUnavailable,
    export_json,
    export_markdown,
    format_duration,
    process_store,
)
from realtime.history.voice import conversation_wav, voice_note
from realtime.pricing import price_for
from realtime.settings import Settings
from realtime.transcript import TranscriptItem
from ui.conversation import peek_conversation
from ui.format import cost_label, count, engine_label, escape_markdown, ms
from ui.replay_panel import render_replay
from ui.settings_source import default_settings
from ui.transcript_view import render_transcript

_K = "history."
_MAX_LISTED = 200


def _when(ts: float | None) -> str:
    if ts is None:
        return "—"
    return dt.datetime.fromtimestamp(ts).strftime("%a %d %b %Y, %H:%M")


def _title(summary: ConversationSummary) -> str:
    return summary.first_user_line or "(nothing said by you)"


def _facts(summary: ConversationSummary, live: frozenset[str]) -> str:
    turns = f"{summary.turns} turn" + ("" if summary.turns == 1 else "s")
    unfinished = ""
    if summary.ended_at is None:
        unfinished = " (in progress)" if summary.id in live else " (not ended cleanly)"
    engine = "" if summary.backend == "local" else f" · {engine_label(summary.backend)}"  # "free (local engine)"
    source = " · :material/api: API client" if summary.source == "api" else ""
    return (
        f"{_when(summary.started_at)} · {format_duration(summary.duration_s)}{unfinished} · {turns} · "
        f"{cost_label(summary.cost_usd, summary.backend, priced=price_for(summary.model) is not None)}{engine}{source}"
    )


def _confirm(key: str, question: str, yes_label: str) -> bool | None:
    """A two-step confirmation: True (confirmed), False (cancelled), None (still asking)."""
    st.warning(question, icon=":material/warning:")
    yes, no, _ = st.columns([1, 1, 3])
    if yes.button(yes_label, key=key + ".yes", type="primary"):
        return True
    if no.button("Cancel", key=key + ".no"):
        return False
    return None


def _viewable(jpeg: bytes | None) -> bool:
    """A stored thumbnail Pillow can read (a damaged blob is described, not shown)."""
    if not jpeg:
        return False
    try:
        with Image.open(io.BytesIO(jpeg)) as img:
            img.verify()
        return True
    except Exception:
        return False


def _as_transcript(record: ConversationRecord) -> tuple[TranscriptItem, ...]:
    out = []
    for i in record.items:
        thumb, text = i.image_jpeg, i.text
        if thumb is not None and not _viewable(thumb):
            thumb, text = None, (text + " " if text else "") + "(the saved image could not be read)"
        out.append(
            TranscriptItem(
                id=f"{i.seq}-{i.item_id}",
                role=i.role,
                kind=i.kind,
                text=text,
                final=True,
                image_thumb=thumb,
                tool_name=i.tool_name,
                tool_args=i.tool_args,
                tool_result=i.tool_result,
            )
        )
    return tuple(out)


def _list(store: HistoryStore) -> None:
    search = st.text_input(
        "Search",
        key=_K + "search",
        placeholder="Words you or the assistant said, tool names…",
        icon=":material/search:",
    )
    summaries = store.list_conversations(search)
    if not summaries:
        if search.strip():
            st.info(f"No saved conversation mentions “{search.strip()}”.", icon=":material/search_off:")
        else:
            st.info(
                "No conversations yet. Start one on the **Conversation** page: everything said, shown and "
                "called is saved here as it happens, and stays after the app restarts.",
                icon=":material/history:",
            )
        return
    shown = summaries[:_MAX_LISTED]
    live = store.recorder.open_conversations
    what = f"{len(summaries)} conversation" + ("" if len(summaries) == 1 else "s")
    st.caption(
        what
        + (f" matching “{search.strip()}”" if search.strip() else "")
        + (f"; showing the newest {_MAX_LISTED}" if len(summaries) > _MAX_LISTED else "")
        + "."
    )
    for summary in shown:
        with st.container(border=True, key=f"conv-{summary.id}"):
            text, action = st.columns([5, 1], vertical_alignment="center")
            text.markdown(f"**{escape_markdown(_title(summary))}**")
            text.caption(_facts(summary, live))
            if action.button("Open", key=_K + "open." + summary.id, icon=":material/open_in_new:", width="stretch"):
                st.session_state[_K + "open"] = summary.id
                st.rerun()

    st.divider()
    if st.session_state.get(_K + "confirm_all"):
        answer = _confirm(
            _K + "confirm_all",
            f"Delete all {len(store.list_conversations())} saved conversations? This cannot be undone.",
            "Yes, delete all",
        )
        if answer is not None:
            st.session_state.pop(_K + "confirm_all", None)
            if answer:
                n = store.delete_all()
                st.session_state[_K + "flash"] = f"Deleted {n} conversation" + ("" if n == 1 else "s") + "."
            st.rerun()
    elif st.button("Delete all…", key=_K + "delete_all", icon=":material/delete_sweep:"):
        st.session_state[_K + "confirm_all"] = True
        st.rerun()


@st.cache_data(max_entries=2, show_spinner="Putting the conversation's voice together…")
def _conversation_wav(conversation_id: str, clips: int, _record: ConversationRecord) -> bytes | None:
    """Cached per conversation and clip count: a call still recording gets a fresh mix."""
    return conversation_wav(_record)


def _voice(record: ConversationRecord, stamp: str) -> None:
    """Both sides' voice, to listen to here or take away as one WAV, and what the cap left out."""
    note = voice_note(record)
    wav = _conversation_wav(record.id, len(record.audio), record) if record.audio else None
    with st.container(key="history-voice"):
        if wav is not None:
            player, download = st.columns([4, 1], vertical_alignment="center")
            player.audio(wav, format="audio/wav")
            download.download_button(
                "Audio (WAV)",
                wav,
                file_name=f"conversation-{stamp}.wav",
                mime="audio/wav",
                key=_K + "export_wav",
                icon=":material/download:",
                width="stretch",
            )
        if note:
            st.caption(note)
        elif wav is None and record.summary.source == "api":
            st.caption("No voice kept: an API client's audio goes between it and the provider, not through the studio.")
        elif wav is None:
            st.caption("No voice kept for this conversation (REALTIME_KEEP_AUDIO was off, or nothing was said aloud).")


def _one(store: HistoryStore, conversation_id: str) -> None:
    if st.button("All conversations", key=_K + "back", icon=":material/arrow_back:"):
        st.session_state.pop(_K + "open", None)
        st.session_state.pop(_K + "confirm_one", None)
        st.rerun()
    try:
        record = store.load(conversation_id)
    except KeyError:
        st.session_state.pop(_K + "open", None)
        st.info("That conversation is no longer in the history (it was deleted).")
        return
    summary = record.summary
    st.subheader(escape_markdown(_title(summary)))
    started, duration, turns, cost = st.columns(4)
    when = dt.datetime.fromtimestamp(summary.started_at)
    started.metric(f"Started, {when.strftime('%d %b')}", when.strftime("%H:%M"), help=_when(summary.started_at))
    duration.metric("Duration", format_duration(summary.duration_s))
    turns.metric("Turns", summary.turns)
    if summary.backend == "local":
        cost.metric("Estimated cost", "Free", help="Free (local engine): the offline engine costs nothing.")
    else:
        cost.metric(
            "Estimated cost",
            cost_label(summary.cost_usd, summary.backend, priced=price_for(summary.model) is not None),
        )

    stamp = dt.datetime.fromtimestamp(summary.started_at).strftime("%Y%m%d-%H%M%S")
    _voice(record, stamp)
    md_col, json_col, delete_col, _ = st.columns([1, 1, 1, 2])
    for col, label, data, ext, mime in (
        (md_col, "Markdown", export_markdown(record), "md", "text/markdown"),
        (json_col, "JSON", export_json(record), "json", "application/json"),
    ):
        col.download_button(
            label,
            data,
            file_name=f"conversation-{stamp}.{ext}",
            mime=mime,
            key=f"{_K}export_{ext}",
            icon=":material/download:",
            width="stretch",
        )
    if delete_col.button("Delete", key=_K + "delete_one", icon=":material/delete:", width="stretch"):
        st.session_state[_K + "confirm_one"] = conversation_id
        st.rerun()
    if st.session_state.get(_K + "confirm_one") == conversation_id:
        answer = _confirm(_K + "confirm_one", "Delete this conversation? This cannot be undone.", "Yes, delete")
        if answer is not None:
            st.session_state.pop(_K + "confirm_one", None)
            if answer:
                store.delete(conversation_id)
                st.session_state.pop(_K + "open", None)
                st.session_state[_K + "flash"] = "Deleted the conversation."
            st.rerun()

    settings = record.settings if isinstance(record.settings, dict) else {}
    with st.expander("Setup used", icon=":material/tune:"):
        engine = engine_label(summary.backend) + (f" · model `{summary.model}`" if summary.model else "")
        st.markdown(f"**Engine:** {engine}  \n**Voice:** {settings.get('voice', '—')}")
        if settings.get("instructions"):
            st.markdown("**Instructions:**")
            st.text(settings["instructions"])
        tools = settings.get("tools")
        if isinstance(tools, list):
            st.markdown("**Tools:** " + (", ".join(f"`{t}`" for t in tools) if tools else "none"))

    with st.container(border=True, key="history-transcript"):
        if record.items:
            render_transcript(_as_transcript(record), live=False, follow=False, recent=None)
        else:
            st.caption("Nothing was said in this conversation.")

    render_replay(record, _replay_base())

    if record.turns:
        st.markdown("**Turns**")
        st.dataframe(
            [
                {
                    "Turn": n,
                    "First audio or text": ms(t.latency_ms),
                    "Input tokens": count(t.input_tokens),
                    "Output tokens": count(t.output_tokens),
                    "Estimated cost": cost_label(
                        t.cost_usd, summary.backend, priced=price_for(summary.model) is not None
                    ),
                }
                for n, t in enumerate(record.turns, 1)
            ],
            hide_index=True,
            width="stretch",
        )


def _replay_base() -> Settings:
    """What "Current setup" means for a replay: this tab's sidebar, else the configured defaults."""
    conv = peek_conversation()
    return conv.settings if conv is not None else default_settings()


def main() -> None:
    st.title("History")
    store, notice = process_store()
    if store is None:
        st.warning(notice or "History is off.", icon=":material/history_toggle_off:")
        st.info("Conversations still work; they are just not being saved right now.")
        return
    if notice:
        st.warning(notice, icon=":material/warning:")
    flash = st.session_state.pop(_K + "flash", None)
    if flash:
        st.success(flash, icon=":material/check_circle:")
    try:
        opened = st.session_state.get(_K + "open")
        if opened:
            _one(store, opened)
        else:
            _list(store)
    except HistoryUnavailable as exc:
        st.error(exc.message, icon=":material/error:")


main()
