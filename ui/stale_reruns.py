"""Drop a fragment rerun that names the page the tab is leaving.

A tab learns that its page changed only from the server's reply, so a fragment rerun it sends just
after a click on another page (a pulse trigger, a `run_every` tick) still names the old page. On
Streamlit 1.67 with `fastReruns` the click starts a new ScriptRunner, that fragment request queues
behind the new page's run and then runs *on the old page*: its `newSession` names the old page, the
tab clears the new page's elements, and the fragment's deltas land where their parent is gone
("Bad delta path index 2 (should be between [0, 1])"), a white page; or (read in the code, not seen)
when the new page's run already dropped the fragment, a page with the call bar and nothing under it.
`tests/browser/test_page_change_browser.py` sends such a request behind every page change: without
the guard the first one ends in that white page.

The guard does what Streamlit already does for a fragment that no longer exists: it drops the
request. The page being drawn runs its own fragments; a fragment in the call bar, on every page, is
redrawn by that run too. ``PageTracker`` holds the rule (sans-IO); ``install`` wires it into
``AppSession`` (pinned Streamlit; it says so and changes nothing if those methods moved).
"""

from __future__ import annotations

import functools
import inspect
import logging
from dataclasses import dataclass
from typing import Any

__all__ = ["PageTracker", "install"]

log = logging.getLogger(__name__)

_TRACKER = "_studio_page_tracker"  # AppSession attribute: that session's PageTracker
_MARK = "_studio_stale_reruns"  # set on the wrapped methods, so install() is idempotent


@dataclass
class PageTracker:
    """The page a session is on, or was last asked to go to. ``None``: not known (nothing dropped)."""

    page: str | None = None

    def full_rerun_requested(self, page_hash: str) -> None:
        """A rerun of the whole script was asked for (a click on a page, a widget); "" names no page."""
        self.page = page_hash or None

    def run_started(self, page_hash: str) -> None:
        """The current ScriptRunner started a run of ``page_hash`` (also after `st.switch_page`)."""
        if page_hash:
            self.page = page_hash

    def is_stale(self, fragment_id: str, page_hash: str) -> bool:
        """Whether a rerun of ``fragment_id`` asked for by a tab showing ``page_hash`` must be dropped."""
        return bool(fragment_id and page_hash) and self.page is not None and page_hash != self.page


def _tracker(session: Any) -> PageTracker:
    tracker = session.__dict__.get(_TRACKER)
    if tracker is None:
        tracker = session.__dict__[_TRACKER] = PageTracker()
    return tracker


def install() -> bool:
    """Wrap ``AppSession.request_rerun`` and its run-started handling, once per process. Returns
    whether the guard is in place (False, with a warning, if this Streamlit has no such methods)."""
    from streamlit.runtime.app_session import AppSession
    from streamlit.runtime.scriptrunner import ScriptRunnerEvent

    request_rerun = getattr(AppSession, "request_rerun", None)
    on_event = getattr(AppSession, "_handle_scriptrunner_event_on_event_loop", None)
    if getattr(request_rerun, _MARK, False):
        return True
    if not (
        callable(request_rerun)
        and callable(on_event)
        and list(inspect.signature(request_rerun).parameters) == ["self", "client_state"]
        and {"sender", "event", "page_script_hash"} <= set(inspect.signature(on_event).parameters)
    ):
        log.warning("Streamlit changed: fragment reruns from a page being left are no longer dropped")
        return False

    @functools.wraps(request_rerun)
    def guarded_request_rerun(self: AppSession, client_state: Any) -> None:
        tracker = _tracker(self)
        if client_state is None:
            tracker.full_rerun_requested("")
        elif not client_state.fragment_id:
            tracker.full_rerun_requested(client_state.page_script_hash)
        elif tracker.is_stale(client_state.fragment_id, client_state.page_script_hash):
            log.debug("dropped a rerun of fragment %s from the page being left", client_state.fragment_id)
            return
        request_rerun(self, client_state)

    event_signature = inspect.signature(on_event)

    @functools.wraps(on_event)
    def tracking_on_event(self: AppSession, sender: Any, event: Any, *args: Any, **kwargs: Any) -> None:
        on_event(self, sender, event, *args, **kwargs)
        if event == ScriptRunnerEvent.SCRIPT_STARTED and sender is self._scriptrunner:
            bound = event_signature.bind(self, sender, event, *args, **kwargs)
            _tracker(self).run_started(bound.arguments.get("page_script_hash") or "")

    setattr(guarded_request_rerun, _MARK, True)
    setattr(tracking_on_event, _MARK, True)
    AppSession.request_rerun = guarded_request_rerun  # type: ignore[method-assign]
    AppSession._handle_scriptrunner_event_on_event_loop = tracking_on_event  # type: ignore[method-assign]
    return True
