"""A saved conversation as replay input, and as the comparison's first column (pure).

The user's turns are History's final user items in order: typed text (``kind`` text) and spoken
turns (``kind`` audio: their recorded voice when History kept it, and their transcript). Images sent
before a turn (camera frames, chat-box images) go with it; images after the last turn make a turn of
their own. What the assistant said until the next user turn is that turn's original reply, with the
tool calls that ran, the turn's stored latency and cost, and the reply's voice as it played.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping

from realtime.audio_tape import CLIP_RATE
from realtime.history.records import ConversationRecord, StoredClip, StoredItem, StoredTurn
from realtime.history.voice import clip_pcm
from realtime.replay.model import ReplayTurn, ReplyResult, SetupRun, TurnKind
from realtime.voice_codec import wav_bytes

__all__ = ["original_run", "plan_turns"]

IMAGE_ONLY = "(an image)"


def _is_turn(item: StoredItem) -> bool:
    """Words from the user: typed, spoken, or typed with images from the chat box (kind image with
    text; a camera or screen frame has none)."""
    return item.role == "user" and item.kind in ("text", "audio", "image") and bool(item.text.strip())


def _user_clips(record: ConversationRecord) -> dict[str, StoredClip]:
    return {c.item_id: c for c in record.audio if c.role == "user" and c.item_id}


def plan_turns(record: ConversationRecord) -> tuple[ReplayTurn, ...]:
    turns: list[ReplayTurn] = []
    images: list[bytes] = []
    voices = _user_clips(record)
    for item in record.items:
        if item.role == "user" and item.image_jpeg is not None:
            images.append(item.image_sent or item.image_jpeg)  # as sent; older records kept thumbnails only
        if _is_turn(item):
            kind: TurnKind = "spoken" if item.kind == "audio" else "typed"
            clip = voices.get(item.item_id) if kind == "spoken" else None
            audio = clip_pcm(clip) if clip is not None else None
            turns.append(ReplayTurn(len(turns), kind, item.text.strip(), tuple(images), audio))
            images = []
    if images:
        turns.append(ReplayTurn(len(turns), "typed", IMAGE_ONLY, tuple(images)))
    return tuple(turns)


def _tool_line(item: StoredItem) -> str:
    return f"{item.tool_name}({item.tool_args or ''}) -> {item.tool_result or ''}"


def original_run(record: ConversationRecord) -> SetupRun:
    """The conversation as it happened, in the shape of a replay: one result per user turn."""
    turns = plan_turns(record)
    replies: list[list[str]] = [[] for _ in turns]
    tools: list[list[str]] = [[] for _ in turns]
    index = -1
    for item in record.items:
        if _is_turn(item):
            index += 1
        elif index >= 0 and item.tool_name:
            tools[index].append(_tool_line(item))
        elif index >= 0 and item.role == "assistant" and item.text.strip():
            replies[index].append(item.text.strip())
    # turns the user started (not responses nobody asked for), in order
    asked = [t for t in record.turns if _detail(t, "trigger") in (None, "speech", "text")]
    voices = _reply_voices(record, len(turns))
    results = []
    for i in range(len(turns)):
        metrics = asked[i] if i < len(asked) else None
        results.append(
            ReplyResult(
                turn=i,
                text=" ".join(replies[i]),
                first_audio_ms=_number(_detail(metrics, "first_audio_ms")),
                first_text_ms=_number(_detail(metrics, "first_text_ms")),
                input_tokens=(metrics.input_tokens or 0) if metrics else 0,
                output_tokens=(metrics.output_tokens or 0) if metrics else 0,
                cost_usd=(metrics.cost_usd or 0.0) if metrics else 0.0,
                tool_calls=tuple(tools[i]),
                audio_wav=voices[i],
            )
        )
    return SetupRun(
        name="original",
        label="Original conversation",
        voice=str(record.settings.get("voice", "") or ""),
        model=record.summary.model,
        backend=record.summary.backend,
        results=tuple(results),
    )


def _reply_voices(record: ConversationRecord, count: int) -> list[bytes | None]:
    """Each turn's reply as it played: the assistant's clips from the turn's start to the next's. A
    spoken turn starts with its own clip (its transcript is final only after the reply began),
    else with its item."""
    voices = _user_clips(record)
    starts = []
    for item in record.items:
        if _is_turn(item):
            clip = voices.get(item.item_id) if item.kind == "audio" else None
            starts.append(clip.started_at if clip is not None else item.created_at)
    pcm: list[bytearray] = [bytearray() for _ in range(count)]
    for clip in record.audio:
        if clip.role == "assistant":
            turn = bisect.bisect_right(starts, clip.started_at) - 1
            if 0 <= turn < count:
                pcm[turn] += clip_pcm(clip)
    return [wav_bytes(bytes(p), CLIP_RATE) if p else None for p in pcm]


def _detail(metrics: StoredTurn | None, key: str) -> object:
    details = metrics.details if metrics is not None else None
    return details.get(key) if isinstance(details, Mapping) else None


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
