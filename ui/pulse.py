"""The pulse element: reruns its fragment when the server says what the fragment shows has changed.

A live part of the page says what it shows as a `Pulse`: a topic name and a cheap ``read()`` (e.g. the
call's state and the transcript's revision). ``ui.live`` computes its signature before drawing, draws,
and then mounts this element with that signature. The element (components v2, inline JS, no page
reload) keeps a WebSocket to ``/studio/pulse/<token>/<topic>`` (``api.pulse``): the server compares
``read()`` with the drawn signature a few times a second and pushes a new one; the element then
triggers a rerun of its fragment, at most once per ``gap_s`` (the page's refresh rate while things
change), and not while the tab is hidden (it catches up when the tab is shown again). Nothing changes,
nothing reruns.

If the socket drops (a server restart), the element reconnects with a growing delay; if a rerun it
asked for never came (a full rerun swallowed it), it asks again after a few seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

from api.pulse import ROUTE, PulseBoard, pulse_boards, signature

_BOARD = "pulse_board"  # session key: (the tab's board, its token)
RETRY_MS = 3000  # a trigger that brought no rerun is sent again after this


@dataclass(frozen=True)
class Pulse:
    """What a live part shows, reduced to a small value the server can compare cheaply."""

    topic: str  # unique on the page; also the element's key
    read: Callable[[], object]
    gap_s: float = 0.4  # at most one rerun per gap while the value keeps changing
    interval_s: float = 0.1  # how often the server compares

    def signature(self) -> str:
        return signature(self.read)


# Hidden: the element draws nothing. Its JS runs all the same.
_CSS = ":host, .pulse { display: none; }"

_JS = f"""
const sessions = new WeakMap();
const RETRY_MS = {RETRY_MS};

function session(root) {{
  let s = sessions.get(root);
  if (!s) {{
    s = {{api: null, url: null, drawn: null, latest: null, ws: null, timer: null, retry: null,
          last: 0, gap: 400, backoff: 500, gone: false}};
    sessions.set(root, s);
  }}
  return s;
}}

function tell(s) {{
  if (s.ws && s.ws.readyState === 1 && s.drawn !== null) s.ws.send(s.drawn);
}}

function connect(s) {{
  if (s.gone || !s.url || (s.ws && s.ws.readyState <= 1)) return;
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + s.url);
  s.ws = ws;
  ws.onopen = () => {{ s.backoff = 500; tell(s); }};
  ws.onmessage = (e) => {{ s.latest = String(e.data); schedule(s); }};
  ws.onclose = (e) => {{
    if (s.ws !== ws) return;
    s.ws = null;
    if (s.gone || e.code === 4404) return;  // unknown here: the next full run mounts a new element
    setTimeout(() => connect(s), s.backoff);
    s.backoff = Math.min(s.backoff * 2, 10000);
  }};
}}

function schedule(s) {{
  if (s.timer !== null || s.latest === null || s.latest === s.drawn || document.hidden) return;
  const wait = Math.max(0, s.last + s.gap - Date.now());
  s.timer = setTimeout(() => {{
    s.timer = null;
    if (s.gone || s.latest === null || s.latest === s.drawn) return;
    s.last = Date.now();
    s.api.setTriggerValue("changed", s.latest);
    clearTimeout(s.retry);
    s.retry = setTimeout(() => {{ s.last = 0; schedule(s); }}, RETRY_MS);
  }}, wait);
}}

export default function (component) {{
  const root = component.parentElement;
  const s = session(root);
  s.api = component;
  const data = component.data || {{}};
  s.gap = data.gap_ms || 400;
  if (data.url !== s.url) {{
    s.url = data.url || null;
    if (s.ws) {{ const old = s.ws; s.ws = null; old.close(); }}
  }}
  if (data.drawn !== s.drawn) {{
    s.drawn = data.drawn || null;
    clearTimeout(s.retry);
    tell(s);
  }}
  if (!s.visible) {{
    s.visible = () => schedule(s);
    document.addEventListener("visibilitychange", s.visible);
  }}
  connect(s);
  schedule(s);
  return () => {{
    s.gone = true;
    clearTimeout(s.timer);
    clearTimeout(s.retry);
    document.removeEventListener("visibilitychange", s.visible);
    if (s.ws) s.ws.close();
    sessions.delete(root);
  }};
}}
"""

_component = st.components.v2.component("realtime_studio.pulse", html='<div class="pulse"></div>', css=_CSS, js=_JS)


def _changed() -> None:
    """on_changed_change must be given for the trigger to rerun the fragment."""


def _board() -> tuple[PulseBoard, str]:
    """This tab's board and its token, made once per session."""
    held = st.session_state.get(_BOARD)
    if not (isinstance(held, tuple) and pulse_boards().get(held[1]) is held[0]):
        board = PulseBoard()
        held = (board, pulse_boards().register(board))
        st.session_state[_BOARD] = held
    return held


def mount(pulse: Pulse, drawn: str) -> None:
    """Register ``pulse`` on this tab's board and mount its element, which knows the page shows ``drawn``.

    Call it inside the fragment that ``pulse`` reruns."""
    board, token = _board()
    board.register(pulse.topic, pulse.read, interval_s=pulse.interval_s)
    _component(
        key=f"pulse-{pulse.topic}",
        data={
            "url": ROUTE.format(token=token, topic=pulse.topic),
            "drawn": drawn,
            "gap_ms": round(pulse.gap_s * 1000),
        },
        on_changed_change=_changed,
    )
