"""What a saved conversation reads back as: immutable values, built by the store, read by the
History page and the exports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from realtime.transcript import Kind, Role

from .scrub import JsonValue

__all__ = ["ConversationRecord", "ConversationSummary", "StoredClip", "StoredItem", "StoredTurn"]


@dataclass(frozen=True)
class ConversationSummary:
    id: str
    started_at: float
    ended_at: float | None  # None: still going, or the process died before the call ended
    duration_s: float
    turns: int
    cost_usd: float
    first_user_line: str
    backend: str
    model: str
    source: str = "studio"  # "api": placed by another client through the studio's API


@dataclass(frozen=True)
class StoredItem:
    """A final transcript item, with its camera frame if it was one."""

    seq: int
    item_id: str
    role: Role
    kind: Kind
    text: str
    tool_name: str | None
    tool_args: str | None
    tool_result: str | None
    created_at: float
    image_jpeg: bytes | None = None  # the thumbnail the page shows
    image_sent: bytes | None = field(default=None, repr=False)  # the JPEG as the model got it (None: not kept)


@dataclass(frozen=True)
class StoredTurn:
    seq: int
    turn_id: str | None
    latency_ms: float | None  # to the first audio, else to the first text
    input_tokens: int | None
    output_tokens: int | None
    total_tokens: int | None
    cost_usd: float | None
    details: Mapping[str, JsonValue]  # the whole TurnMetrics as it was written
    created_at: float


@dataclass(frozen=True)
class StoredClip:
    """A stretch of kept voice: a spoken user turn or a reply as it played (``realtime.audio_tape``)."""

    seq: int
    role: Role
    item_id: str | None  # user: the spoken turn's item; assistant: the response id
    started_at: float  # wall-clock time of its first sample
    seconds: float
    codec: str  # "opus": an Ogg Opus file (``realtime.voice_codec``)
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class ConversationRecord:
    summary: ConversationSummary
    settings: Mapping[str, JsonValue]  # as ``settings_record`` wrote them: no secrets
    items: tuple[StoredItem, ...]
    turns: tuple[StoredTurn, ...]
    audio: tuple[StoredClip, ...] = ()  # in time order
    audio_cut_at: float | None = None  # the per-conversation cap left out the voice from then on

    @property
    def id(self) -> str:
        return self.summary.id

    @property
    def images(self) -> tuple[StoredItem, ...]:
        return tuple(i for i in self.items if i.image_jpeg is not None)

    @property
    def tool_calls(self) -> tuple[StoredItem, ...]:
        return tuple(i for i in self.items if i.kind == "tool_call")
