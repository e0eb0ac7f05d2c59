"""What a new call must be told to carry on a conversation: the transcript rendered as restore events.

When a call is replaced (a drop, the provider's session cap, a pause), the new call starts empty.
``plan_restore`` turns what was said so far into ``conversation.item.create`` client events, in
order: user words (typed text, and the transcripts of spoken turns) as user ``input_text``, the
assistant's replies as assistant ``output_text``, tool calls with their outputs (a tool still running
is restored as its call: the output follows when it is done), and the images
still inside the "last K images" window (from their thumbnails). Errors, notes and anything not
final are left out. The items keep their ids, so the transcript that already shows them does not
show them twice.

Within ``budget_bytes`` (the events' JSON, summed) the newest items are kept: the oldest are cut
first, a tool call together with its output, and the result says how many were cut. Sans-IO: no
clock, no sockets; the bridge sends the events (and must not count them as new turns).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from realtime.transcript import TranscriptItem

__all__ = ["DEFAULT_BUDGET_BYTES", "MAX_EVENT_BYTES", "Restore", "plan_restore"]

DEFAULT_BUDGET_BYTES = 512 * 1024  # restored context; the provider's own context window is the real limit
MAX_EVENT_BYTES = 65_536  # aiortc's data-channel message cap: one event must fit


@dataclass(frozen=True)
class Restore:
    events: tuple[dict[str, Any], ...]  # conversation.item.create client events, oldest first
    restored: int  # conversation items restored (a tool call and its output count as one)
    cut: int  # items left out, oldest first, to fit the budget

    @property
    def note(self) -> str:
        """For the page: "12 items restored", "12 items restored, 3 oldest left out"."""
        said = f"{self.restored} item{'s' if self.restored != 1 else ''} restored"
        return f"{said}, {self.cut} oldest left out" if self.cut else said


def _message(item_id: str, role: str, part: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "conversation.item.create",
        "item": {"id": item_id, "type": "message", "role": role, "content": [part]},
    }


def _whole_json(text: str | None) -> bool:
    try:
        json.loads(text or "")
    except ValueError:
        return False
    return True


def _events_for(
    item: TranscriptItem, images: Collection[str], outputs_queued: Collection[str]
) -> tuple[dict[str, Any], ...]:
    """The events that restore one transcript item (none when it cannot or need not be)."""
    if item.kind == "tool_call":
        # a call whose tool still runs is restored without its output, which follows when it is
        # done; so is one whose output is queued to go out after the restore
        if not item.call_id or not item.tool_name or not _whole_json(item.tool_args):
            return ()
        call = {
            "type": "function_call",
            "id": item.id,
            "call_id": item.call_id,
            "name": item.tool_name,
            "arguments": item.tool_args or "{}",
        }
        events: tuple[dict[str, Any], ...] = ({"type": "conversation.item.create", "item": call},)
        if item.tool_result is not None and item.call_id not in outputs_queued:
            output = {"type": "function_call_output", "call_id": item.call_id, "output": item.tool_result}
            events += ({"type": "conversation.item.create", "item": output},)
        return events
    if not item.final:
        return ()
    if item.kind == "image":
        if item.role != "user" or item.id not in images or not item.image_thumb:
            return ()
        url = "data:image/jpeg;base64," + base64.b64encode(item.image_thumb).decode("ascii")
        return (_message(item.id, "user", {"type": "input_image", "image_url": url, "detail": "low"}),)
    text = item.text.strip()
    if not text or item.role not in ("user", "assistant"):
        return ()
    if item.role == "user":
        return (_message(item.id, "user", {"type": "input_text", "text": text}),)
    return (_message(item.id, "assistant", {"type": "output_text", "text": text}),)


def _size(event: dict[str, Any]) -> int:
    return len(json.dumps(event).encode("utf-8"))


def plan_restore(
    items: Sequence[TranscriptItem],
    *,
    images_in_window: Collection[str] = (),
    budget_bytes: int = DEFAULT_BUDGET_BYTES,
    outputs_queued: Collection[str] = (),
) -> Restore:
    """The restore of ``items`` (a transcript snapshot, in order) within ``budget_bytes``;
    ``outputs_queued``: call ids whose tool output is still to be sent (it goes after the restore)."""
    restorable = [events for item in items if (events := _events_for(item, images_in_window, outputs_queued))]
    sendable = [g for g in restorable if all(_size(e) <= MAX_EVENT_BYTES for e in g)]  # each fits the channel
    kept: list[tuple[dict[str, Any], ...]] = []
    used = 0
    for group in reversed(sendable):  # newest first, until the budget is spent
        size = sum(_size(e) for e in group)
        if used + size > budget_bytes:
            break
        kept.append(group)
        used += size
    kept.reverse()
    events = tuple(e for group in kept for e in group)
    return Restore(events=events, restored=len(kept), cut=len(restorable) - len(kept))
