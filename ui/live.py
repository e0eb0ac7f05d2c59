"""Polling fragments that cannot swallow the elements drawn after them.

Every `st.fragment` of the app goes through `live_fragment`, which draws the fragment alone in a
keyed container of its own. Without that container, Streamlit 1.67 could leave the page without its
chat box or call controls when the machine is busy (measured: the chat box hidden after 4 to 28
typed messages with two CPU-bound processes beside the app; never with the container):

1. a full run draws the fragment's block at main[k] and the chat box's block at main[k+1];
2. a queued rerun of the fragment starts before the server has flushed that full run, and
   `ForwardMsgQueue.clear(fragment_ids_this_run=...)` drops the full run's deltas of that fragment;
3. at the full run's end the browser removes main[k] as stale, so the chat box's block moves up to
   index k;
4. the fragment rerun then writes its block at main[k]: the browser merges it into the chat box's
   block and replaces the chat input with the transcript, keeping the input only as a hidden
   "retained" element (`display: none`).

Inside its own container the fragment's block is the container's only child, so step 3 empties that
container for a moment instead of moving a neighbour into the fragment's place.

A fragment reruns by push rather than on a timer when it is given a `ui.pulse.Pulse`: its signature is
taken before the fragment reads anything, so a change made while it draws reruns it once more rather than
being missed, and the pulse element is mounted at the fragment's end (inside it: its trigger reruns that
fragment only).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import streamlit as st

from ui.pulse import Pulse, mount

T = TypeVar("T")


def live_fragment(
    key: str, *, run_every: float | None = None, pulse: Pulse | None = None
) -> Callable[[Callable[[], None]], Callable[[], None]]:
    """`@st.fragment(run_every=...)`, drawn inside `st.container(key=key)`; with `pulse`, it also reruns
    whenever the pulse's value changes (and then usually needs no `run_every`).

    `key` must be unique on the page (it is also the container's `st-key-<key>` CSS class)."""

    def decorate(body: Callable[[], None]) -> Callable[[], None]:
        def pulsed() -> None:
            drawn = pulse.signature() if pulse is not None else ""
            body()
            if pulse is not None:
                mount(pulse, drawn)

        fragment = st.fragment(run_every=run_every)(functools.wraps(body)(pulsed))

        @functools.wraps(body)
        def draw() -> None:
            with st.container(key=key):
                fragment()

        return draw

    return decorate


def live_snapshot(
    key: str, *, read: Callable[[], T], run_every: float | None = None, pulse: Pulse | None = None
) -> Callable[[Callable[[T], None]], Callable[[], None]]:
    """`live_fragment` whose body is given a fresh `read()` (a conversation's snapshot) on each run.

    When reading fails, the fragment says so in one line instead of drawing the body: a page that
    polls must never show a traceback for state it could not read."""

    def decorate(body: Callable[[T], None]) -> Callable[[], None]:
        @live_fragment(key, run_every=run_every, pulse=pulse)
        @functools.wraps(body)
        def draw() -> None:
            try:
                value = read()
            except Exception as exc:
                st.error(f"The conversation state could not be read: {type(exc).__name__}")
                return
            body(value)

        return draw

    return decorate
