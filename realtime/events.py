"""The one reading of provider events: a raw event (a decoded JSON object) in, one typed value out.

Every other module (the bridge, the transcript, the turn clock, the call state) consumes these
values and never matches event-type strings. The names are the GA Realtime API's, as the pinned
SDK (``openai.types.realtime``) spells them (``tests/realtime/test_events.py`` checks each against
the SDK); the older beta names are read as their GA twins.

Reading is lenient the way a demo must be: a known event whose fields are missing or of the wrong
type becomes ``Unreadable`` (consumers ignore it and count it), an event this app has no use for
becomes ``OtherEvent``; ``read_server_event`` never raises. Only the fields the app uses are read.
The app's own ``conversation.item.create`` is read here too (``read_client_event``), so the
transcript and the turn clock see what was typed or shown in the same typed terms.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Self

from realtime.usage import UsageTotals

__all__ = [
    "AudioBuffer",
    "AudioDelta",
    "ContentPart",
    "ErrorInfo",
    "FunctionArgsDelta",
    "FunctionArgsDone",
    "InputCommitted",
    "InputTranscript",
    "InputTranscriptFailed",
    "Item",
    "ItemCreate",
    "ItemDeleted",
    "ItemTruncated",
    "ItemUpdate",
    "OtherEvent",
    "OutputDelta",
    "OutputDone",
    "ProviderError",
    "ResponseCreated",
    "ResponseDone",
    "ResponseInfo",
    "ServerEvent",
    "Speech",
    "Unreadable",
    "decode_message",
    "read_client_event",
    "read_error",
    "read_server_event",
    "read_usage",
]

PartKind = Literal["text", "audio", "image", "other"]
ItemType = Literal["message", "function_call", "function_call_output", "other"]
Role = Literal["user", "assistant", "system"]
OutputKind = Literal["text", "audio"]  # output text, or the transcript of output audio


class _Bad(ValueError):
    """A known event with a missing or mistyped field (becomes ``Unreadable``)."""


# ------------------------------------------------------------------------------------- fields


def _opt_str(raw: Mapping[str, Any], key: str) -> str | None:
    value = raw.get(key)
    return value if isinstance(value, str) and value else None


def _req_str(raw: Mapping[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise _Bad(f"no {key}")
    return value


def _req_text(raw: Mapping[str, Any], key: str) -> str:
    """A text field that must be present (a number or null is shown as text, as sent)."""
    if key not in raw:
        raise _Bad(f"no {key}")
    return str(raw[key])


def _mapping(raw: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = raw.get(key)
    if not isinstance(value, Mapping):
        raise _Bad(f"{key} is not an object")
    return value


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


# ------------------------------------------------------------------------------- inner values

_PART_KINDS: dict[str, PartKind] = {
    "input_text": "text",
    "output_text": "text",
    "text": "text",  # beta
    "input_audio": "audio",
    "output_audio": "audio",
    "audio": "audio",  # beta
    "input_image": "image",
}
_ITEM_TYPES: dict[str, ItemType] = {
    "message": "message",
    "function_call": "function_call",
    "function_call_output": "function_call_output",
}
_ROLES: dict[str, Role] = {"user": "user", "assistant": "assistant", "system": "system"}


@dataclass(frozen=True)
class ContentPart:
    kind: PartKind
    text: str | None = None  # text parts
    transcript: str | None = None  # audio parts (None: not transcribed, or not yet)
    image_url: str | None = None  # image parts

    @classmethod
    def read(cls, raw: Any) -> ContentPart:
        if not isinstance(raw, Mapping):
            raise _Bad("a content part is not an object")
        kind = _PART_KINDS.get(str(raw.get("type")), "other")
        if kind == "text":
            return cls("text", text=str(raw.get("text") or ""))
        if kind == "audio":
            transcript = raw.get("transcript")
            return cls("audio", transcript=str(transcript) if transcript else None)
        if kind == "image":
            return cls("image", image_url=_opt_str(raw, "image_url"))
        return cls("other")


@dataclass(frozen=True)
class Item:
    """A conversation item: a message, a function call or a function call's output."""

    type: ItemType
    id: str | None = None
    role: Role | None = None  # messages; None for another role
    status: str | None = None
    content: tuple[ContentPart, ...] = ()
    call_id: str | None = None  # function_call, function_call_output
    name: str | None = None  # function_call
    arguments: str | None = None  # function_call
    output: str | None = None  # function_call_output

    @property
    def has_audio(self) -> bool:
        return any(part.kind == "audio" for part in self.content)

    @property
    def has_text(self) -> bool:
        return any(part.kind == "text" for part in self.content)

    @classmethod
    def read(cls, raw: Any) -> Item:
        """An ``item`` object of an event (raises ``ValueError`` when it is not one)."""
        if not isinstance(raw, Mapping):
            raise _Bad("item is not an object")
        arguments = raw.get("arguments")
        output = raw.get("output")
        return cls(
            type=_ITEM_TYPES.get(str(raw.get("type")), "other"),
            id=_opt_str(raw, "id"),
            role=_ROLES.get(str(raw.get("role"))),
            status=_opt_str(raw, "status"),
            content=tuple(ContentPart.read(p) for p in raw.get("content") or ()),
            call_id=_opt_str(raw, "call_id"),
            name=_opt_str(raw, "name"),
            arguments=str(arguments) if arguments else None,
            output=None if output is None else str(output),
        )


@dataclass(frozen=True)
class ErrorInfo:
    """A provider error (an ``error`` event, or a failed response's ``status_details.error``)."""

    type: str = ""
    code: str | None = None
    message: str | None = None
    param: str | None = None


def read_error(raw: Any) -> ErrorInfo | None:
    """An ``error`` object, or None if it is not one."""
    if not isinstance(raw, Mapping):
        return None
    message = raw.get("message")
    return ErrorInfo(
        type=str(raw.get("type") or ""),
        code=str(raw.get("code") or "") or None,
        message=None if message is None else str(message),
        param=_opt_str(raw, "param"),
    )


def read_usage(raw: Any) -> UsageTotals:
    """A ``response.usage`` object (``RealtimeResponseUsage`` shape) as one response's totals."""
    if not isinstance(raw, Mapping):
        return UsageTotals()
    inp = raw.get("input_token_details")
    out = raw.get("output_token_details")
    inp = inp if isinstance(inp, Mapping) else {}
    out = out if isinstance(out, Mapping) else {}
    cached = inp.get("cached_tokens_details")
    cached = cached if isinstance(cached, Mapping) else {}
    input_text = _count(inp.get("text_tokens"))
    input_audio = _count(inp.get("audio_tokens"))
    input_image = _count(inp.get("image_tokens"))
    output_text = _count(out.get("text_tokens"))
    output_audio = _count(out.get("audio_tokens"))
    # Some servers give totals without a breakdown: count those as text.
    if not (input_text or input_audio or input_image):
        input_text = _count(raw.get("input_tokens"))
    if not (output_text or output_audio):
        output_text = _count(raw.get("output_tokens"))
    return UsageTotals(
        input_text=input_text,
        input_audio=input_audio,
        input_image=input_image,
        cached_text=_count(cached.get("text_tokens")),
        cached_audio=_count(cached.get("audio_tokens")),
        cached_image=_count(cached.get("image_tokens")),
        output_text=output_text,
        output_audio=output_audio,
        responses=1,
    )


_ONE_RESPONSE = UsageTotals(responses=1)  # a response without usage still counts as one


@dataclass(frozen=True)
class ResponseInfo:
    id: str | None
    status: str | None
    output: tuple[Item, ...] = ()
    error: ErrorInfo | None = None  # a failed response's reason
    usage: UsageTotals = _ONE_RESPONSE

    @property
    def function_calls(self) -> tuple[Item, ...]:
        return tuple(item for item in self.output if item.type == "function_call")

    @property
    def has_audio(self) -> bool:
        return any(item.has_audio for item in self.output)

    @classmethod
    def read(cls, raw: Mapping[str, Any]) -> ResponseInfo:
        details = raw.get("status_details")
        usage = raw.get("usage")
        return cls(
            id=_opt_str(raw, "id"),
            status=_opt_str(raw, "status"),
            output=tuple(Item.read(i) for i in raw.get("output") or () if isinstance(i, Mapping)),
            error=read_error(details.get("error")) if isinstance(details, Mapping) else None,
            usage=read_usage(usage) if isinstance(usage, Mapping) else _ONE_RESPONSE,
        )


# ------------------------------------------------------------------ events, each with its reading


@dataclass(frozen=True)
class _ItemEvent:
    """An event that only names an item."""

    item_id: str

    @classmethod
    def read(cls, raw: Mapping[str, Any]) -> Self:
        return cls(_req_str(raw, "item_id"))


@dataclass(frozen=True)
class Speech:
    """The provider's voice activity detection: ``input_audio_buffer.speech_started`` (the user
    started, maybe over the assistant: barge-in) or ``.speech_stopped`` (a spoken turn starts)."""

    phase: Literal["started", "stopped"]
    item_id: str | None = None  # the item the spoken turn becomes

    @classmethod
    def reader(cls, phase: Literal["started", "stopped"]) -> _Reader:
        return lambda raw: cls(phase, _opt_str(raw, "item_id"))


@dataclass(frozen=True)
class InputCommitted:
    """``input_audio_buffer.committed``: the user's audio became the item ``item_id``, which goes
    after ``previous_item_id``."""

    item_id: str
    previous_item_id: str | None

    @classmethod
    def read(cls, raw: Mapping[str, Any]) -> InputCommitted:
        return cls(_req_str(raw, "item_id"), _opt_str(raw, "previous_item_id"))


@dataclass(frozen=True)
class ItemUpdate:
    """An item seen in the conversation or in a response's output: ``conversation.item.added`` (or its
    older name ``.created``), ``response.output_item.added`` (``done`` False);
    ``conversation.item.done`` / ``.retrieved``, ``response.output_item.done`` (``done`` True).
    Conversation events place the item after ``previous_item_id``; output events name the response."""

    item: Item
    done: bool
    previous_item_id: str | None = None
    response_id: str | None = None

    @classmethod
    def reader(cls, *, done: bool, output: bool = False) -> _Reader:
        key = "response_id" if output else "previous_item_id"
        return lambda raw: cls(Item.read(raw.get("item")), done, **{key: _opt_str(raw, key)})


@dataclass(frozen=True)
class InputTranscript:
    """What the user said: ``conversation.item.input_audio_transcription.delta`` (``done`` False: more
    words) or ``.completed`` (``done`` True: the whole transcript, stripped)."""

    item_id: str
    text: str
    done: bool

    @classmethod
    def reader(cls, *, done: bool) -> _Reader:
        def read(raw: Mapping[str, Any]) -> InputTranscript:
            text = str(raw.get("transcript" if done else "delta") or "")
            return cls(_req_str(raw, "item_id"), text.strip() if done else text, done)

        return read


@dataclass(frozen=True)
class InputTranscriptFailed(_ItemEvent):
    """``conversation.item.input_audio_transcription.failed``: the user's words could not be written down."""


@dataclass(frozen=True)
class OutputDelta:
    """``response.output_text.delta`` (kind text) or ``response.output_audio_transcript.delta``
    (kind audio); beta ``response.text.delta`` / ``response.audio_transcript.delta``."""

    kind: OutputKind
    item_id: str
    response_id: str | None
    delta: str

    @classmethod
    def reader(cls, kind: OutputKind) -> _Reader:
        return lambda raw: cls(kind, _req_str(raw, "item_id"), _opt_str(raw, "response_id"), _req_text(raw, "delta"))


@dataclass(frozen=True)
class OutputDone:
    """``response.output_text.done`` / ``response.output_audio_transcript.done`` (and beta twins):
    the whole text or transcript, when the server gave it."""

    kind: OutputKind
    item_id: str
    response_id: str | None
    text: str | None

    @classmethod
    def reader(cls, kind: OutputKind, key: str) -> _Reader:
        def read(raw: Mapping[str, Any]) -> OutputDone:
            text = raw.get(key)
            text = text if isinstance(text, str) else None
            return cls(kind, _req_str(raw, "item_id"), _opt_str(raw, "response_id"), text)

        return read


@dataclass(frozen=True)
class AudioDelta:
    """``response.output_audio.delta`` (beta ``response.audio.delta``): output audio on the event
    channel (WebSocket sessions; over WebRTC the voice is media)."""

    response_id: str | None
    data: str = field(default="", repr=False)  # base64 pcm16 (the session's output format)

    @classmethod
    def read(cls, raw: Mapping[str, Any]) -> AudioDelta:
        delta = raw.get("delta")
        return cls(_opt_str(raw, "response_id"), delta if isinstance(delta, str) else "")


@dataclass(frozen=True)
class AudioBuffer:
    """``output_audio_buffer.started`` / ``.stopped`` / ``.cleared`` (WebRTC): the provider started
    playing a response's audio, finished it, or cut it off."""

    phase: Literal["started", "stopped", "cleared"]
    response_id: str | None

    @classmethod
    def reader(cls, phase: Literal["started", "stopped", "cleared"]) -> _Reader:
        return lambda raw: cls(phase, _opt_str(raw, "response_id"))


@dataclass(frozen=True)
class FunctionArgsDelta:
    """``response.function_call_arguments.delta``: more of a tool call's JSON arguments."""

    item_id: str
    call_id: str | None
    delta: str

    @classmethod
    def read(cls, raw: Mapping[str, Any]) -> FunctionArgsDelta:
        return cls(_req_str(raw, "item_id"), _opt_str(raw, "call_id"), _req_text(raw, "delta"))


@dataclass(frozen=True)
class FunctionArgsDone:
    """``response.function_call_arguments.done``: the model wants ``name`` run with ``arguments``."""

    item_id: str
    call_id: str | None
    name: str | None
    arguments: str

    @classmethod
    def read(cls, raw: Mapping[str, Any]) -> FunctionArgsDone:
        return cls(
            _req_str(raw, "item_id"), _opt_str(raw, "call_id"), _opt_str(raw, "name"), _req_text(raw, "arguments")
        )


@dataclass(frozen=True)
class ResponseCreated:
    """``response.created``: a response is in flight."""

    response_id: str | None

    @classmethod
    def read(cls, raw: Mapping[str, Any]) -> ResponseCreated:
        return cls(_opt_str(_mapping(raw, "response"), "id"))


@dataclass(frozen=True)
class ResponseDone:
    """``response.done``: finished as ``response.status`` says (completed, cancelled, failed,
    incomplete), with usage and every output item."""

    response: ResponseInfo

    @classmethod
    def read(cls, raw: Mapping[str, Any]) -> ResponseDone:
        return cls(ResponseInfo.read(_mapping(raw, "response")))


@dataclass(frozen=True)
class ItemDeleted(_ItemEvent):
    """``conversation.item.deleted``: the item left the conversation (the app deletes old images)."""


@dataclass(frozen=True)
class ItemTruncated:
    """``conversation.item.truncated``: the assistant's audio item was cut at ``audio_end_ms``
    (the user spoke over it)."""

    item_id: str
    audio_end_ms: int | None

    @classmethod
    def read(cls, raw: Mapping[str, Any]) -> ItemTruncated:
        ms = raw.get("audio_end_ms")
        return cls(_req_str(raw, "item_id"), ms if isinstance(ms, int) else None)


@dataclass(frozen=True)
class ProviderError:
    """``error``: the provider refused something; the call goes on."""

    error: ErrorInfo | None  # None: an error event without an error object
    event_id: str | None

    @classmethod
    def read(cls, raw: Mapping[str, Any]) -> ProviderError:
        return cls(read_error(raw.get("error")), _opt_str(raw, "event_id"))


@dataclass(frozen=True)
class OtherEvent:
    """A well-formed event this app does not act on (``session.updated``, ``rate_limits.updated``...)."""

    type: str


@dataclass(frozen=True)
class Unreadable:
    """Not an event, or a known event with a missing or mistyped field."""

    type: str | None
    reason: str


@dataclass(frozen=True)
class ItemCreate:
    """The app's own ``conversation.item.create`` (typed text, an image, a tool's output)."""

    item: Item
    previous_item_id: str | None


ServerEvent = (
    Speech
    | InputCommitted
    | ItemUpdate
    | InputTranscript
    | InputTranscriptFailed
    | OutputDelta
    | OutputDone
    | AudioDelta
    | AudioBuffer
    | FunctionArgsDelta
    | FunctionArgsDone
    | ResponseCreated
    | ResponseDone
    | ItemDeleted
    | ItemTruncated
    | ProviderError
    | OtherEvent
    | Unreadable
)
_Reader = Callable[[Mapping[str, Any]], ServerEvent]

# ---------------------------------------------------------------------- the table: type -> reader

_READERS: dict[str, _Reader] = {
    "input_audio_buffer.speech_started": Speech.reader("started"),
    "input_audio_buffer.speech_stopped": Speech.reader("stopped"),
    "input_audio_buffer.committed": InputCommitted.read,
    "conversation.item.added": ItemUpdate.reader(done=False),
    "conversation.item.created": ItemUpdate.reader(done=False),  # the older name of .added
    "conversation.item.done": ItemUpdate.reader(done=True),
    "conversation.item.retrieved": ItemUpdate.reader(done=True),
    "response.output_item.added": ItemUpdate.reader(done=False, output=True),
    "response.output_item.done": ItemUpdate.reader(done=True, output=True),
    "conversation.item.input_audio_transcription.delta": InputTranscript.reader(done=False),
    "conversation.item.input_audio_transcription.completed": InputTranscript.reader(done=True),
    "conversation.item.input_audio_transcription.failed": InputTranscriptFailed.read,
    "response.output_text.delta": OutputDelta.reader("text"),
    "response.text.delta": OutputDelta.reader("text"),  # beta
    "response.output_audio_transcript.delta": OutputDelta.reader("audio"),
    "response.audio_transcript.delta": OutputDelta.reader("audio"),  # beta
    "response.output_text.done": OutputDone.reader("text", "text"),
    "response.text.done": OutputDone.reader("text", "text"),  # beta
    "response.output_audio_transcript.done": OutputDone.reader("audio", "transcript"),
    "response.audio_transcript.done": OutputDone.reader("audio", "transcript"),  # beta
    "response.output_audio.delta": AudioDelta.read,
    "response.audio.delta": AudioDelta.read,  # beta
    "output_audio_buffer.started": AudioBuffer.reader("started"),
    "output_audio_buffer.stopped": AudioBuffer.reader("stopped"),
    "output_audio_buffer.cleared": AudioBuffer.reader("cleared"),
    "response.function_call_arguments.delta": FunctionArgsDelta.read,
    "response.function_call_arguments.done": FunctionArgsDone.read,
    "response.created": ResponseCreated.read,
    "response.done": ResponseDone.read,
    "conversation.item.deleted": ItemDeleted.read,
    "conversation.item.truncated": ItemTruncated.read,
    "error": ProviderError.read,
}

READ_TYPES = frozenset(_READERS)  # every event type read into its own value (for tests and docs)


def read_server_event(raw: object) -> ServerEvent:
    """One provider server event (a decoded JSON object) as a typed value. Never raises."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("type"), str):
        return Unreadable(None, "not a JSON object with a string 'type'")
    kind: str = raw["type"]
    reader = _READERS.get(kind)
    if reader is None:
        return OtherEvent(kind)
    try:
        return reader(raw)
    except (ValueError, TypeError) as exc:
        return Unreadable(kind, str(exc))


def read_client_event(raw: object) -> ItemCreate | OtherEvent | Unreadable:
    """A client event the app sent: its ``conversation.item.create`` typed, others by type only."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("type"), str):
        return Unreadable(None, "not a JSON object with a string 'type'")
    if raw["type"] != "conversation.item.create":
        return OtherEvent(raw["type"])
    try:
        return ItemCreate(Item.read(raw.get("item")), _opt_str(raw, "previous_item_id"))
    except ValueError as exc:
        return Unreadable(raw["type"], str(exc))


def decode_message(message: str | bytes) -> dict[str, Any]:
    """A data-channel message as a JSON object with a string ``type`` (raises ``ValueError``)."""
    event = json.loads(message)
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise ValueError("not a JSON object with a string 'type'")
    return event
