"""Sidebar panel: presets (load / save as / delete), "Share settings" link, history notice.

``render(settings)`` returns new Settings when the user loads a preset or opened a share link
(the sidebar then seeds its widgets with them), else None. It holds no logic of its own: presets
are ``realtime.presets``, links are ``realtime.share``, recording is ``realtime.history``.

History: ``ui.conversation`` attaches each call to the history recorder when it starts, and the
recorder ends the record when the call ends; this panel only says whether the call is being saved.
"""

from __future__ import annotations

import streamlit as st

from realtime.history import HistoryStore, RecordableBridge, default_db_path, process_store
from realtime.presets import PresetError, PresetStore, presets_path
from realtime.settings import Settings
from realtime.share import settings_from_query, share_url
from ui.live import live_fragment
from ui.pulse import Pulse
from ui.scenario_choice import checked_scenario
from ui.settings_source import configured_scenario

_K = "presets."
_STREAMLIT_KEYS = {"embed", "embed_options"}  # Streamlit's own query parameters


def _store() -> PresetStore:
    return PresetStore(presets_path(default_db_path()))


def _say(kind: str, text: str) -> None:
    """A message that stays in the panel until the next preset action."""
    st.session_state[_K + "message"] = (kind, text)


def _show_message() -> None:
    message = st.session_state.get(_K + "message")
    if not message:
        return
    kind, text = message
    {"success": st.success, "warning": st.warning, "error": st.error}.get(kind, st.info)(text)


def _warnings_text(what: str, warnings: tuple[str, ...]) -> str:
    return f"{what} Some of it was not used:\n\n" + "\n".join(f"- {w}" for w in warnings)


def _checked_scenario(new: Settings, warnings: tuple[str, ...], what: str) -> tuple[Settings, tuple[str, ...]]:
    """A scenario that is neither built in nor configured on this server is never loaded (a spec can
    name a Python file): the default takes its place, and the warnings say so."""
    checked, note = checked_scenario(new, configured_scenario(), what=what)
    return checked, (*warnings, note) if note else warnings


def _from_link(settings: Settings) -> Settings | None:
    """Once per browser session: apply a share link's query parameters."""
    if st.session_state.get(_K + "link_checked"):
        return None
    st.session_state[_K + "link_checked"] = True
    params = {k: st.query_params.get_all(k) for k in st.query_params}
    params = {k: v for k, v in params.items() if k.lower() not in _STREAMLIT_KEYS}
    if not params:
        return None
    new, warnings = settings_from_query(params, settings)
    new, warnings = _checked_scenario(new, warnings, "share link")
    if warnings:
        _say("warning", _warnings_text("Opened a shared setup.", warnings))
    else:
        _say("success", "Opened a shared setup: the settings below come from the link.")
    return new


def _load(store: PresetStore, name: str, settings: Settings) -> Settings | None:
    try:
        new, warnings = store.load(name, settings)
    except PresetError as exc:
        _say("error", exc.message)
        return None
    new, warnings = _checked_scenario(new, warnings, "preset")
    if warnings:
        _say("warning", _warnings_text(f"Loaded preset “{name}”.", warnings))
    else:
        _say("success", f"Loaded preset “{name}”.")
    return new


def _presets(settings: Settings) -> Settings | None:
    store = _store()
    presets = store.list()
    labels = {p.name: (f"{p.name} (built-in)" if p.builtin else p.name) for p in presets}
    chosen: Settings | None = None
    with st.expander(
        "Presets",
        icon=":material/tune:",
        expanded=bool(st.session_state.get(_K + "message") or st.session_state.get(_K + "confirm")),
    ):
        if store.notice:
            st.warning(store.notice, icon=":material/warning:")
        options: list[str] = list(labels)
        name = st.selectbox("Preset", options, format_func=lambda n: labels[n], key=_K + "selected")
        selected = next((p for p in presets if p.name == name), None)
        load_col, delete_col = st.columns(2)
        if load_col.button("Load", key=_K + "load", icon=":material/download:", width="stretch") and name:
            st.session_state.pop(_K + "confirm", None)
            chosen = _load(store, name, settings)
        builtin = selected is None or selected.builtin
        if delete_col.button(
            "Delete",
            key=_K + "delete",
            icon=":material/delete:",
            width="stretch",
            disabled=builtin,
            help="Built-in presets cannot be deleted." if builtin else None,
        ):
            st.session_state[_K + "confirm"] = name
        pending = st.session_state.get(_K + "confirm")
        if pending:
            st.warning(f"Delete the preset “{pending}”? This cannot be undone.")
            yes, no = st.columns(2)
            if yes.button("Yes, delete", key=_K + "confirm_yes", type="primary", width="stretch"):
                st.session_state.pop(_K + "confirm", None)
                try:
                    removed = store.delete(pending)
                    _say(
                        "success" if removed else "info",
                        f"Deleted preset “{pending}”." if removed else f"“{pending}” was already gone.",
                    )
                except PresetError as exc:
                    _say("error", exc.message)
                st.rerun()
            if no.button("Cancel", key=_K + "confirm_no", width="stretch"):
                st.session_state.pop(_K + "confirm", None)
                st.rerun()

        with st.form(_K + "save_form", clear_on_submit=True, border=False):
            new_name = st.text_input(
                "Save the current setup as", key=_K + "new_name", max_chars=60, placeholder="e.g. Museum guide"
            )
            include_model = st.checkbox("Include the model", value=True, key=_K + "include_model")
            if st.form_submit_button("Save preset", icon=":material/save:"):
                try:
                    saved = store.save(new_name, settings, include_model=include_model)
                    st.session_state[_K + "pending_select"] = saved.name
                    _say("success", f"Saved preset “{saved.name}” (never with the API key).")
                except PresetError as exc:
                    _say("error", exc.message)
                st.rerun()
        st.caption(
            "A preset keeps voice, instructions, turn detection, transcription, output, camera, "
            "tools and the scenario (and the model if you like); never the API key."
        )
        _show_message()
    return chosen


def _share(settings: Settings, base: str) -> None:
    with st.expander("Share settings", icon=":material/share:"):
        url = share_url(base, settings)
        st.caption(
            "Anyone who opens this link gets this setup (voice, instructions, turn detection, "
            "camera, tools, scenario, model). It never contains an API key: the app they open uses its own."
        )
        st.code(url, language=None)  # one line with a copy button
        if len(url) > 8000:
            st.warning("This link is very long (long instructions); some chat apps may cut it.")


def _history_notice(bridge: RecordableBridge | None, store: HistoryStore | None, notice: str | None) -> None:
    """Say whether this tab's call is being saved to History (or why nothing is)."""
    if store is None:
        st.caption(f":material/history_toggle_off: {notice}")
        return
    if notice:
        st.caption(f":material/warning: {notice}")
    if bridge is not None and store.recorder.is_recording(bridge):
        st.caption(":material/history: This conversation is being saved to **History**.")
    else:
        st.caption(":material/history: Conversations are saved to **History** as they happen.")


def _live(fallback: Settings) -> None:
    """The share link from the settings in force, and the history notice, redrawn when either changes.

    The sidebar applies its widget changes after this panel is drawn, so a link drawn from the
    settings this run started with would lag one change behind; the fragment reruns (by push) as soon as
    the conversation's settings, or whether its call is being saved, differ from what it drew."""
    from ui.conversation import peek_conversation

    conv = peek_conversation()
    base = st.context.url or "http://localhost:8501/"

    def settings() -> Settings:
        return conv.settings if conv is not None else fallback

    opened, why_not = process_store()  # opening may touch the disk: here, not in the server's checks

    def shown() -> object:
        notice = opened.current_notice() if opened is not None else why_not
        bridge = conv.latest_bridge if conv is not None else None
        saving = opened is not None and bridge is not None and opened.recorder.is_recording(bridge)
        return (share_url(base, settings()), id(bridge), saving, notice)

    @live_fragment("presets-live", pulse=Pulse("presets", shown, gap_s=0.5, interval_s=0.5))
    def live() -> None:
        _share(settings(), base)
        store, notice = process_store()
        _history_notice(conv.latest_bridge if conv is not None else None, store, notice)

    live()


def render(settings: Settings) -> Settings | None:
    """Draw the panel (inside the sidebar). Returns settings to apply, or None."""
    pending = st.session_state.pop(_K + "pending_select", None)
    if pending is not None:
        st.session_state[_K + "selected"] = pending
    chosen = _from_link(settings)
    loaded = _presets(settings if chosen is None else chosen)
    result = loaded if loaded is not None else chosen
    _live(result or settings)
    return result
