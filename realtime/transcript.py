"""The conversation as people see it: a sans-IO fold over Realtime events.

``Transcript.apply(event)`` takes one server event, or the app's own ``ItemCreate`` (typed text,
images, function call outputs), as read by ``realtime.events``, and updates the items.
``snapshot()`` returns an immutable tuple of ``TranscriptItem`` in conversation order, safe to
call from any thread.

Rules (documented here because the page and the history depend on them):

* One conversation item is one ``TranscriptItem``, with the provider's item id. A
  ``function_call_output`` item is not shown on its own: its output becomes ``tool_result`` of the
  ``function_call`` item with the same ``call_id``.
* Order follows ``previous_item_id`` (``ItemUpdate``, ``InputCommitted``, and the app's own
  ``ItemCreate``): an item goes right after
  its predecessor, and moves there if it was first seen elsewhere. Without a (known) predecessor an
  item is appended. Error items are appended when they happen.
* ``final`` is False while text may still change: user audio until its transcription completes
  (or fails; with ``expect_input_transcripts=False`` it is final at once), assistant items until
  their text/transcript is done or their response is done, tool calls until their result is known.
* ``ItemDeleted`` removes the item, except images: the app deletes old images to
  bound cost, but the user still sees what they sent, so image items stay visible.
* When the output audio buffer is cleared (WebRTC: Interrupt, barge-in), that response's reply and
  every later audio reply not yet played to the end are marked ``truncated``.
* ``ItemTruncated`` (barge-in) marks the item ``truncated`` and final; the text
  shown so far is kept.
* Events come typed from ``realtime.events``; ``Unreadable`` ones, and those that name an item
  the transcript does not know, are ignored (counted in ``ignored``).
"""

from __future__ import annotations

import base64
import binascii
import io
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import describe_error
from .events import (
    AudioBuffer,
    FunctionArgsDelta,
    FunctionArgsDone,
    InputCommitted,
    InputTranscript,
    InputTranscriptFailed,
    Item,
    ItemCreate,
    ItemDeleted,
    ItemTruncated,
    ItemUpdate,
    OutputDelta,
    OutputDone,
    ProviderError,
    ResponseDone,
    ServerEvent,
)

__all__ = ["THUMB_MAX_SIDE", "Transcript", "TranscriptItem", "thumbnail_from_data_url"]


Role = Literal["user", "assistant", "tool", "error", "system"]
Kind = Literal["text", "audio", "image", "tool_call"]

TranscriptEvent = ServerEvent | ItemCreate

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
    # the JPEG as the model got it: only on the update that made the item final (History keeps it
    # for replays); the transcript itself keeps the thumbnail alone
    image_sent: bytes | None = field(default=None, repr=False)


@dataclass
class _Entry:
    id: str
    role: Role
    kind: Kind
    text: str = ""
    final: bool = False
    image_thumb: bytes | None = None
    image_sent: bytes | None = None
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
            image_sent=self.image_sent,
            tool_name=self.tool_name,
            tool_args=self.tool_args,
            tool_result=self.tool_result,
            truncated=self.truncated,
            call_id=self.call_id,
        )


def jpeg_from_data_url(url: str) -> bytes | None:
    """The JPEG bytes of a ``data:image/jpeg;base64,`` URL (what the app sends), else None."""
    if not isinstance(url, str) or not url.startswith("data:image/jpeg;base64,"):
        return None
    try:
        raw = base64.b64decode(url.split(",", 1)[1], validate=False)
    except (binascii.Error, ValueError):
        return None
    return raw if raw[:2] == b"\xff\xd8" else None


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
            rgb = img.convert("RGB")
            rgb.thumbnail((max_side, max_side))
            out = io.BytesIO()
            rgb.save(out, format="JPEG", quality=80)
            return out.getvalue()
    except Exception:  # PIL raises many types for garbage input
        return None


class Transcript:
    def __init__(self, *, expect_input_transcripts: bool = True):
        self.expect_input_transcripts = expect_input_transcripts
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._order: list[str] = []
        self._alias: dict[str, str] = {}  # function_call_output item id -> call entry id
        self._calls: dict[str, str] = {}  # call_id -> entry id
        self._pending: list[str] = []  # client items sent without an id, waiting for the server's id
        self._played: set[str] = set()  # responses whose audio played to the end (WebRTC)
        self._local_seq = 0
        self._snapshot: tuple[TranscriptItem, ...] = ()
        self._dirty = False
        self._revision = 0  # counts changes: the page reruns its live transcript when it moves
        self.ignored = 0

    # --- public ---------------------------------------------------------------------------

    def apply(self, event: TranscriptEvent) -> tuple[TranscriptItem, ...]:
        """Fold one event in. Returns the items that became final because of it."""
        with self._lock:
            was_final = {k for k, e in self._entries.items() if e.final}
            handled = self._apply(event)
            if not handled:
                self.ignored += 1
                return ()
            self._touch()
            done = [self._entries[k] for k in self._order if self._entries[k].final and k not in was_final]
            finals = tuple(e.freeze() for e in done)
            for e in done:
                e.image_sent = None  # handed on once; the page and memory keep the thumbnail
            return finals

    @property
    def revision(self) -> int:
        """A number that grows with every change to the items (cheap: no snapshot is built)."""
        return self._revision

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
            self._touch()
            return entry.freeze()

    def cut_short(self, reply_mark: str, unheard: str) -> tuple[TranscriptItem, ...]:
        """The call carrying the conversation was lost: what was still in progress ends here. A reply
        keeps what was produced and gets ``reply_mark``; the user's speech still waiting for its
        transcript (which the lost call will never send) says ``unheard`` unless some text came.
        Returns the items that became final."""
        with self._lock:
            changed: list[_Entry] = []
            for key in self._order:
                e = self._entries[key]
                if e.final or e.role not in ("assistant", "user"):
                    continue
                if e.role == "assistant":
                    e.text = f"{e.text.rstrip()} {reply_mark}".strip()
                elif not e.text.strip():
                    e.text = unheard
                e.final = True
                changed.append(e)
            if changed:
                self._touch()
            return tuple(e.freeze() for e in changed)

    def cut_last_reply(self) -> TranscriptItem | None:
        """The latest assistant reply was stopped (an output guardrail): marked ``truncated``, final."""
        with self._lock:
            for key in reversed(self._order):
                e = self._entries[key]
                if e.role == "assistant":
                    e.truncated = e.final = True
                    self._touch()
                    return e.freeze()
            return None

    # --- internals ------------------------------------------------------------------------

    def _touch(self) -> None:
        self._dirty = True
        self._revision += 1

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

    def _resolve(self, item_id: str | None) -> str | None:
        if item_id is None:
            return None
        item_id = self._alias.get(item_id, item_id)
        return item_id if item_id in self._entries else None

    def _place(self, item_id: str, previous: str | None) -> None:
        prev = self._resolve(previous)
        if prev is None or prev == item_id:
            return
        order = self._order
        here, after = order.index(item_id), order.index(prev)
        if here > after and all(self._is_note(k) for k in order[after + 1 : here]):
            return  # already in place (a restored item seen again): notes between stay where they are
        order.remove(item_id)
        at = order.index(prev) + 1
        # local notes stay where they were said: an item that follows its predecessor goes after the
        # notes written since (a handoff, a reconnect), else every note would drift to the end
        while at < len(order) and self._is_note(order[at]):
            at += 1
        order.insert(at, item_id)

    def _is_note(self, key: str) -> bool:
        return "_local_" in key and self._entries[key].role in ("system", "error")

    def _entry(self, item_id: str, role: Role, kind: Kind) -> _Entry:
        key = self._resolve(item_id)
        if key is not None:
            return self._entries[key]
        return self._new_entry(item_id, role, kind)

    def _apply(self, ev: TranscriptEvent) -> bool:
        handler = _HANDLERS.get(type(ev))
        return False if handler is None else handler(self, ev)

    def _on_item(self, ev: ItemUpdate) -> bool:
        return self._upsert(ev.item, ev.previous_item_id, done=ev.done, response_id=ev.response_id)

    def _on_item_create(self, ev: ItemCreate) -> bool:  # the app's own client event
        return self._upsert(ev.item, ev.previous_item_id, done=True, client=True)

    def _on_committed(self, ev: InputCommitted) -> bool:
        key = self._resolve(ev.item_id)
        if key is None:
            self._new_entry(ev.item_id, "user", "audio", ev.previous_item_id)
        else:
            self._place(key, ev.previous_item_id)
        return True

    def _on_input_transcript(self, ev: InputTranscript) -> bool:
        e = self._entry(ev.item_id, "user", "audio")
        if ev.done:
            e.text = ev.text
            e.final = True
        elif not e.final:
            e.text += ev.text
        return True

    def _on_input_failed(self, ev: InputTranscriptFailed) -> bool:
        e = self._entry(ev.item_id, "user", "audio")
        if not e.text:
            e.text = TRANSCRIPTION_FAILED_TEXT
        e.final = True
        return True

    def _on_output_delta(self, ev: OutputDelta) -> bool:
        e = self._entry(ev.item_id, "assistant", ev.kind)
        if ev.kind == "audio":
            e.kind = "audio"
        e.response_id = ev.response_id or e.response_id
        if not e.final:
            e.text += ev.delta
        return True

    def _on_output_done(self, ev: OutputDone) -> bool:
        e = self._entry(ev.item_id, "assistant", ev.kind)
        if not e.truncated and ev.text is not None:
            e.text = ev.text
        e.final = True
        return True

    def _on_args_delta(self, ev: FunctionArgsDelta) -> bool:
        e = self._entry(ev.item_id, "tool", "tool_call")
        self._bind_call(e, ev.call_id)
        e.tool_args = (e.tool_args or "") + ev.delta
        return True

    def _on_args_done(self, ev: FunctionArgsDone) -> bool:
        e = self._entry(ev.item_id, "tool", "tool_call")
        self._bind_call(e, ev.call_id)
        e.tool_args = ev.arguments
        e.tool_name = ev.name or e.tool_name
        return True

    def _on_deleted(self, ev: ItemDeleted) -> bool:
        return self._delete(ev.item_id)

    def _on_audio_buffer(self, ev: AudioBuffer) -> bool:
        if ev.phase == "stopped" and ev.response_id is not None:
            self._played.add(ev.response_id)
            return True
        if ev.phase != "cleared" or ev.response_id is None:
            return False
        # WebRTC: the voice was cut off (Interrupt, barge-in). The buffer held that response's audio
        # and the audio of every later reply not yet played: none of them was heard to the end.
        cut = [ev.response_id]
        seen = False
        for key in self._order:
            e = self._entries[key]
            seen = seen or e.response_id == ev.response_id
            if seen and e.role == "assistant" and e.kind == "audio" and e.response_id not in self._played:
                cut.append(e.response_id or ev.response_id)
        return any([self._interrupted(rid) for rid in dict.fromkeys(cut)])

    def _on_truncated(self, ev: ItemTruncated) -> bool:
        key = self._resolve(ev.item_id)
        if key is None:
            return False
        e = self._entries[key]
        e.truncated = True
        e.final = True
        return True

    def _on_error(self, ev: ProviderError) -> bool:
        item_id = f"error_{ev.event_id}" if ev.event_id else self._local_id("error")
        self._add_error(item_id, describe_error(ev.error).message)
        return True

    def _add_error(self, item_id: str, text: str) -> None:
        entry = self._new_entry(item_id, "error", "text")
        entry.text = text
        entry.final = True

    def _bind_call(self, e: _Entry, call_id: str | None) -> None:
        if call_id:
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
        item: Item,
        previous: str | None,
        *,
        done: bool,
        client: bool = False,
        response_id: str | None = None,
    ) -> bool:
        item_id = item.id
        if item.type == "function_call_output":
            return self._function_output(item, previous)
        if item.type == "function_call":
            e = self._entry(item_id or self._local_id("call"), "tool", "tool_call")
            self._bind_call(e, item.call_id)
            e.tool_name = item.name or e.tool_name
            if item.arguments:
                e.tool_args = item.arguments
            if previous is not None:
                self._place(e.id, previous)
            return True
        role = item.role
        if item.type != "message" or role is None:
            return False
        texts: list[str] = []
        kind: Kind = "text"
        image_url: str | None = None
        transcript_pending = False
        for part in item.content:
            if part.kind == "text":
                texts.append(part.text or "")
            elif part.kind == "audio":
                kind = "audio"
                if part.transcript:
                    texts.append(part.transcript)
                elif role == "user":
                    transcript_pending = True
            elif part.kind == "image":
                kind = "image"
                image_url = part.image_url or image_url
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
            e.response_id = response_id
        if text and not (role == "assistant" and e.truncated):
            e.text = text
        if image_url and e.image_thumb is None and not e.image_failed:
            e.image_thumb = thumbnail_from_data_url(image_url)
            if e.image_thumb is None:
                e.image_failed = True
                e.text = e.text or "(image could not be shown)"
            elif not e.final:
                e.image_sent = jpeg_from_data_url(image_url)
        if previous is not None:
            self._place(e.id, previous)
        if role == "assistant":
            if item.status in ("completed", "incomplete") or (done and item.status is None):
                e.final = True
        elif kind == "audio" and role == "user":
            if not self.expect_input_transcripts or (texts and not transcript_pending and done):
                e.final = True
        else:
            e.final = True
        return True

    def _function_output(self, item: Item, previous: str | None) -> bool:
        call_id = item.call_id
        key = self._calls.get(call_id) if call_id is not None else None
        if key is None or key not in self._entries:
            item_id = item.id or self._local_id("output")
            e = self._entries.get(item_id) or self._new_entry(item_id, "tool", "tool_call", previous)
            self._bind_call(e, call_id)
        else:
            e = self._entries[key]
            if item.id:
                self._alias[item.id] = e.id
        if item.output is not None:
            e.tool_result = item.output
            e.final = True
        return True

    def _on_response_done(self, ev: ResponseDone) -> bool:
        response = ev.response
        rid = response.id
        for item in response.output:
            self._upsert(item, None, done=True, response_id=rid)
        for e in self._entries.values():
            if e.role == "assistant" and not e.final and (e.response_id == rid or rid is None):
                e.final = True
        if response.status == "cancelled":
            self._interrupted(rid)
        if response.status == "failed" and response.error is not None:
            self._add_error(self._local_id("error"), describe_error(response.error).message)
        return True

    def _interrupted(self, response_id: str | None) -> bool:
        """The assistant's items of a cancelled or cut-off response: marked ``truncated`` and final."""
        if response_id is None:
            return False
        hit = False
        for e in self._entries.values():
            if e.role == "assistant" and e.response_id == response_id:
                e.truncated = e.final = hit = True
        return hit

    def _delete(self, item_id: str) -> bool:
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


_HANDLERS: dict[type[Any], Callable[[Transcript, Any], bool]] = {
    ItemUpdate: Transcript._on_item,
    ItemCreate: Transcript._on_item_create,
    InputCommitted: Transcript._on_committed,
    InputTranscript: Transcript._on_input_transcript,
    InputTranscriptFailed: Transcript._on_input_failed,
    OutputDelta: Transcript._on_output_delta,
    OutputDone: Transcript._on_output_done,
    FunctionArgsDelta: Transcript._on_args_delta,
    FunctionArgsDone: Transcript._on_args_done,
    ResponseDone: Transcript._on_response_done,
    ItemDeleted: Transcript._on_deleted,
    AudioBuffer: Transcript._on_audio_buffer,
    ItemTruncated: Transcript._on_truncated,
    ProviderError: Transcript._on_error,
}
