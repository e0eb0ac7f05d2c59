"""Transcript items as chat bubbles: user, assistant (partial text streams in), tool breadcrumbs,
image thumbnails, errors."""

from __future__ import annotations

import re
from typing import Any, Iterable

import streamlit as st

from ui.format import tool_breadcrumb

_SAFE = re.compile(r"[^A-Za-z0-9_-]")
EMPTY_HINT = (
    "Press **Start conversation**, allow the microphone and camera, and just talk: "
    "what you say and what the assistant answers appears here as it happens. "
    "You can also type a message in the box below."
)


def render_transcript(items: Iterable[Any], *, live: bool, failed: bool = False) -> None:
    items = tuple(items)
    if not items:
        if failed:
            st.caption("The call could not continue. Press **Stop (hang up)**, fix the problem above, then Start again.")
        elif live:
            st.caption("Connected. Say something, or type a message below.")
        else:
            st.info(EMPTY_HINT, icon=":material/forum:")
        return
    for item in items:
        role = "tool" if item.kind == "tool_call" else item.role
        with st.container(key=f"item-{role}-{_SAFE.sub('_', item.id)}"):
            _render_item(item)


def _render_item(item: Any) -> None:
    role, kind = item.role, item.kind
    if kind == "tool_call" or role == "tool":
        with st.chat_message("assistant", avatar=":material/build:"):
            st.caption(f"Tool · `{tool_breadcrumb(item.tool_name, item.tool_args, item.tool_result)}`")
        return
    if role == "error":
        st.error(item.text or "The provider reported an error.", icon=":material/error:")
        return
    if role == "system":
        st.caption(item.text)
        return
    avatar = ":material/person:" if role == "user" else ":material/smart_toy:"
    with st.chat_message("user" if role == "user" else "assistant", avatar=avatar):
        if kind == "image":
            if item.image_thumb:
                st.image(item.image_thumb, width=160, caption=item.text or "Camera frame sent")
            else:
                st.caption(item.text or "Camera frame sent")
            return
        text = item.text or ""
        if not item.final:
            if role == "user" and not text:
                st.caption("(hearing you…)")
                return
            text = text + " ▌"
        st.markdown(_escape(text) if text else "_(no words)_")
        if getattr(item, "truncated", False):
            st.caption(":material/stop_circle: Interrupted")


def _escape(text: str) -> str:
    # Model text is shown as text, not as markup that could render headings or links oddly.
    for ch in ("\\", "`", "*", "_", "#", "<", ">", "[", "]", "$"):
        text = text.replace(ch, "\\" + ch)
    return text
