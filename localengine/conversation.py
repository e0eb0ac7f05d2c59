"""The local engine's sans-IO session state machine (one per WebSocket session or WebRTC call).

``Session`` takes client events, input audio, speech-job results, playback reports and clock ticks,
and returns effects; it never touches sockets, loops, threads, clocks or blocking speech. Times
are passed in (``now``, seconds on any monotonic clock). Speech is requested through effects:
``Transcribe`` / ``Synthesize`` are run by the edge (in a thread pool) and their results come back
through ``speech_result`` (a ``str`` transcript, ``bytes`` pcm16 24 kHz, or the ``Exception`` the job
raised). A turn's audio goes to the recognizer while it is spoken (``StreamSpeech``, then the turn's
``Transcribe`` with the rest); ``CancelTranscribe`` drops a turn that was not committed.
Voice activity detection is delegated to a ``Detector`` made by ``detector_factory`` (default:
``localengine.speech.SpeechDetector``, imported lazily).

Event sequences mirror the GA Realtime API: ``session.created`` / ``session.updated``;
``conversation.item.added`` + ``conversation.item.done`` for every item written to the conversation;
``input_audio_buffer.speech_started`` / ``speech_stopped`` / ``committed`` / ``cleared``;
``conversation.item.input_audio_transcription.delta`` / ``completed`` / ``failed`` (only when input
transcription is configured; the engine always transcribes because the responder needs the words);
``response.created`` -> ``response.output_item.added`` -> ``response.content_part.added`` ->
text / audio transcript / audio deltas -> the ``*.done`` events -> ``response.done`` (with usage)
-> ``rate_limits.updated``; function calls stream ``response.function_call_arguments.delta/done``.
Over WebRTC the voice is a ``Play`` effect and ``output_audio_buffer.started/stopped/cleared`` follow
the edge's playback reports; over WebSocket it is ``response.output_audio.delta`` chunks of 100 ms.

Session configuration lives in ``session_config``, conversation items in ``items``, token counts in
``usage``; this module keeps the state and decides which events follow which.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

from .items import Item, ItemStatus, Part, build_item
from .pcm import BYTES_PER_MS, SAMPLE_RATE, decode_audio, whole_samples, wire_format
from .responder import Reply, ReplyContext, plan_reply, tool_spec_from_schema
from .schema import ClientEventError, parse_client_event, validate_session
from .session_config import (
    ResponseOptions,
    SessionSettings,
    TurnDetectionConfig,
    apply_session,
    forced_tool_name,
    response_options,
)
from .usage import (
    InputUsage,
    audio_tokens,
    input_usage,
    rate_limits_wire,
    response_usage_wire,
    text_tokens,
    transcription_usage_wire,
)

if TYPE_CHECKING:  # pragma: no cover
    from .config import EngineConfig

__all__ = [
    "SAMPLE_RATE",
    "ClearPlayback",
    "Close",
    "Detector",
    "DetectorFactory",
    "Effect",
    "Play",
    "Send",
    "Session",
    "StreamSpeech",
    "Synthesize",
    "Transcribe",
    "TurnDetectionConfig",
    "session_limit_message",
    "speech_detector_factory",
]

AUDIO_DELTA_MS = 100
MIN_COMMIT_MS = 100
_STREAM_CHUNK_MS = 100  # a turn goes to the recognizer in pieces of at least this much audio
SPOKEN_CHARS_PER_SECOND = 14.5
"""About how fast the offline voice speaks at speed 1.0 (espeak, 175 words a minute): to fit a
spoken reply into its output-token cap before it is synthesized."""


# ----------------------------------------------------------------------------------- effects


@dataclass(frozen=True)
class Send:
    """Send one server event (already valid) to the client(s)."""

    event: dict[str, Any]


@dataclass(frozen=True)
class Transcribe:
    job_id: str
    pcm24k: bytes = field(repr=False)


@dataclass(frozen=True)
class StreamSpeech:
    """More audio of a turn still being spoken, so the recognizer can start on it now. The turn's
    ``Transcribe`` with the same ``job_id`` brings the rest of its audio; ``CancelTranscribe`` drops it."""

    job_id: str
    pcm24k: bytes = field(repr=False)


@dataclass(frozen=True)
class CancelTranscribe:
    """A transcription no longer wanted (a streamed turn that was not committed); its result is ignored."""

    job_id: str


@dataclass(frozen=True)
class Synthesize:
    job_id: str
    text: str
    voice: str
    speed: float = 1.0  # audio.output.speed


@dataclass(frozen=True)
class Play:
    """WebRTC only: play the assistant's voice for ``item_id``."""

    item_id: str
    response_id: str
    pcm24k: bytes = field(repr=False)


@dataclass(frozen=True)
class ClearPlayback:
    """WebRTC only: drop every queued and playing assistant audio."""


@dataclass(frozen=True)
class Close:
    reason: str


Effect = Send | StreamSpeech | Transcribe | CancelTranscribe | Synthesize | Play | ClearPlayback | Close


def session_limit_message(limit_seconds: float) -> str:
    """The real service's words when a session hits its maximum duration ("... of 60 minutes.").

    Whole minutes are said in minutes; any other limit (under a minute, or not a whole number of
    minutes) in seconds, in the same sentence.
    """
    if limit_seconds >= 60 and float(limit_seconds / 60).is_integer():
        n, unit = limit_seconds / 60, "minute"
    else:
        n, unit = limit_seconds, "second"
    amount = str(int(n)) if float(n).is_integer() else f"{n:g}"
    return f"Your session hit the maximum duration of {amount} {unit}{'' if n == 1 else 's'}."


# ------------------------------------------------------------------------------ turn detection


class SpeechEdgeLike(Protocol):
    @property
    def kind(self) -> str: ...  # "started" | "stopped"

    @property
    def audio_ms(self) -> int: ...


class Detector(Protocol):
    def feed(self, pcm24k: bytes, *, at_ms: int) -> Sequence[SpeechEdgeLike]: ...

    @property
    def speech_until_ms(self) -> int | None: ...  # in speech: where the speech heard so far ends (None: silent)


DetectorFactory = Callable[[TurnDetectionConfig], Detector]


def speech_detector_factory(td: TurnDetectionConfig) -> Detector:
    """The real detector: pocketsphinx VAD from ``localengine.speech`` (imported on first use)."""
    from .speech import SpeechDetector

    return SpeechDetector(threshold=td.threshold, silence_ms=td.silence_ms, prefix_padding_ms=td.prefix_padding_ms)


# -------------------------------------------------------------------------------- state


Finish = Literal["completed", "incomplete", "cancelled", "failed"]


@dataclass
class _Response:
    """Internal mutable state of the one active response."""

    id: str
    options: ResponseOptions
    input_items: tuple[Item, ...] | None
    waiting_on: set[str] = field(default_factory=set)
    item: Item | None = None
    reply: Reply | None = None
    spoken: str = ""
    synth_job: str | None = None
    audio_ms: int = 0
    usage_in: InputUsage = field(default_factory=InputUsage)
    status: Literal["in_progress"] | Finish = "in_progress"
    incomplete: bool = False  # cut by max_output_tokens, or its output audio was cleared
    unplayed: bool = False  # output_audio_buffer.clear came before the audio: do not play it

    @property
    def audio(self) -> bool:
        return self.options.audio

    @property
    def in_conversation(self) -> bool:
        return self.options.conversation == "auto"


@dataclass
class _Playback:
    response_id: str
    started: bool = False
    played_ms: int = 0
    total_ms: int = 0


@dataclass(frozen=True)
class _Job:
    """A speech job the edge runs: transcribe the audio of an item, or synthesize a response."""

    kind: Literal["transcribe", "synthesize"]
    target: str  # item id | response id


@dataclass
class _Stream:
    """The turn being spoken, as far as it has gone to the recognizer (see ``_stream_speech``)."""

    job_id: str
    item_id: str
    start: int  # timeline position (bytes) of its first byte: where the turn's audio starts
    end: int  # timeline position just past the audio sent so far


# --------------------------------------------------------------------------------- session


class Session:
    """One realtime conversation as a sans-IO state machine. See the module docstring."""

    def __init__(
        self,
        transport: Literal["websocket", "webrtc"],
        config: EngineConfig,
        initial_session: dict[str, Any] | None = None,
        now: float = 0.0,
        *,
        detector_factory: DetectorFactory | None = None,
    ) -> None:
        if transport not in ("websocket", "webrtc"):
            raise ValueError(f"transport must be 'websocket' or 'webrtc', not {transport!r}")
        self.transport = transport
        self.config = config
        self._initial = initial_session
        self._started_at = now
        self._detector_factory = detector_factory or speech_detector_factory
        self._token = secrets.token_hex(5)
        self._counter = 0
        default_td = TurnDetectionConfig(silence_duration_ms=config.vad_silence_ms)
        self.settings = SessionSettings(id=self._new_id("sess"), turn_detection=default_td)
        self._items: dict[str, Item] = {}
        self._order: list[str] = []
        self._response: _Response | None = None
        self._last_response_id: str | None = None
        self._jobs: dict[str, _Job] = {}
        self._stream: _Stream | None = None
        self._playback: dict[str, _Playback] = {}
        self._audio_produced = False
        self._closed = False
        # input audio
        self._detector: Detector | None = None
        self._timeline_bytes = 0  # all input audio ever received, in bytes
        self._buffer = bytearray()
        self._buffer_start = 0  # timeline position (bytes) of _buffer[0]
        self._speech_item: str | None = None
        self._turn_start = 0  # timeline position (bytes) where the turn being spoken starts
        self._stored_audio_bytes = 0  # audio kept inside items
        self._now = now
        self._idle_since: float | None = None  # when the assistant last finished speaking (idle timeout)

    # -- ids -------------------------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}_{self._token}{self._counter:06d}"

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def items(self) -> tuple[Item, ...]:
        """The conversation, in order (for tests and debugging)."""
        return tuple(self._items[i] for i in self._order)

    # -- public API ------------------------------------------------------------------------

    def start(self) -> list[Effect]:
        out: list[Effect] = []
        error: ClientEventError | None = None
        if self._initial:
            try:
                self.settings = self._apply_session(validate_session(dict(self._initial)))
            except ClientEventError as exc:
                error = exc
        out.append(self._send({"type": "session.created", "session": self.settings.to_wire()}))
        if self._initial and error is None:
            out.append(self._send({"type": "session.updated", "session": self.settings.to_wire()}))
        if error is not None:
            out.append(self._error(error.code, f"Invalid initial session: {error.message}", None, error.param))
        return out + self._reset_detector()

    def receive(self, raw: str | bytes, now: float) -> list[Effect]:
        if self._closed:
            return []
        self._now = now
        try:
            event = parse_client_event(raw, max_bytes=self.config.max_event_bytes)
        except ClientEventError as exc:
            return [self._error(exc.code, exc.message, exc.event_id, exc.param)]
        handler = _HANDLERS[event["type"]]  # the schema lets through only the types in the table
        try:
            return handler(self, event)
        except ClientEventError as exc:
            return [self._error(exc.code, exc.message, event.get("event_id"), exc.param)]
        except Exception as exc:  # a bug here must not end the session
            return [self._internal_error(exc, event.get("event_id"))]

    def audio_in(self, pcm24k: bytes, now: float) -> list[Effect]:
        if self._closed or not pcm24k:
            return []
        self._now = now
        try:
            return self._append_audio(whole_samples(bytes(pcm24k)))
        except Exception as exc:
            return [self._internal_error(exc, None)]

    def _internal_error(self, exc: Exception, event_id: str | None) -> Send:
        event = self._error("internal_error", f"The local engine failed to handle this input: {exc!r}", event_id)
        event.event["error"]["type"] = "server_error"
        return event

    def speech_result(self, job_id: str, result: Any, now: float) -> list[Effect]:
        job = self._jobs.pop(job_id, None)
        if job is None or self._closed:
            return []
        self._now = now
        if job.kind == "transcribe":
            return self._transcribed(job.target, job_id, result)
        return self._synthesized(job.target, job_id, result)

    def playback_started(self, item_id: str, now: float) -> list[Effect]:
        pb = self._playback.get(item_id)
        if pb is None or pb.started or self._closed:
            return []
        pb.started = True
        return [self._send({"type": "output_audio_buffer.started", "response_id": pb.response_id})]

    def playback_progress(self, item_id: str, played_ms: int, now: float) -> list[Effect]:
        pb = self._playback.get(item_id)
        if pb is not None:
            pb.played_ms = max(pb.played_ms, min(int(played_ms), pb.total_ms))
        return []

    def playback_finished(self, item_id: str, now: float) -> list[Effect]:
        pb = self._playback.pop(item_id, None)
        if pb is None or self._closed:
            return []
        self._now = now
        if not self._playback and self._response is None:
            self._idle_since = now
        out: list[Effect] = []
        if not pb.started:
            out.append(self._send({"type": "output_audio_buffer.started", "response_id": pb.response_id}))
        out.append(self._send({"type": "output_audio_buffer.stopped", "response_id": pb.response_id}))
        return out

    def tick(self, now: float) -> list[Effect]:
        if self._closed:
            return []
        if now >= self.expires_at:
            self._closed = True
            return [
                self._error("session_expired", session_limit_message(self.config.max_session_seconds), None, None),
                Close("session_expired"),
            ]
        self._now = now
        return self._idle_check(now)

    @property
    def expires_at(self) -> float:
        """When (on the clock the times are passed in on) the session hits its maximum duration."""
        return self._started_at + self.config.max_session_seconds

    def _idle_check(self, now: float) -> list[Effect]:
        """``turn_detection.idle_timeout_ms`` (server VAD): the user stayed silent after the assistant spoke."""
        td = self.settings.turn_detection
        if (
            td is None
            or td.type != "server_vad"
            or td.idle_timeout_ms is None
            or self._idle_since is None
            or self._response is not None
            or self._playback
            or self._speech_item is not None
            or now - self._idle_since < td.idle_timeout_ms / 1000
        ):
            return []
        self._idle_since = None
        item_id = self._new_id("item")
        end_ms = self._timeline_bytes // BYTES_PER_MS
        start_ms = max(self._buffer_start // BYTES_PER_MS, end_ms - td.idle_timeout_ms)
        out: list[Effect] = [
            self._send(
                {
                    "type": "input_audio_buffer.timeout_triggered",
                    "audio_start_ms": start_ms,
                    "audio_end_ms": end_ms,
                    "item_id": item_id,
                }
            )
        ]
        pcm, start = bytes(self._buffer), self._buffer_start
        self._buffer_start += len(self._buffer)
        self._buffer.clear()
        out += self._commit(pcm, item_id, start)
        out += self._create_response({}, None)
        return out

    # -- small helpers ---------------------------------------------------------------------

    def _send(self, event: dict[str, Any]) -> Send:
        return Send({"event_id": self._new_id("event"), **event})

    def _error(self, code: str, message: str, event_id: str | None, param: str | None = None) -> Send:
        error: dict[str, Any] = {"type": "invalid_request_error", "code": code, "message": message}
        error["param"] = param
        error["event_id"] = event_id
        return self._send({"type": "error", "error": error})

    def _previous_of(self, item_id: str) -> str | None:
        index = self._order.index(item_id)
        return self._order[index - 1] if index > 0 else None

    def _insert(self, item: Item, after: str | None = None) -> list[Effect]:
        """Add ``item`` at the end, or after item ``after`` (``"root"``: first)."""
        if after is None:
            self._order.append(item.id)
        elif after == "root":
            self._order.insert(0, item.id)
        else:
            self._order.insert(self._order.index(after) + 1, item.id)
        self._items[item.id] = item
        self._bound_stored_audio(item)
        prev = self._previous_of(item.id)
        wire = item.to_wire()
        return [
            self._send({"type": "conversation.item.added", "previous_item_id": prev, "item": wire}),
            self._send({"type": "conversation.item.done", "previous_item_id": prev, "item": wire}),
        ]

    def _bound_stored_audio(self, item: Item) -> None:
        """Keep at most max_input_audio_seconds of audio inside items; drop the oldest first."""
        self._stored_audio_bytes += item.stored_audio_bytes
        limit = int(self.config.max_input_audio_seconds * 1000) * BYTES_PER_MS
        for item_id in list(self._order):
            if self._stored_audio_bytes <= limit:
                break
            old = self._items[item_id]
            if old.stored_audio_bytes:
                self._stored_audio_bytes -= old.stored_audio_bytes
                self._items[item_id] = replace(old, content=tuple(replace(p, audio=None) for p in old.content))

    def _apply_session(self, s: dict[str, Any]) -> SessionSettings:
        return apply_session(
            self.settings, s, audio_produced=self._audio_produced, default_silence_ms=self.config.vad_silence_ms
        )

    # -- session.update --------------------------------------------------------------------

    def _on_session_update(self, event: dict[str, Any]) -> list[Effect]:
        before = self.settings.turn_detection
        self.settings = self._apply_session(event["session"])
        out = self._reset_detector() if self.settings.turn_detection != before else []
        return [*out, self._send({"type": "session.updated", "session": self.settings.to_wire()})]

    # -- conversation items ----------------------------------------------------------------

    def _on_conversation_item_create(self, event: dict[str, Any]) -> list[Effect]:
        wire = event["item"]
        prev = event.get("previous_item_id")
        if prev is not None and prev != "root" and prev not in self._items:
            raise ClientEventError(
                "previous_item_not_found",
                f"Error adding item: the previous item with id '{prev}' does not exist.",
                param="previous_item_id",
            )
        if wire.get("id") in self._items:
            raise ClientEventError(
                "item_already_exists", f"Item with id '{wire['id']}' already exists.", param="item.id"
            )
        item = build_item(wire, self._new_id)
        if item.type == "function_call_output" and not any(
            i.type == "function_call" and i.call_id == item.call_id for i in self._items.values()
        ):
            # as the service: "the server will check that a function_call item with the same ID
            # exists in the conversation history" (the SDK's conversation item docs)
            raise ClientEventError(
                "tool_call_not_found",
                f"No tool call found for function call output with call_id '{item.call_id}'.",
                param="item.call_id",
            )
        out = self._insert(item, prev)
        out += self._transcribe_item_audio(item)
        return out

    def _transcribe_item_audio(self, item: Item) -> list[Effect]:
        if item.role != "user":
            return []
        out: list[Effect] = []
        for part in item.content:
            if part.type == "input_audio" and part.audio and part.transcript is None:
                out.append(self._transcribe(item.id, part.audio))
        return out

    def _transcribe(self, item_id: str, pcm: bytes) -> Transcribe:
        job = self._new_id("job")
        self._jobs[job] = _Job("transcribe", item_id)
        return Transcribe(job, pcm)

    def _find(self, item_id: str, code: str, verb: str) -> Item:
        item = self._items.get(item_id)
        if item is None:
            raise ClientEventError(
                code, f"Error {verb} item: the item with id '{item_id}' does not exist.", param="item_id"
            )
        return item

    def _on_conversation_item_delete(self, event: dict[str, Any]) -> list[Effect]:
        item = self._find(event["item_id"], "item_delete_invalid_item_id", "deleting")
        self._order.remove(item.id)
        del self._items[item.id]
        self._stored_audio_bytes -= item.stored_audio_bytes
        return [self._send({"type": "conversation.item.deleted", "item_id": item.id})]

    def _on_conversation_item_retrieve(self, event: dict[str, Any]) -> list[Effect]:
        item = self._find(event["item_id"], "item_retrieve_invalid_item_id", "retrieving")
        return [self._send({"type": "conversation.item.retrieved", "item": item.to_wire(with_audio=True)})]

    def _on_conversation_item_truncate(self, event: dict[str, Any]) -> list[Effect]:
        item = self._find(event["item_id"], "item_truncate_invalid_item_id", "truncating")
        index, end_ms = event["content_index"], event["audio_end_ms"]
        if item.role != "assistant":
            raise ClientEventError(
                "item_truncate_invalid_item_id", "Only assistant messages can be truncated.", param="item_id"
            )
        if not 0 <= index < len(item.content) or item.content[index].type != "output_audio":
            raise ClientEventError(
                "item_truncate_invalid_content_index",
                f"Content index {index} of item '{item.id}' is not assistant audio.",
                param="content_index",
            )
        total = item.content[index].audio_ms
        if end_ms < 0 or end_ms > total:
            raise ClientEventError(
                "item_truncate_invalid_audio_end_ms",
                f"audio_end_ms ({end_ms}) must be between 0 and the audio's duration ({total} ms).",
                param="audio_end_ms",
            )
        return self._truncate(item, index, end_ms)

    def _truncate(self, item: Item, index: int, end_ms: int) -> list[Effect]:
        parts = list(item.content)
        # Like the real service: the transcript of unheard audio is removed from the context.
        heard = parts[index].transcript or ""
        if parts[index].audio_ms and end_ms < parts[index].audio_ms:
            keep = len(heard) * end_ms // parts[index].audio_ms
            heard = heard[:keep].rsplit(" ", 1)[0] if keep < len(heard) else heard
        parts[index] = replace(parts[index], transcript=heard, audio_ms=end_ms)
        self._items[item.id] = replace(item, content=tuple(parts))
        return [
            self._send(
                {
                    "type": "conversation.item.truncated",
                    "item_id": item.id,
                    "content_index": index,
                    "audio_end_ms": end_ms,
                }
            )
        ]

    # -- input audio -----------------------------------------------------------------------

    def _reset_detector(self) -> list[Effect]:
        td = self.settings.turn_detection
        self._detector = self._detector_factory(td) if td is not None else None
        self._speech_item = None
        return self._cancel_stream()

    def _on_input_audio_buffer_append(self, event: dict[str, Any]) -> list[Effect]:
        pcm = decode_audio(event["audio"], "audio")
        if len(pcm) % 2:
            raise ClientEventError("invalid_value", "Audio must be pcm16: an even number of bytes.", param="audio")
        return self._append_audio(pcm)

    def _append_audio(self, pcm: bytes) -> list[Effect]:
        at_ms = self._timeline_bytes // BYTES_PER_MS
        self._buffer += pcm
        self._timeline_bytes += len(pcm)
        limit = int(self.config.max_input_audio_seconds * 1000) * BYTES_PER_MS
        if len(self._buffer) > limit:
            drop = len(self._buffer) - limit
            drop += drop % 2
            del self._buffer[:drop]
            self._buffer_start += drop
        if self._detector is None:
            return []
        out: list[Effect] = []
        for edge in self._detector.feed(pcm, at_ms=at_ms):
            if edge.kind == "started":
                out += self._speech_started(int(edge.audio_ms))
            elif edge.kind == "stopped" and self._speech_item is not None:
                out += self._speech_stopped(self._speech_item, int(edge.audio_ms))
        if self._speech_item is not None:
            out += self._stream_speech(self._speech_item, self._detector.speech_until_ms)
        return out

    def _turn_audio(self, audio_ms: int) -> int:
        """How many bytes of the buffer a turn ending at ``audio_ms`` takes."""
        end = max(0, audio_ms * BYTES_PER_MS - self._buffer_start)
        return min(end - end % 2, len(self._buffer))

    def _stream_speech(self, item_id: str, speech_until_ms: int | None) -> list[Effect]:
        """Send the turn's audio to the recognizer while it is spoken, up to where the speech heard
        so far ends (the turn ends there or later), so that when the silence confirms its end only
        its last ~100 ms are left to decode. Transcribing the whole turn then took the recognizer
        about 0.12 s per second of speech, 0.3-0.4 s with several calls on a loaded machine."""
        stream = self._stream
        if stream is not None and stream.item_id != item_id:
            return self._cancel_stream()
        if speech_until_ms is None or self._buffer_start != self._turn_start:
            return []  # silent, or the buffer limit dropped the turn's start: transcribed when committed
        end = self._buffer_start + self._turn_audio(speech_until_ms)
        begin = stream.end if stream is not None else self._buffer_start
        if end - begin < _STREAM_CHUNK_MS * BYTES_PER_MS:
            return []
        if stream is None:
            stream = self._stream = _Stream(self._new_id("job"), item_id, begin, begin)
        stream.end = end
        return [StreamSpeech(stream.job_id, bytes(self._buffer[begin - self._buffer_start : end - self._buffer_start]))]

    def _cancel_stream(self) -> list[Effect]:
        stream, self._stream = self._stream, None
        return [CancelTranscribe(stream.job_id)] if stream is not None else []

    def _speech_started(self, audio_ms: int) -> list[Effect]:
        td = self.settings.turn_detection
        self._idle_since = None
        self._speech_item = self._new_id("item")
        # Keep prefix_padding_ms of audio before the speech; older buffered audio is not the turn.
        keep_from = max(0, (audio_ms - (td.prefix_padding_ms if td else 0))) * BYTES_PER_MS
        if keep_from > self._buffer_start:
            drop = min(len(self._buffer), keep_from - self._buffer_start)
            drop -= drop % 2
            del self._buffer[:drop]
            self._buffer_start += drop
        self._turn_start = self._buffer_start
        out: list[Effect] = [
            self._send(
                {
                    "type": "input_audio_buffer.speech_started",
                    "audio_start_ms": audio_ms,
                    "item_id": self._speech_item,
                }
            )
        ]
        if td is not None and td.interrupt_response:
            out += self._barge_in()
        return out

    def _barge_in(self) -> list[Effect]:
        out: list[Effect] = []
        r = self._response
        if r is not None and r.in_conversation:
            out += self._finish(r, "cancelled", reason="turn_detected")
        if self.transport == "webrtc" and self._playback:
            out += self._clear_playback(truncate=True)
        return out

    def _clear_playback(self, *, truncate: bool) -> list[Effect]:
        out: list[Effect] = [ClearPlayback()]
        playing = list(self._playback.items())
        self._playback.clear()
        response_id = playing[0][1].response_id if playing else (self._last_response_id or "")
        out.append(self._send({"type": "output_audio_buffer.cleared", "response_id": response_id}))
        if truncate:
            for item_id, pb in playing:
                item = self._items.get(item_id)
                if item is not None and item.content and item.content[0].type == "output_audio":
                    out += self._truncate(item, 0, min(pb.played_ms, item.content[0].audio_ms))
        return out

    def _speech_stopped(self, item_id: str, audio_ms: int) -> list[Effect]:
        self._speech_item = None
        out: list[Effect] = [
            self._send(
                {
                    "type": "input_audio_buffer.speech_stopped",
                    "audio_end_ms": audio_ms,
                    "item_id": item_id,
                }
            )
        ]
        end = self._turn_audio(audio_ms)
        pcm, start = bytes(self._buffer[:end]), self._buffer_start
        del self._buffer[:end]
        self._buffer_start += end
        out += self._commit(pcm, item_id, start)
        td = self.settings.turn_detection
        if td is not None and td.create_response and self._response is None:
            out += self._create_response({}, None)
        return out

    def _commit(self, pcm: bytes, item_id: str, start: int) -> list[Effect]:
        """Commit ``pcm`` (from timeline position ``start``) as the user item ``item_id``."""
        prev = self._order[-1] if self._order else None
        item = Item(
            id=item_id,
            type="message",
            role="user",
            content=(Part("input_audio", transcript=None, audio=pcm, audio_ms=len(pcm) // BYTES_PER_MS),),
        )
        out: list[Effect] = [
            self._send({"type": "input_audio_buffer.committed", "previous_item_id": prev, "item_id": item_id})
        ]
        out += self._insert(item)
        stream = self._stream
        if stream is not None and (stream.item_id, stream.start) == (item_id, start) and stream.end - start <= len(pcm):
            self._stream = None
            self._jobs[stream.job_id] = _Job("transcribe", item_id)
            out.append(Transcribe(stream.job_id, pcm[stream.end - start :]))  # the rest of the streamed turn
            return out
        out += self._cancel_stream()
        out.append(self._transcribe(item_id, pcm))
        return out

    def _on_input_audio_buffer_commit(self, event: dict[str, Any]) -> list[Effect]:
        ms = len(self._buffer) / BYTES_PER_MS
        if ms < MIN_COMMIT_MS:
            raise ClientEventError(
                "input_audio_buffer_commit_empty",
                f"Error committing input audio buffer: buffer too small. Expected at least {MIN_COMMIT_MS}ms "
                f"of audio, but buffer only has {ms:.2f}ms of audio.",
            )
        item_id = self._speech_item or self._new_id("item")
        pcm, start = bytes(self._buffer), self._buffer_start
        self._buffer_start += len(self._buffer)
        self._buffer.clear()
        out = self._commit(pcm, item_id, start)
        return out + self._reset_detector()

    def _on_input_audio_buffer_clear(self, event: dict[str, Any]) -> list[Effect]:
        self._buffer_start += len(self._buffer)
        self._buffer.clear()
        return [*self._reset_detector(), self._send({"type": "input_audio_buffer.cleared"})]

    def _on_output_audio_buffer_clear(self, event: dict[str, Any]) -> list[Effect]:
        if self.transport != "webrtc":
            raise ClientEventError(
                "unsupported_for_transport",
                "output_audio_buffer.clear is only supported for WebRTC connections; over WebSocket the "
                "client owns playback (send response.cancel and conversation.item.truncate instead).",
            )
        r = self._response
        if r is not None and r.audio:
            r.incomplete = r.unplayed = True  # audio still being made will not be played
        return self._clear_playback(truncate=False)

    def _transcribed(self, item_id: str, job_id: str, result: Any) -> list[Effect]:
        out: list[Effect] = []
        failed = isinstance(result, BaseException) or not isinstance(result, str)
        text = "" if failed else result.strip()
        item = self._items.get(item_id)
        if item is not None:
            parts = tuple(
                replace(p, transcript=text) if p.type == "input_audio" and p.transcript is None else p
                for p in item.content
            )
            self._items[item_id] = replace(item, content=parts)
            if self.settings.transcription is not None:
                audio_ms = sum(p.audio_ms for p in parts)
                failure = f"Transcription failed: {result}" if failed else None
                out += self._transcription_events(item_id, text, audio_ms, failure)
        r = self._response
        if r is not None and job_id in r.waiting_on:
            r.waiting_on.discard(job_id)
            if not r.waiting_on:
                out += self._produce(r)
        return out

    def _transcription_events(self, item_id: str, text: str, audio_ms: int, failure: str | None) -> list[Effect]:
        """The input transcription events (sent only when the client configured transcription)."""
        if failure is not None:
            error = {
                "type": "transcription_error",
                "code": "transcription_failed",
                "message": failure,
                "param": None,
            }
            return [
                self._send(
                    {
                        "type": "conversation.item.input_audio_transcription.failed",
                        "item_id": item_id,
                        "content_index": 0,
                        "error": error,
                    }
                )
            ]
        out: list[Effect] = []
        if text:
            out.append(
                self._send(
                    {
                        "type": "conversation.item.input_audio_transcription.delta",
                        "item_id": item_id,
                        "content_index": 0,
                        "delta": text,
                    }
                )
            )
        out.append(
            self._send(
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": item_id,
                    "content_index": 0,
                    "transcript": text,
                    "usage": transcription_usage_wire(audio_ms, text),
                }
            )
        )
        return out

    # -- responses ---------------------------------------------------------------------------

    def _on_response_create(self, event: dict[str, Any]) -> list[Effect]:
        return self._create_response(event.get("response") or {}, event.get("event_id"))

    def _on_response_cancel(self, event: dict[str, Any]) -> list[Effect]:
        r = self._response
        wanted = event.get("response_id")
        if r is None or (wanted is not None and wanted != r.id):
            raise ClientEventError(
                "response_cancel_not_active",
                "Cancellation failed: no active response found.",
            )
        return self._finish(r, "cancelled", reason="client_cancelled")

    def _create_response(self, params: dict[str, Any], event_id: str | None) -> list[Effect]:
        if self._response is not None:
            raise ClientEventError(
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: {self._response.id}. "
                "Wait until the response is finished before creating a new one.",
            )
        options = response_options(self.settings, params, audio_produced=self._audio_produced)
        input_items = None if params.get("input") is None else self._response_input(params["input"])
        r = _Response(id=self._new_id("resp"), options=options, input_items=input_items)
        r.waiting_on = {job_id for job_id, job in self._jobs.items() if job.kind == "transcribe"}
        self._response = r
        self._last_response_id = r.id
        out: list[Effect] = [self._send({"type": "response.created", "response": self._response_wire(r)})]
        if not r.waiting_on:
            out += self._produce(r)
        return out

    def _response_input(self, wires: list[dict[str, Any]]) -> tuple[Item, ...]:
        """``response.input``: new items, and references to items of the conversation."""
        built = []
        for i, wire in enumerate(wires):
            if wire.get("type") == "item_reference":
                ref = self._items.get(wire["id"])
                if ref is None:
                    raise ClientEventError(
                        "item_not_found",
                        f"Referenced item '{wire['id']}' does not exist.",
                        param=f"response.input[{i}].id",
                    )
                built.append(ref)
            else:
                built.append(build_item(wire, self._new_id, f"response.input[{i}]"))
        return tuple(built)

    def _produce(self, r: _Response) -> list[Effect]:
        """Plan the reply and emit it (all of it for text / tool calls; up to Synthesize for audio)."""
        opts = r.options
        items = r.input_items if r.input_items is not None else self.items
        ctx = ReplyContext(
            instructions=opts.instructions,
            turns=tuple(i.turn() for i in items),
            tools=tuple(tool_spec_from_schema(t.name, t.parameters, t.description) for t in opts.tools),
            tool_choice=forced_tool_name(opts.tool_choice),
        )
        r.reply = plan_reply(ctx)
        r.usage_in = input_usage(opts.instructions, items, opts.tools)
        if r.reply.is_function_call:
            return self._produce_call(r, r.reply)
        text = r.reply.text
        limit = self._text_token_budget(opts)
        if text_tokens(text) > limit:
            text = text[: limit * 4]
            r.incomplete = True
        r.spoken = text
        item = r.item = Item(
            id=self._new_id("item"), type="message", role="assistant", status="in_progress", content=()
        )
        out = self._item_added(r, item)
        part_key = "transcript" if r.audio else "text"
        part = {"type": "audio" if r.audio else "text", part_key: ""}
        out.append(self._part_event(r, item, "response.content_part.added", part=part))
        delta_type = "response.output_audio_transcript.delta" if r.audio else "response.output_text.delta"
        for chunk in _chunks(text):
            out.append(self._part_event(r, item, delta_type, delta=chunk))
        content = (Part("output_audio", transcript=text) if r.audio else Part("output_text", text=text),)
        r.item = replace(item, content=content)
        if r.audio and text:
            r.synth_job = self._new_id("job")
            self._jobs[r.synth_job] = _Job("synthesize", r.id)
            self._audio_produced = True
            out.append(Synthesize(r.synth_job, text, opts.voice, opts.speed))
            return out
        out += self._finish(r, "incomplete" if r.incomplete else "completed")
        return out

    @staticmethod
    def _text_token_budget(opts: ResponseOptions) -> int:
        """Text tokens a reply may have so that text plus (estimated) audio tokens fit ``opts.token_cap``."""
        if not opts.audio:
            return opts.token_cap
        audio_per_text_token = audio_tokens(round(4 / (SPOKEN_CHARS_PER_SECOND * opts.speed) * 1000))
        return max(1, opts.token_cap // (1 + audio_per_text_token))

    def _part_event(self, r: _Response, item: Item, type_: str, **fields: Any) -> Send:
        """An event about content part 0 of response ``r``'s output item."""
        return self._send(
            {
                "type": type_,
                "response_id": r.id,
                "item_id": item.id,
                "output_index": 0,
                "content_index": 0,
                **fields,
            }
        )

    def _item_added(self, r: _Response, item: Item) -> list[Effect]:
        wire = item.to_wire()
        out: list[Effect] = [
            self._send({"type": "response.output_item.added", "response_id": r.id, "output_index": 0, "item": wire})
        ]
        if r.in_conversation:
            self._order.append(item.id)
            self._items[item.id] = item
            out.append(
                self._send(
                    {"type": "conversation.item.added", "previous_item_id": self._previous_of(item.id), "item": wire}
                )
            )
        return out

    def _produce_call(self, r: _Response, reply: Reply) -> list[Effect]:
        call_id = self._new_id("call")
        item = r.item = Item(
            id=self._new_id("item"),
            type="function_call",
            status="in_progress",
            name=reply.function_name or "",
            call_id=call_id,
            arguments="",
        )
        out = self._item_added(r, item)
        args = reply.arguments or "{}"
        call = {"response_id": r.id, "item_id": item.id, "output_index": 0, "call_id": call_id}
        for chunk in _chunks(args, size=24):
            out.append(self._send({"type": "response.function_call_arguments.delta", **call, "delta": chunk}))
        out.append(
            self._send({"type": "response.function_call_arguments.done", **call, "name": item.name, "arguments": args})
        )
        r.item = replace(item, arguments=args)
        out += self._finish(r, "completed")
        return out

    def _synthesized(self, response_id: str, job_id: str, result: Any) -> list[Effect]:
        r = self._response
        if r is None or r.id != response_id or r.synth_job != job_id:
            return []  # cancelled meanwhile
        r.synth_job = None
        if isinstance(result, BaseException) or not isinstance(result, (bytes, bytearray)):
            return self._finish(r, "failed", error=f"Speech synthesis failed: {result}")
        pcm = whole_samples(bytes(result))
        budget_ms = max(0, r.options.token_cap - text_tokens(r.spoken)) * 100  # audio: 10 tokens a second
        if len(pcm) > budget_ms * BYTES_PER_MS:
            pcm = pcm[: budget_ms * BYTES_PER_MS]
            r.incomplete = True
        r.audio_ms = len(pcm) // BYTES_PER_MS
        assert r.item is not None
        out: list[Effect] = []
        if self.transport == "websocket":
            step = AUDIO_DELTA_MS * BYTES_PER_MS
            for start in range(0, len(pcm), step):
                delta = base64.b64encode(pcm[start : start + step]).decode("ascii")
                out.append(self._part_event(r, r.item, "response.output_audio.delta", delta=delta))
        elif not r.unplayed and pcm:
            self._playback[r.item.id] = _Playback(response_id=r.id, total_ms=r.audio_ms)
            out.append(Play(r.item.id, r.id, pcm))
        out += self._finish(r, "incomplete" if r.incomplete else "completed")
        return out

    def _finish(
        self, r: _Response, status: Finish, *, reason: str | None = None, error: str | None = None
    ) -> list[Effect]:
        """Close out response ``r`` with the done events, response.done and rate_limits.updated."""
        out: list[Effect] = []
        self._response = None
        for job_id in [j for j, job in self._jobs.items() if job.kind == "synthesize" and job.target == r.id]:
            del self._jobs[job_id]
        if r.item is not None:
            out += self._item_done(r, r.item, status)
        r.status = status
        details: dict[str, Any] | None = None
        if status == "cancelled":
            details = {"type": "cancelled", "reason": reason or "client_cancelled"}
        elif status == "incomplete":
            details = {"type": "incomplete", "reason": "max_output_tokens"}
        elif status == "failed":
            details = {"type": "failed", "error": {"type": "server_error", "code": "speech_failed", "message": error}}
        usage = self._usage(r)
        if not (r.audio and self.transport == "webrtc" and r.item is not None and r.item.id in self._playback):
            # WebSocket: the client plays the audio it was sent; WebRTC: playback_finished arms it.
            self._idle_since = self._now + (r.audio_ms / 1000 if r.audio and self.transport == "websocket" else 0)
        out.append(self._send({"type": "response.done", "response": self._response_wire(r, details, usage)}))
        out.append(self._send({"type": "rate_limits.updated", "rate_limits": rate_limits_wire(usage["total_tokens"])}))
        return out

    def _item_done(self, r: _Response, item: Item, status: Finish) -> list[Effect]:
        """The done events of ``r``'s output item; stores its final state in ``r`` (and the conversation)."""
        out: list[Effect] = []
        item_status: ItemStatus = "completed" if status == "completed" else "incomplete"
        if item.type == "message":
            if item.content:
                part = item.content[0]
            else:
                part = Part("output_audio", transcript="") if r.audio else Part("output_text", text="")
            if status == "cancelled" and r.audio and r.audio_ms == 0:
                part = replace(part, transcript="")  # nothing was heard
            part = replace(part, audio_ms=r.audio_ms)
            if r.audio:
                if self.transport == "websocket" and r.audio_ms:
                    out.append(self._part_event(r, item, "response.output_audio.done"))
                transcript = part.transcript or ""
                out.append(self._part_event(r, item, "response.output_audio_transcript.done", transcript=transcript))
                done_part = {"type": "audio", "transcript": transcript}
            else:
                out.append(self._part_event(r, item, "response.output_text.done", text=part.text or ""))
                done_part = {"type": "text", "text": part.text or ""}
            out.append(self._part_event(r, item, "response.content_part.done", part=done_part))
            item = replace(item, status=item_status, content=(part,))
        else:
            item = replace(item, status=item_status)
        r.item = item
        wire = item.to_wire()
        out.append(
            self._send({"type": "response.output_item.done", "response_id": r.id, "output_index": 0, "item": wire})
        )
        if r.in_conversation and item.id in self._items:
            self._items[item.id] = item
            out.append(
                self._send(
                    {"type": "conversation.item.done", "previous_item_id": self._previous_of(item.id), "item": wire}
                )
            )
        return out

    def _usage(self, r: _Response) -> dict[str, Any]:
        if r.reply is not None and r.reply.is_function_call:
            out_text = text_tokens(r.reply.function_name or "") + text_tokens(r.reply.arguments or "")
        else:
            out_text = text_tokens(r.spoken)
        out_audio = audio_tokens(r.audio_ms) if r.audio else 0
        return response_usage_wire(r.usage_in, out_text, out_audio)

    def _response_wire(
        self, r: _Response, details: dict[str, Any] | None = None, usage: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return {
            "object": "realtime.response",
            "id": r.id,
            "status": r.status,
            "status_details": details,
            "output": [r.item.to_wire()] if r.item is not None and r.status != "in_progress" else [],
            "conversation_id": f"conv_{self._token}" if r.in_conversation else None,
            "output_modalities": list(r.options.modalities),
            "max_output_tokens": r.options.max_output_tokens,
            "audio": {"output": {"format": wire_format(), "voice": r.options.voice}},
            "usage": usage,
            "metadata": r.options.metadata,
        }


_Handler = Callable[[Session, dict[str, Any]], list[Effect]]

# Every client event type (schema.CLIENT_EVENT_TYPES) and its handler: search an event type, land here.
_HANDLERS: dict[str, _Handler] = {
    "session.update": Session._on_session_update,
    "conversation.item.create": Session._on_conversation_item_create,
    "conversation.item.delete": Session._on_conversation_item_delete,
    "conversation.item.retrieve": Session._on_conversation_item_retrieve,
    "conversation.item.truncate": Session._on_conversation_item_truncate,
    "input_audio_buffer.append": Session._on_input_audio_buffer_append,
    "input_audio_buffer.commit": Session._on_input_audio_buffer_commit,
    "input_audio_buffer.clear": Session._on_input_audio_buffer_clear,
    "output_audio_buffer.clear": Session._on_output_audio_buffer_clear,
    "response.create": Session._on_response_create,
    "response.cancel": Session._on_response_cancel,
}


# ------------------------------------------------------------------------------- helpers


def _chunks(text: str, size: int = 0) -> list[str]:
    """Split into streaming deltas: words (with their trailing space), or fixed ``size`` pieces.

    A word delta holds at least a token's worth of text (four characters): never more deltas than
    output tokens, as with the real service."""
    if not text:
        return []
    if size:
        return [text[i : i + size] for i in range(0, len(text), size)]
    pieces: list[str] = []
    for word in text.split(" "):
        if pieces and len(pieces[-1]) < 4:
            pieces[-1] += word + " "
        else:
            pieces.append(word + " ")
    pieces[-1] = pieces[-1][:-1]
    return [p for p in pieces if p]
