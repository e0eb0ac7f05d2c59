"""The conversation as people see it: a sans-IO fold over Realtime events.

``Transcript.apply(event)`` takes one server event, or one client event the app sent (typed text,
images, function call outputs), and updates the items. ``snapshot()`` returns an immutable tuple of
``TranscriptItem`` in conversation order, safe to call from any thread.

Rules (documented here because the page and the history depend on them):

* One conversation item is one ``TranscriptItem``, with the provider's item id. A
  ``function_call_output`` item is not shown on its own: its output becomes ``tool_result`` of the
  ``function_call`` item with the same ``call_id``.
* Order follows ``previous_item_id`` (``conversation.item.added`` / ``.created`` / ``.done``,
  ``input_audio_buffer.committed``, client ``conversation.item.create``): an item goes right after
  its predecessor, and moves there if it was first seen elsewhere. Without a (known) predecessor an
  item is appended. Error items are appended when they happen.
* ``final`` is False while text may still change: user audio until its transcription completes
  (or fails; with ``expect_input_transcripts=False`` it is final at once), assistant items until
  their text/transcript is done or their response is done, tool calls until their result is known.
* ``conversation.item.deleted`` removes the item, except images: the app deletes old images to
  bound cost, but the user still sees what they sent, so image items stay visible.
* ``conversation.item.truncated`` (barge-in) marks the item ``truncated`` and final; the text
  shown so far is kept.
* Malformed or unknown events are ignored (counted in ``ignored``); ``apply`` never raises on them.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import from_error_event

__all__ = ["THUMB_MAX_SIDE", "Transcript", "TranscriptItem", "thumbnail_from_data_url"]

log = logging.getLogger(__name__)

Role = Literal["user", "assistant", "tool", "error", "system"]
Kind = Literal["text", "audio", "image", "tool_call"]

THUMB_MAX_SIDE = 192
TRANSCRIPTION_FAILED_TEXT = "(could not transcribe)"


@dataclass(frozen=True)
class TranscriptItem:
    id: str
    role: Role
    kind: Kind
    text: str = ""
    final: bool = False
    image_thumb: bytes | None = field(default=None, repr=False)  # JPEG bytes
    tool_name: str | None = None
    tool_args: str | None = None  # the JSON arguments as the model wrote them
    tool_result: str | None = None  # the JSON output the tool returned
    truncated: bool = False  # the assistant was interrupted; text is what had been produced
    call_id: str | None = None  # function call id (tool items)


@dataclass
class _Entry:
    id: str
    role: Role
    kind: Kind
    text: str = ""
    final: bool = False
    image_thumb: bytes | None = None
    tool_name: str | None = None
    tool_args: str | None = None
    tool_result: str | None = None
    truncated: bool = False
    call_id: str | None = None
    response_id: str | None = None
    image_failed: bool = False

    def freeze(self) -> TranscriptItem:
        return TranscriptItem(
            id=self.id,
            role=self.role,
            kind=self.kind,
            text=self.text,
            final=self.final,
            image_thumb=self.image_thumb,
            tool_name=self.tool_name,
            tool_args=self.tool_args,
            tool_result=self.tool_result,
            truncated=self.truncated,
            call_id=self.call_id,
        )


def thumbnail_from_data_url(url: str, max_side: int = THUMB_MAX_SIDE) -> bytes | None:
    """JPEG thumbnail bytes for an image data URL, or None if it is not a decodable image."""
    if not isinstance(url, str) or not url.startswith("data:") or ";base64," not in url[:100]:
        return None
    try:
        raw = base64.b64decode(url.split(",", 1)[1], validate=False)
    except (binascii.Error, ValueError):
        return None
    try:
        from PIL import Image

        with Image.open(io.BytesIO(raw)) as img:
            img.load()
            if max(img.size) <= max_side and img.format == "JPEG":
                return raw
            img = img.convert("RGB")
            img.thumbnail((max_side, max_side))
            out = io.BytesIO()
            img.save(out, format="JPEG", quality=80)
            return out.getvalue()
    except Exception:  # PIL raises many types for garbage input
        return None


_ITEM_EVENTS = {
    "conversation.item.added": False,
    "conversation.item.created": False,  # beta name
    "conversation.item.done": True,
    "conversation.item.retrieved": True,
}
_OUTPUT_ITEM_EVENTS = {"response.output_item.added": False, "response.output_item.done": True}
_TEXT_DELTA = ("response.output_text.delta", "response.text.delta")
_TEXT_DONE = ("response.output_text.done", "response.text.done")
_TRANSCRIPT_DELTA = ("response.output_audio_transcript.delta", "response.audio_transcript.delta")
_TRANSCRIPT_DONE = ("response.output_audio_transcript.done", "response.audio_transcript.done")


class Transcript:
    def __init__(self, *, expect_input_transcripts: bool = True):
        self.expect_input_transcripts = expect_input_transcripts
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._order: list[str] = []
        self._alias: dict[str, str] = {}  # function_call_output item id -> call entry id
        self._calls: dict[str, str] = {}  # call_id -> entry id
        self._pending: list[str] = []  # client items sent without an id, waiting for the server's id
        self._local_seq = 0
        self._snapshot: tuple[TranscriptItem, ...] = ()
        self._dirty = False
        self.ignored = 0

    # --- public ---------------------------------------------------------------------------

    def apply(self, event: Mapping[str, Any]) -> tuple[TranscriptItem, ...]:
        """Fold one event in. Returns the items that became final because of it."""
        if not isinstance(event, Mapping):
            self.ignored += 1
            return ()
        with self._lock:
            was_final = {k for k, e in self._entries.items() if e.final}
            try:
                handled = self._apply(event)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                log.debug("transcript ignored malformed %s: %s", event.get("type"), exc)
                handled = False
            if not handled:
                self.ignored += 1
                return ()
            self._dirty = True
            return tuple(
                self._entries[k].freeze() for k in self._order if self._entries[k].final and k not in was_final
            )

    def snapshot(self) -> tuple[TranscriptItem, ...]:
        with self._lock:
            if self._dirty:
                self._snapshot = tuple(self._entries[k].freeze() for k in self._order)
                self._dirty = False
            return self._snapshot

    def add_system_note(self, text: str, *, role: Role = "system") -> TranscriptItem:
        """A local note (e.g. "Connected to the local engine"), appended, final."""
        with self._lock:
            entry = self._new_entry(self._local_id("note"), role, "text")
            entry.text = text
            entry.final = True
            self._dirty = True
            return entry.freeze()

    # --- internals ------------------------------------------------------------------------

    def _local_id(self, prefix: str) -> str:
        self._local_seq += 1
        return f"{prefix}_local_{self._local_seq}"

    def _new_entry(self, item_id: str, role: Role, kind: Kind, previous: str | None = None) -> _Entry:
        entry = _Entry(item_id, role, kind)
        self._entries[item_id] = entry
        self._order.append(item_id)
        if previous is not None:
            self._place(item_id, previous)
        return entry

    def _resolve(self, item_id: Any) -> str | None:
        if not isinstance(item_id, str):
            return None
        item_id = self._alias.get(item_id, item_id)
        return item_id if item_id in self._entries else None

    def _place(self, item_id: str, previous: Any) -> None:
        prev = self._resolve(previous)
        if prev is None or prev == item_id:
            return
        self._order.remove(item_id)
        self._order.insert(self._order.index(prev) + 1, item_id)

    def _entry(self, item_id: Any, role: Role, kind: Kind) -> _Entry:
        if not isinstance(item_id, str) or not item_id:
            raise ValueError("event without item_id")
        key = self._resolve(item_id)
        if key is not None:
            return self._entries[key]
        return self._new_entry(item_id, role, kind)

    def _apply(self, ev: Mapping[str, Any]) -> bool:
        t = ev.get("type")
        if t in _ITEM_EVENTS:
            return self._upsert(ev["item"], ev.get("previous_item_id"), done=_ITEM_EVENTS[t])
        if t in _OUTPUT_ITEM_EVENTS:
            return self._upsert(ev["item"], None, done=_OUTPUT_ITEM_EVENTS[t], response_id=ev.get("response_id"))
        if t == "conversation.item.create":  # client event
            return self._upsert(ev["item"], ev.get("previous_item_id"), done=True, client=True)
        if t == "input_audio_buffer.committed":
            item_id = ev["item_id"]
            if self._resolve(item_id) is None:
                self._new_entry(item_id, "user", "audio", ev.get("previous_item_id"))
            else:
                self._place(self._resolve(item_id), ev.get("previous_item_id"))
            return True
        if t == "conversation.item.input_audio_transcription.delta":
            e = self._entry(ev["item_id"], "user", "audio")
            if not e.final:
                e.text += ev.get("delta") or ""
            return True
        if t == "conversation.item.input_audio_transcription.completed":
            e = self._entry(ev["item_id"], "user", "audio")
            e.text = str(ev.get("transcript") or "").strip()
            e.final = True
            return True
        if t == "conversation.item.input_audio_transcription.failed":
            e = self._entry(ev["item_id"], "user", "audio")
            if not e.text:
                e.text = TRANSCRIPTION_FAILED_TEXT
            e.final = True
            return True
        if t in _TEXT_DELTA or t in _TRANSCRIPT_DELTA:
            kind: Kind = "text" if t in _TEXT_DELTA else "audio"
            e = self._entry(ev["item_id"], "assistant", kind)
            if kind == "audio":
                e.kind = "audio"
            e.response_id = ev.get("response_id") or e.response_id
            if not e.final:
                e.text += str(ev["delta"])
            return True
        if t in _TEXT_DONE or t in _TRANSCRIPT_DONE:
            e = self._entry(ev["item_id"], "assistant", "text" if t in _TEXT_DONE else "audio")
            if not e.truncated:
                final_text = ev.get("text") if t in _TEXT_DONE else ev.get("transcript")
                if isinstance(final_text, str):
                    e.text = final_text
            e.final = True
            return True
        if t == "response.function_call_arguments.delta":
            e = self._entry(ev["item_id"], "tool", "tool_call")
            self._bind_call(e, ev.get("call_id"))
            e.tool_args = (e.tool_args or "") + str(ev["delta"])
            return True
        if t == "response.function_call_arguments.done":
            e = self._entry(ev["item_id"], "tool", "tool_call")
            self._bind_call(e, ev.get("call_id"))
            e.tool_args = str(ev["arguments"])
            e.tool_name = ev.get("name") or e.tool_name
            return True
        if t == "response.done":
            return self._response_done(ev["response"])
        if t == "conversation.item.deleted":
            return self._delete(ev["item_id"])
        if t == "output_audio_buffer.cleared":  # WebRTC: the voice was cut off (Interrupt, barge-in)
            return self._interrupted(ev.get("response_id"))
        if t == "conversation.item.truncated":
            key = self._resolve(ev["item_id"])
            if key is None:
                return False
            e = self._entries[key]
            e.truncated = True
            e.final = True
            return True
        if t == "error":
            err = from_error_event(ev)
            entry = self._new_entry(
                (str(ev.get("event_id") or "") and f"error_{ev['event_id']}") or self._local_id("error"),
                "error",
                "text",
            )
            entry.text = err.message
            entry.final = True
            return True
        return False

    def _bind_call(self, e: _Entry, call_id: Any) -> None:
        if isinstance(call_id, str) and call_id:
            e.call_id = call_id
            self._calls[call_id] = e.id

    def _match_pending(self, role: str, text: str, has_image: bool) -> str | None:
        for local_id in self._pending:
            e = self._entries.get(local_id)
            if e is None:
                continue
            if (
                e.role == role
                and (e.image_thumb is not None or e.image_failed) == has_image
                and (not text or e.text == text)
            ):
                return local_id
        return None

    def _rename(self, old: str, new: str) -> None:
        entry = self._entries.pop(old)
        entry.id = new
        self._entries[new] = entry
        self._order[self._order.index(old)] = new
        self._pending.remove(old)
        if entry.call_id:
            self._calls[entry.call_id] = new

    def _upsert(
        self,
        item: Mapping[str, Any],
        previous: Any,
        *,
        done: bool,
        client: bool = False,
        response_id: Any = None,
    ) -> bool:
        itype = item.get("type")
        item_id = item.get("id")
        if itype == "function_call_output":
            return self._function_output(item, previous)
        if itype == "function_call":
            if not item_id:
                item_id = self._local_id("call")
            e = self._entry(item_id, "tool", "tool_call")
            self._bind_call(e, item.get("call_id"))
            e.tool_name = item.get("name") or e.tool_name
            if item.get("arguments"):
                e.tool_args = str(item["arguments"])
            if previous is not None:
                self._place(e.id, previous)
            return True
        if itype != "message":
            return False
        role = item.get("role")
        if role not in ("user", "assistant", "system"):
            return False
        texts: list[str] = []
        kind: Kind = "text"
        image_url: str | None = None
        transcript_pending = False
        for part in item.get("content") or ():
            ptype = part.get("type")
            if ptype in ("input_text", "output_text", "text"):
                texts.append(str(part.get("text") or ""))
            elif ptype in ("input_audio", "output_audio", "audio"):
                kind = "audio"
                if part.get("transcript"):
                    texts.append(str(part["transcript"]))
                elif role == "user":
                    transcript_pending = True
            elif ptype == "input_image":
                kind = "image"
                image_url = part.get("image_url") or image_url
        text = " ".join(t for t in texts if t).strip() if role != "assistant" else "".join(texts)
        if not item_id:
            if not client:
                return False
            item_id = self._local_id("item")
            self._pending.append(item_id)
        elif item_id not in self._entries and item_id not in self._alias and not client:
            local = self._match_pending(role, text, kind == "image")
            if local is not None:
                self._rename(local, item_id)
        key = self._resolve(item_id)
        e = self._entries[key] if key is not None else self._new_entry(item_id, role, kind)
        if kind != "text" or e.kind == "tool_call":
            e.kind = kind
        if response_id:
            e.response_id = str(response_id)
        if text and not (role == "assistant" and e.truncated):
            e.text = text
        if image_url and e.image_thumb is None and not e.image_failed:
            e.image_thumb = thumbnail_from_data_url(image_url)
            if e.image_thumb is None:
                e.image_failed = True
                e.text = e.text or "(image could not be shown)"
        if previous is not None:
            self._place(e.id, previous)
        if role == "assistant":
            status = item.get("status")
            if status in ("completed", "incomplete") or (done and status is None):
                e.final = True
        elif kind == "audio" and role == "user":
            if not self.expect_input_transcripts or (texts and not transcript_pending and done):
                e.final = True
        else:
            e.final = True
        return True

    def _function_output(self, item: Mapping[str, Any], previous: Any) -> bool:
        call_id = item.get("call_id")
        output = item.get("output")
        key = self._calls.get(call_id) if isinstance(call_id, str) else None
        if key is None or key not in self._entries:
            item_id = item.get("id") or self._local_id("output")
            e = self._entries.get(item_id) or self._new_entry(item_id, "tool", "tool_call", previous)
            self._bind_call(e, call_id)
        else:
            e = self._entries[key]
            if item.get("id"):
                self._alias[str(item["id"])] = e.id
        if output is not None:
            e.tool_result = str(output)
            e.final = True
        return True

    def _response_done(self, response: Mapping[str, Any]) -> bool:
        rid = response.get("id")
        for item in response.get("output") or ():
            if isinstance(item, Mapping):
                self._upsert(item, None, done=True, response_id=rid)
        for e in self._entries.values():
            if e.role == "assistant" and not e.final and (e.response_id == rid or rid is None):
                e.final = True
        status = response.get("status")
        if status == "cancelled":
            self._interrupted(rid)
        details = response.get("status_details") or {}
        if status == "failed" and isinstance(details, Mapping) and isinstance(details.get("error"), Mapping):
            err = from_error_event({"type": "error", "error": details["error"]})
            entry = self._new_entry(self._local_id("error"), "error", "text")
            entry.text = err.message
            entry.final = True
        return True

    def _interrupted(self, response_id: Any) -> bool:
        """The assistant's items of a cancelled or cut-off response: marked ``truncated`` and final."""
        if not isinstance(response_id, str):
            return False
        hit = False
        for e in self._entries.values():
            if e.role == "assistant" and e.response_id == response_id:
                e.truncated = e.final = hit = True
        return hit

    def _delete(self, item_id: Any) -> bool:
        if not isinstance(item_id, str):
            return False
        if item_id in self._alias:  # a function_call_output: the call stays shown
            del self._alias[item_id]
            return True
        e = self._entries.get(item_id)
        if e is None:
            return False
        if e.kind == "image":
            return True  # kept visible on purpose (see module docstring)
        del self._entries[item_id]
        self._order.remove(item_id)
        if e.call_id and self._calls.get(e.call_id) == item_id:
            del self._calls[e.call_id]
        for alias, target in list(self._alias.items()):
            if target == item_id:
                del self._alias[alias]
        if item_id in self._pending:
            self._pending.remove(item_id)
        return True
