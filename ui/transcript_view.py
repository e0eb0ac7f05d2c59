"""Transcript items as a chat: user and assistant bubbles (partial text streams in), tool breadcrumbs,
image thumbnails, one-line errors. Newest at the bottom, and the box follows the newest item.

Following without a component: the items sit in one wrapper inside the caller's scrolling container
(`st.container(height=...)`), and a style rule (`STYLE`, put on the page by `ui.page_style.apply()`)
turns that container into a reversed flex column.
A reversed column starts scrolled to its end and stays there as items are added, so the newest
item is always in view (the order on screen is still oldest-first). Only the latest `MAX_RECENT`
items are drawn as bubbles; older ones are listed as one-liners in an expander at the top.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar

import streamlit as st

from scenarios import agent_label
from ui.format import (
    INTERRUPTED_MARK,
    STREAMING_MARK,
    escape_markdown,
    one_line,
    tool_breadcrumb,
    tool_call_text,
    tool_failed,
)

if TYPE_CHECKING:
    from realtime.transcript import Role, TranscriptItem

T = TypeVar("T")

MAX_RECENT = 40
FOLLOW_KEY = "transcript-follow"  # the wrapper whose scrolling parent follows the newest item
LOG_KEY = "transcript-log"  # the same without following (History)
THUMB_WIDTH = 128

_SAFE = re.compile(r"[^A-Za-z0-9_-]")
# The bridge's note for a handoff between a scenario's agents: "front_desk → billing".
_HANDOFF = re.compile(r"([A-Za-z_][A-Za-z0-9_-]{0,63}) \u2192 ([A-Za-z_][A-Za-z0-9_-]{0,63})")
HANDOFF_ICON = ":material/swap_horiz:"
EMPTY_HINT = (
    "Press **Start conversation**, allow the microphone and camera, and just talk: "
    "what you say and what the assistant answers appears here as it happens. "
    "You can also type a message in the box below."
)

# The scrolling container that holds the follow wrapper: reversed column (starts at the end and
# stays there), the wrapper pushed to the top while it is shorter than the box, and a height that
# leaves the page's top (title or call bar, status, call controls) and the chat box in view on a
# 1280x800 screen: Streamlit keeps a page with a chat input scrolled to its bottom, so anything taller
# than the window loses its top. The heights assume app.py's call bar (`st-key-callbar`, about 330 px
# during a call), shorter when an alert shows in it, and a page without it. The box's own `height=`
# in app.py is overridden. Bubbles are a little tighter than Streamlit's default.
# (`:has()` cannot be nested, so each selector spells out the path to the wrapper.)
_BOX = f'div[data-testid="stVerticalBlock"]:has(> div > div.st-key-{FOLLOW_KEY})'
_WRAP = f'div[data-testid="stLayoutWrapper"]:has(> div > div > div.st-key-{FOLLOW_KEY})'  # holds the height
_HEIGHTS = (
    ("", "max(260px, calc(100vh - 390px))"),
    ("body:has(.st-key-callbar) ", "max(220px, calc(100vh - 580px))"),
    ('body:has(.st-key-callbar [data-testid="stAlert"]) ', "max(160px, calc(100vh - 700px))"),
)
STYLE = (
    "<style>\n"
    + "\n".join(f"{scope}{_WRAP} {{ flex: 0 0 {h} !important; height: {h} !important; }}" for scope, h in _HEIGHTS)
    + f"""
{_BOX} {{ flex-direction: column-reverse; justify-content: flex-start; }}
{_BOX} > div {{ margin-bottom: auto; }}
.st-key-{FOLLOW_KEY} [data-testid="stChatMessage"], .st-key-{LOG_KEY} [data-testid="stChatMessage"] {{
  padding: 0.35rem 0.6rem; gap: 0.6rem; }}
.st-key-{FOLLOW_KEY} [class*="st-key-item-tool-"], .st-key-{LOG_KEY} [class*="st-key-item-tool-"] {{
  padding-left: 2.9rem; }}
</style>"""
)


def split_recent(items: Sequence[T], recent: int | None) -> tuple[tuple[T, ...], tuple[T, ...]]:
    """(older, newest): the last `recent` items are drawn in full; None draws all."""
    every = tuple(items)
    if recent is None or len(every) <= recent:
        return (), every
    cut = len(every) - max(recent, 0)
    return every[:cut], every[cut:]


def _role(item: TranscriptItem) -> Role:
    return "tool" if item.kind == "tool_call" or item.role == "tool" else item.role


def bubble_text(item: TranscriptItem) -> str:
    """The text of a user/assistant bubble, as markdown: escaped model text, a trailing "…" while it
    streams in, "(interrupted)" when the reply was cut off."""
    text = escape_markdown(item.text or "")
    if not item.final and not item.truncated:
        return (text + STREAMING_MARK) if text else STREAMING_MARK.strip()
    if item.truncated:
        return f"{text} :gray[*{INTERRUPTED_MARK}*]" if text else f":gray[*{INTERRUPTED_MARK}*]"
    return text or ":gray[*(no words)*]"


def handoff(item: TranscriptItem) -> tuple[str, str] | None:
    """(from, to) when `item` is the bridge's handoff note (a system note reading exactly
    ``<agent> → <agent>`` with identifier-like names); None for anything else."""
    if item.role != "system" or item.kind != "text":
        return None
    match = _HANDOFF.fullmatch(item.text or "")
    return (match.group(1), match.group(2)) if match else None


def handoff_text(source: str, target: str) -> str:
    """``Front desk → Billing`` (plain text)."""
    return f"{agent_label(source)} \u2192 {agent_label(target)}"


def item_line(item: TranscriptItem) -> str:
    """One item as one plain line (the "earlier" list and exports): ``You: …``, ``Assistant: …``."""
    role = _role(item)
    if role == "tool":
        return tool_breadcrumb(item.tool_name, item.tool_args, item.tool_result)
    if role == "error":
        return "⚠ " + one_line(item.text or "The provider reported an error.")
    if role == "system":
        hand = handoff(item)
        return handoff_text(*hand) if hand else one_line(item.text)
    who = "You" if role == "user" else "Assistant"
    if item.kind == "image":
        return f"{who}: [{one_line(item.text) or 'camera frame'}]"
    text = one_line(item.text, 160) or "…"
    if item.truncated:
        text += f" {INTERRUPTED_MARK}"
    return f"{who}: {text}"


def render_transcript(
    items: Iterable[TranscriptItem],
    *,
    live: bool,
    failed: bool = False,
    follow: bool = True,
    recent: int | None = MAX_RECENT,
    image_sources: Mapping[str, str] | None = None,
) -> None:
    """Draw the transcript inside the caller's (scrolling) container. `follow` keeps the newest item
    in view (the conversation page); History passes follow=False, recent=None to show everything."""
    every = tuple(items)
    with st.container(key=FOLLOW_KEY if follow else LOG_KEY):
        if not every:
            if failed:
                st.caption(
                    "The call could not continue. Press **Stop (hang up)**, fix the problem above, then Start again."
                )
            elif live:
                st.caption("Connected. Say something, or type a message below.")
            else:
                st.info(EMPTY_HINT, icon=":material/forum:")
            return
        older, newest = split_recent(every, recent)
        if older:
            with st.expander(
                f"{len(older)} earlier message{'s' if len(older) != 1 else ''}", icon=":material/history:"
            ):
                st.markdown("\n".join(f"- {escape_markdown(item_line(item))}" for item in older))
        for item in newest:
            with st.container(key=f"item-{_role(item)}-{_SAFE.sub('_', item.id)}"):
                _render_item(item, (image_sources or {}).get(item.id))


_SENT_CAPTIONS = {"screen": "Screen frame sent", "client": "Frame from the API client"}


def _render_item(item: TranscriptItem, image_source: str | None = None) -> None:
    role, kind = _role(item), item.kind
    if role == "tool":
        # The icon font ships with Streamlit (an emoji may be missing from the system's fonts).
        crumb = ":material/build: " + escape_markdown(tool_call_text(item.tool_name, item.tool_args, item.tool_result))
        st.caption(f":red[{crumb}]" if tool_failed(item.tool_result) else crumb)
        return
    if role == "error":
        st.error(one_line(item.text or "The provider reported an error."), icon=":material/error:")
        return
    if role == "system":
        hand = handoff(item)
        if hand is not None:  # a breadcrumb: which agent speaks from here on
            st.caption(f"{HANDOFF_ICON} {escape_markdown(handoff_text(*hand))}")
        else:
            st.caption(escape_markdown(one_line(item.text, 300)))
        return
    avatar = ":material/person:" if role == "user" else ":material/smart_toy:"
    with st.chat_message("user" if role == "user" else "assistant", avatar=avatar):
        if kind == "image":
            caption = one_line(item.text) or _SENT_CAPTIONS.get(image_source or "", "Camera frame sent")
            if item.image_thumb:
                st.image(item.image_thumb, width=THUMB_WIDTH, caption=caption)
            else:
                st.caption(caption)
            return
        if role == "user" and not item.final and not item.text:
            st.caption("(hearing you…)")
            return
        st.markdown(bubble_text(item))
