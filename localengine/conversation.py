"""The local engine's sans-IO session state machine (one per WebSocket session or WebRTC call).

``Session`` takes client events, input audio, speech-job results, playback reports and clock ticks,
and returns effects; it never touches sockets, loops, threads, clocks or blocking speech. Times
are passed in (``now``, seconds on any monotonic clock). Speech is requested through effects:
``Transcribe`` / ``Synthesize`` are run by the edge (in a thread pool) and their results come back
through ``speech_result`` (a ``str`` transcript, ``bytes`` pcm16 24 kHz, or the ``Exception`` the job
raised). Voice activity detection is delegated to a ``Detector`` made by ``detector_factory``
(default: ``localengine.speech.SpeechDetector``, imported lazily).

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
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol, Union

from .responder import ImageInfo, Reply, ReplyContext, Turn, plan_reply, tool_spec_from_schema
from .schema import ClientEventError, normalise_session, parse_client_event

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
    "Synthesize",
    "Transcribe",
    "TurnDetectionConfig",
    "speech_detector_factory",
]

SAMPLE_RATE = 24_000
BYTES_PER_MS = SAMPLE_RATE * 2 // 1000  # pcm16 mono: 48 bytes per millisecond
AUDIO_DELTA_MS = 100
MIN_COMMIT_MS = 100
DEFAULT_MODEL = "gpt-realtime"
DEFAULT_VOICE = "alloy"
DEFAULT_INSTRUCTIONS = "You are the Realtime Studio offline local engine. Answer briefly and in a friendly voice."
PCM_FORMAT = {"type": "audio/pcm", "rate": SAMPLE_RATE}
RATE_LIMIT_REQUESTS = 5_000
RATE_LIMIT_TOKENS = 400_000
_SEMANTIC_SILENCE_MS = {"low": 1500, "medium": 800, "auto": 800, "high": 400}


# ----------------------------------------------------------------------------------- effects


@dataclass(frozen=True)
class Send:
    """Send one server event (already valid) to the client(s)."""

    event: dict


@dataclass(frozen=True)
class Transcribe:
    job_id: str
    pcm24k: bytes = field(repr=False)


@dataclass(frozen=True)
class Synthesize:
    job_id: str
    text: str
    voice: str


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


Effect = Union[Send, Transcribe, Synthesize, Play, ClearPlayback, Close]


# ------------------------------------------------------------------------------ turn detection


@dataclass(frozen=True)
class TurnDetectionConfig:
    """``audio.input.turn_detection`` as a value (server_vad or semantic_vad)."""

    type: Literal["server_vad", "semantic_vad"] = "server_vad"
    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    create_response: bool = True
    interrupt_response: bool = True
    eagerness: Literal["low", "medium", "high", "auto"] = "auto"
    idle_timeout_ms: int | None = None

    @property
    def silence_ms(self) -> int:
        """Silence that ends a turn; semantic_vad derives it from ``eagerness``."""
        if self.type == "semantic_vad":
            return _SEMANTIC_SILENCE_MS[self.eagerness]
        return self.silence_duration_ms

    def to_wire(self) -> dict:
        if self.type == "semantic_vad":
            return {
                "type": "semantic_vad",
                "eagerness": self.eagerness,
                "create_response": self.create_response,
                "interrupt_response": self.interrupt_response,
            }
        return {
            "type": "server_vad",
            "threshold": self.threshold,
            "prefix_padding_ms": self.prefix_padding_ms,
            "silence_duration_ms": self.silence_duration_ms,
            "idle_timeout_ms": self.idle_timeout_ms,
            "create_response": self.create_response,
            "interrupt_response": self.interrupt_response,
        }

    @classmethod
    def from_wire(cls, wire: dict, default_silence_ms: int) -> TurnDetectionConfig:
        base = cls(silence_duration_ms=default_silence_ms)
        kind = wire.get("type", "server_vad")
        changes: dict[str, Any] = {"type": kind}
        for key in (
            "threshold",
            "prefix_padding_ms",
            "silence_duration_ms",
            "create_response",
            "interrupt_response",
            "eagerness",
            "idle_timeout_ms",
        ):
            if wire.get(key) is not None:
                changes[key] = wire[key]
        td = replace(base, **changes)
        if not 0.0 <= td.threshold <= 1.0:
            raise ValueError("threshold must be between 0.0 and 1.0")
        if td.silence_duration_ms <= 0 or td.prefix_padding_ms < 0:
            raise ValueError("silence_duration_ms must be positive and prefix_padding_ms not negative")
        return td


class SpeechEdgeLike(Protocol):
    kind: str  # "started" | "stopped"
    audio_ms: int


class Detector(Protocol):
    def feed(self, pcm24k: bytes, *, at_ms: int) -> list[SpeechEdgeLike]: ...


DetectorFactory = Callable[[TurnDetectionConfig], Detector]


def speech_detector_factory(td: TurnDetectionConfig) -> Detector:
    """The real detector: pocketsphinx VAD from ``localengine.speech`` (imported on first use)."""
    from .speech import SpeechDetector

    return SpeechDetector(threshold=td.threshold, silence_ms=td.silence_ms, prefix_padding_ms=td.prefix_padding_ms)


# -------------------------------------------------------------------------------- values


@dataclass(frozen=True)
class SessionSettings:
    """The effective session configuration (rendered by ``to_wire`` into the GA session object)."""

    id: str
    model: str = DEFAULT_MODEL
    instructions: str = DEFAULT_INSTRUCTIONS
    voice: str = DEFAULT_VOICE
    output_modalities: tuple[str, ...] = ("audio",)
    turn_detection: TurnDetectionConfig | None = TurnDetectionConfig()
    transcription: dict | None = None  # wire AudioTranscription
    noise_reduction: dict | None = None
    speed: float = 1.0
    tools: tuple[dict, ...] = ()  # wire function tools
    tool_choice: str | dict = "auto"
    max_output_tokens: int | str = "inf"
    tracing: Any = None
    truncation: Any = "auto"
    include: tuple[str, ...] | None = None

    def to_wire(self) -> dict:
        return {
            "type": "realtime",
            "object": "realtime.session",
            "id": self.id,
            "model": self.model,
            "output_modalities": list(self.output_modalities),
            "instructions": self.instructions,
            "tools": [dict(t) for t in self.tools],
            "tool_choice": self.tool_choice,
            "max_output_tokens": self.max_output_tokens,
            "tracing": self.tracing,
            "truncation": self.truncation,
            "prompt": None,
            "include": list(self.include) if self.include is not None else None,
            "audio": {
                "input": {
                    "format": dict(PCM_FORMAT),
                    "transcription": dict(self.transcription) if self.transcription else None,
                    "noise_reduction": dict(self.noise_reduction) if self.noise_reduction else None,
                    "turn_detection": self.turn_detection.to_wire() if self.turn_detection else None,
                },
                "output": {"format": dict(PCM_FORMAT), "voice": self.voice, "speed": self.speed},
            },
        }


@dataclass(frozen=True)
class Part:
    """One content part of a message item."""

    type: str  # input_text | input_audio | input_image | output_text | output_audio
    text: str | None = None
    transcript: str | None = None
    audio: bytes | None = field(default=None, repr=False)  # pcm16 24 kHz (input audio only)
    audio_ms: int = 0
    image_url: str | None = field(default=None, repr=False)
    detail: str | None = None
    image: ImageInfo | None = None

    def to_wire(self, with_audio: bool) -> dict:
        out: dict[str, Any] = {"type": self.type}
        if self.type in ("input_text", "output_text"):
            out["text"] = self.text or ""
        elif self.type in ("input_audio", "output_audio"):
            out["transcript"] = self.transcript
            if with_audio and self.audio is not None:
                out["audio"] = base64.b64encode(self.audio).decode("ascii")
        elif self.type == "input_image":
            out["image_url"] = self.image_url
            if self.detail:
                out["detail"] = self.detail
        return out


@dataclass(frozen=True)
class Item:
    id: str
    type: Literal["message", "function_call", "function_call_output"]
    status: Literal["completed", "incomplete", "in_progress"] = "completed"
    role: Literal["user", "assistant", "system"] | None = None
    content: tuple[Part, ...] = ()
    name: str = ""
    call_id: str = ""
    arguments: str = ""
    output: str = ""

    def to_wire(self, with_audio: bool = False) -> dict:
        out: dict[str, Any] = {"id": self.id, "object": "realtime.item", "type": self.type, "status": self.status}
        if self.type == "message":
            out["role"] = self.role
            out["content"] = [p.to_wire(with_audio) for p in self.content]
        elif self.type == "function_call":
            out.update(name=self.name, call_id=self.call_id, arguments=self.arguments)
        else:
            out.update(call_id=self.call_id, output=self.output)
        return out

    def turn(self) -> Turn:
        if self.type == "function_call":
            return Turn("function_call", text=self.arguments, name=self.name, call_id=self.call_id)
        if self.type == "function_call_output":
            return Turn("function_call_output", text=self.output, call_id=self.call_id)
        words = " ".join(
            (p.text if p.type in ("input_text", "output_text") else p.transcript) or "" for p in self.content
        ).strip()
        image = next((p.image for p in reversed(self.content) if p.image is not None), None)
        return Turn(self.role or "user", text=words, image=image)


@dataclass
class _Response:
    """Internal mutable state of the one active response."""

    id: str
    conversation: str  # "auto" | "none"
    modalities: tuple[str, ...]
    voice: str
    instructions: str
    tools: tuple[dict, ...]
    tool_choice: str | dict
    metadata: dict | None
    max_output_tokens: int | str
    input_items: tuple[Item, ...] | None
    waiting_on: set[str] = field(default_factory=set)
    item: Item | None = None
    reply: Reply | None = None
    spoken: str = ""
    synth_job: str | None = None
    audio_ms: int = 0
    usage_in: dict = field(default_factory=dict)
    status: str = "in_progress"
    incomplete: bool = False

    @property
    def audio(self) -> bool:
        return "audio" in self.modalities


@dataclass
class _Playback:
    response_id: str
    started: bool = False
    played_ms: int = 0
    total_ms: int = 0


class _Refused(Exception):
    def __init__(self, code: str, message: str, param: str | None = None):
        super().__init__(message)
        self.code, self.message, self.param = code, message, param


# --------------------------------------------------------------------------------- session


class Session:
    """One realtime conversation as a sans-IO state machine. See the module docstring."""

    def __init__(
        self,
        transport: Literal["websocket", "webrtc"],
        config: EngineConfig,
        initial_session: dict | None = None,
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
        self._jobs: dict[str, tuple[str, str]] = {}  # job_id -> ("transcribe", item_id) | ("synthesize", response_id)
        self._playback: dict[str, _Playback] = {}
        self._audio_produced = False
        self._closed = False
        # input audio
        self._detector: Detector | None = None
        self._timeline_bytes = 0  # all input audio ever received, in bytes
        self._buffer = bytearray()
        self._buffer_start = 0  # timeline position (bytes) of _buffer[0]
        self._speech_item: str | None = None
        self._stored_audio_bytes = 0  # audio kept inside items

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
        error: _Refused | None = None
        if self._initial:
            try:
                self.settings = self._apply_session(normalise_session(dict(self._initial)), initial=True)
            except _Refused as exc:
                error = exc
        out.append(self._send({"type": "session.created", "session": self.settings.to_wire()}))
        if self._initial and error is None:
            out.append(self._send({"type": "session.updated", "session": self.settings.to_wire()}))
        if error is not None:
            out.append(self._error(error.code, f"Invalid initial session: {error.message}", None, error.param))
        self._reset_detector()
        return out

    def receive(self, raw: str | bytes, now: float) -> list[Effect]:
        if self._closed:
            return []
        try:
            event = parse_client_event(raw, max_bytes=self.config.max_event_bytes)
        except ClientEventError as exc:
            return [self._error(exc.code, exc.message, exc.event_id, exc.param)]
        handler = getattr(self, "_on_" + event["type"].replace(".", "_"))
        try:
            return handler(event)
        except _Refused as exc:
            return [self._error(exc.code, exc.message, event.get("event_id"), exc.param)]
        except Exception as exc:  # a bug here must not end the session
            return [self._internal_error(exc, event.get("event_id"))]

    def audio_in(self, pcm24k: bytes, now: float) -> list[Effect]:
        if self._closed or not pcm24k:
            return []
        try:
            return self._append_audio(bytes(pcm24k[: len(pcm24k) - len(pcm24k) % 2]))
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
        kind, target = job
        if kind == "transcribe":
            return self._transcribed(target, job_id, result)
        return self._synthesized(target, job_id, result)

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
        out = []
        if not pb.started:
            out.append(self._send({"type": "output_audio_buffer.started", "response_id": pb.response_id}))
        out.append(self._send({"type": "output_audio_buffer.stopped", "response_id": pb.response_id}))
        return out

    def tick(self, now: float) -> list[Effect]:
        if self._closed:
            return []
        limit = self.config.max_session_seconds
        if now - self._started_at >= limit:
            self._closed = True
            minutes = limit / 60
            span = f"{minutes:g} minutes" if limit >= 60 else f"{limit:g} seconds"
            return [
                self._error(
                    "session_expired",
                    f"Your session hit the maximum duration of {span}.",
                    None,
                    None,
                ),
                Close("session_expired"),
            ]
        return []

    # -- small helpers ---------------------------------------------------------------------

    def _send(self, event: dict) -> Send:
        return Send({"event_id": self._new_id("event"), **event})

    def _error(self, code: str, message: str, event_id: str | None, param: str | None = None) -> Send:
        error: dict[str, Any] = {"type": "invalid_request_error", "code": code, "message": message}
        error["param"] = param
        error["event_id"] = event_id
        return self._send({"type": "error", "error": error})

    def _previous_of(self, item_id: str) -> str | None:
        index = self._order.index(item_id)
        return self._order[index - 1] if index > 0 else None

    def _insert(self, item: Item, previous_item_id: str | None = None, *, append: bool = True) -> list[Effect]:
        if append:
            self._order.append(item.id)
        elif previous_item_id == "root":
            self._order.insert(0, item.id)
        else:
            self._order.insert(self._order.index(previous_item_id) + 1, item.id)
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
        self._stored_audio_bytes += sum(len(p.audio or b"") for p in item.content)
        limit = int(self.config.max_input_audio_seconds * 1000) * BYTES_PER_MS
        for item_id in list(self._order):
            if self._stored_audio_bytes <= limit:
                break
            old = self._items[item_id]
            if any(p.audio for p in old.content):
                self._stored_audio_bytes -= sum(len(p.audio or b"") for p in old.content)
                self._items[item_id] = replace(old, content=tuple(replace(p, audio=None) for p in old.content))

    # -- session.update --------------------------------------------------------------------

    def _on_session_update(self, event: dict) -> list[Effect]:
        before = self.settings.turn_detection
        self.settings = self._apply_session(event["session"])
        if self.settings.turn_detection != before:
            self._reset_detector()
        return [self._send({"type": "session.updated", "session": self.settings.to_wire()})]

    def _apply_session(self, s: dict, *, initial: bool = False) -> SessionSettings:
        """The settings after applying GA session object ``s``; raises _Refused (nothing applied)."""
        if s.get("type", "realtime") != "realtime":
            raise _Refused(
                "unsupported_session_type",
                "The local engine supports realtime sessions only, not transcription sessions.",
                "session.type",
            )
        cur = self.settings
        changes: dict[str, Any] = {}
        if s.get("model"):
            changes["model"] = str(s["model"])
        if "instructions" in s:
            changes["instructions"] = s["instructions"] or ""
        if "output_modalities" in s and s["output_modalities"] is not None:
            changes["output_modalities"] = self._check_modalities(s["output_modalities"], "session.output_modalities")
        audio = s.get("audio") or {}
        ain, aout = audio.get("input") or {}, audio.get("output") or {}
        for where, cfg in (("input", ain), ("output", aout)):
            self._check_format(cfg.get("format"), f"session.audio.{where}.format")
        if "voice" in aout and aout["voice"] is not None:
            voice = aout["voice"]
            if not isinstance(voice, str):
                raise _Refused(
                    "unsupported_voice", "The local engine supports named voices only.", "session.audio.output.voice"
                )
            if voice != cur.voice and self._audio_produced and not initial:
                raise _Refused(
                    "cannot_update_voice",
                    "Cannot update a conversation's voice if assistant audio is present.",
                    "session.audio.output.voice",
                )
            changes["voice"] = voice
        if aout.get("speed") is not None:
            changes["speed"] = float(aout["speed"])
        if "turn_detection" in ain:
            td = ain["turn_detection"]
            try:
                changes["turn_detection"] = (
                    None if td is None else TurnDetectionConfig.from_wire(td, self.config.vad_silence_ms)
                )
            except ValueError as exc:
                raise _Refused(
                    "invalid_value", f"Invalid turn_detection: {exc}.", "session.audio.input.turn_detection"
                ) from None
        if "transcription" in ain:
            tr = ain["transcription"]
            changes["transcription"] = None if tr is None else {"model": "whisper-1", **tr}
        if "noise_reduction" in ain:
            changes["noise_reduction"] = ain["noise_reduction"]
        if "tools" in s and s["tools"] is not None:
            changes["tools"] = self._check_tools(s["tools"], "session.tools")
        if "tool_choice" in s and s["tool_choice"] is not None:
            changes["tool_choice"] = s["tool_choice"]
        tools = changes.get("tools", cur.tools)
        self._check_tool_choice(changes.get("tool_choice", cur.tool_choice), tools, "session.tool_choice")
        if "max_output_tokens" in s and s["max_output_tokens"] is not None:
            changes["max_output_tokens"] = s["max_output_tokens"]
        for key in ("tracing", "truncation"):
            if key in s:
                changes[key] = s[key]
        if "include" in s:
            changes["include"] = tuple(s["include"]) if s["include"] is not None else None
        return replace(cur, **changes)

    @staticmethod
    def _check_modalities(value: list, param: str) -> tuple[str, ...]:
        mods = tuple(dict.fromkeys(value))
        if mods not in (("audio",), ("text",)):
            raise _Refused("invalid_value", "output_modalities must be ['audio'] or ['text'].", param)
        return mods

    @staticmethod
    def _check_format(fmt: dict | None, param: str) -> None:
        if fmt is None:
            return
        if fmt.get("type", "audio/pcm") != "audio/pcm" or fmt.get("rate", SAMPLE_RATE) != SAMPLE_RATE:
            raise _Refused(
                "unsupported_audio_format",
                f"The local engine supports only audio/pcm at {SAMPLE_RATE} Hz, not {fmt.get('type')}.",
                param,
            )

    @staticmethod
    def _check_tools(tools: list, param: str) -> tuple[dict, ...]:
        out = []
        for i, tool in enumerate(tools):
            if tool.get("type", "function") != "function":
                raise _Refused(
                    "unsupported_tool",
                    f"The local engine supports function tools only, not {tool.get('type')!r} tools.",
                    f"{param}[{i}].type",
                )
            if not tool.get("name"):
                raise _Refused(
                    "missing_required_parameter",
                    f"Missing required parameter: '{param}[{i}].name'.",
                    f"{param}[{i}].name",
                )
            out.append({"type": "function", **tool})
        return tuple(out)

    @staticmethod
    def _check_tool_choice(choice: str | dict, tools: tuple[dict, ...], param: str) -> None:
        if isinstance(choice, dict):
            if choice.get("type") != "function":
                raise _Refused("unsupported_tool", "The local engine supports function tool choices only.", param)
            if not any(t.get("name") == choice.get("name") for t in tools):
                raise _Refused(
                    "invalid_value",
                    f"tool_choice names function {choice.get('name')!r}, which is not among the tools.",
                    param,
                )

    # -- conversation items ----------------------------------------------------------------

    def _build_item(self, wire: dict, param: str = "item") -> Item:
        """A validated ``Item`` from a GA item dict; raises _Refused."""
        kind = wire.get("type")
        if kind not in ("message", "function_call", "function_call_output"):
            raise _Refused(
                "unsupported_item_type", f"The local engine does not support {kind!r} items.", f"{param}.type"
            )
        item_id = wire.get("id") or self._new_id("item")
        if kind == "function_call":
            return Item(
                id=item_id,
                type=kind,
                name=wire["name"],
                arguments=wire.get("arguments") or "",
                call_id=wire.get("call_id") or self._new_id("call"),
            )
        if kind == "function_call_output":
            return Item(id=item_id, type=kind, call_id=wire["call_id"], output=wire["output"])
        role = wire["role"]
        parts = []
        for i, part in enumerate(wire.get("content") or []):
            parts.append(self._build_part(role, part, f"{param}.content[{i}]"))
        return Item(id=item_id, type="message", role=role, content=tuple(parts))

    def _build_part(self, role: str, part: dict, param: str) -> Part:
        kind = part.get("type") or ("output_text" if role == "assistant" else "input_text")
        allowed = {
            "user": ("input_text", "input_audio", "input_image"),
            "system": ("input_text",),
            "assistant": ("output_text", "output_audio"),
        }[role]
        if kind not in allowed:
            raise _Refused(
                "invalid_value", f"Content type {kind!r} is not allowed in a {role} message.", f"{param}.type"
            )
        if kind in ("input_text", "output_text"):
            if part.get("text") is None:
                raise _Refused(
                    "missing_required_parameter", f"Missing required parameter: '{param}.text'.", f"{param}.text"
                )
            return Part(kind, text=part["text"])
        if kind in ("input_audio", "output_audio"):
            pcm = None
            if part.get("audio"):
                pcm = _decode_b64(part["audio"], f"{param}.audio")
            elif part.get("transcript") is None:
                raise _Refused(
                    "missing_required_parameter",
                    f"Missing required parameter: '{param}.audio' (or '{param}.transcript').",
                    f"{param}.audio",
                )
            ms = len(pcm) // BYTES_PER_MS if pcm else 0
            return Part(
                kind, transcript=part.get("transcript"), audio=pcm if kind == "input_audio" else None, audio_ms=ms
            )
        url = part.get("image_url")
        if not url:
            raise _Refused(
                "missing_required_parameter", f"Missing required parameter: '{param}.image_url'.", f"{param}.image_url"
            )
        from .imaging import ImageError, describe_image

        try:
            facts = describe_image(url)
        except ImageError as exc:
            raise _Refused(
                "invalid_image", f"Invalid image in '{param}.image_url': {exc}", f"{param}.image_url"
            ) from None
        image = ImageInfo(int(facts.width), int(facts.height), str(facts.colour))
        return Part("input_image", image_url=url, detail=part.get("detail") or "auto", image=image)

    def _on_conversation_item_create(self, event: dict) -> list[Effect]:
        wire = event["item"]
        prev = event.get("previous_item_id")
        if prev is not None and prev != "root" and prev not in self._items:
            raise _Refused(
                "previous_item_not_found",
                f"Error adding item: the previous item with id '{prev}' does not exist.",
                "previous_item_id",
            )
        if wire.get("id") in self._items:
            raise _Refused("item_already_exists", f"Item with id '{wire['id']}' already exists.", "item.id")
        item = self._build_item(wire)
        out = self._insert(item, prev, append=prev is None)
        out += self._transcribe_item_audio(item)
        return out

    def _transcribe_item_audio(self, item: Item) -> list[Effect]:
        if item.role != "user":
            return []
        out: list[Effect] = []
        for part in item.content:
            if part.type == "input_audio" and part.audio and part.transcript is None:
                job = self._new_id("job")
                self._jobs[job] = ("transcribe", item.id)
                out.append(Transcribe(job, part.audio))
        return out

    def _find(self, item_id: str, code: str, verb: str) -> Item:
        item = self._items.get(item_id)
        if item is None:
            raise _Refused(code, f"Error {verb} item: the item with id '{item_id}' does not exist.", "item_id")
        return item

    def _on_conversation_item_delete(self, event: dict) -> list[Effect]:
        item = self._find(event["item_id"], "item_delete_invalid_item_id", "deleting")
        self._order.remove(item.id)
        del self._items[item.id]
        self._stored_audio_bytes -= sum(len(p.audio or b"") for p in item.content)
        return [self._send({"type": "conversation.item.deleted", "item_id": item.id})]

    def _on_conversation_item_retrieve(self, event: dict) -> list[Effect]:
        item = self._find(event["item_id"], "item_retrieve_invalid_item_id", "retrieving")
        return [self._send({"type": "conversation.item.retrieved", "item": item.to_wire(with_audio=True)})]

    def _on_conversation_item_truncate(self, event: dict) -> list[Effect]:
        item = self._find(event["item_id"], "item_truncate_invalid_item_id", "truncating")
        index, end_ms = event["content_index"], event["audio_end_ms"]
        if item.role != "assistant":
            raise _Refused("item_truncate_invalid_item_id", "Only assistant messages can be truncated.", "item_id")
        if not 0 <= index < len(item.content) or item.content[index].type != "output_audio":
            raise _Refused(
                "item_truncate_invalid_content_index",
                f"Content index {index} of item '{item.id}' is not assistant audio.",
                "content_index",
            )
        total = item.content[index].audio_ms
        if end_ms < 0 or end_ms > total:
            raise _Refused(
                "item_truncate_invalid_audio_end_ms",
                f"audio_end_ms ({end_ms}) must be between 0 and the audio's duration ({total} ms).",
                "audio_end_ms",
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

    def _reset_detector(self) -> None:
        td = self.settings.turn_detection
        self._detector = self._detector_factory(td) if td is not None else None
        self._speech_item = None

    def _on_input_audio_buffer_append(self, event: dict) -> list[Effect]:
        pcm = _decode_b64(event["audio"], "audio")
        if len(pcm) % 2:
            raise _Refused("invalid_value", "Audio must be pcm16: an even number of bytes.", "audio")
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
                out += self._speech_stopped(int(edge.audio_ms))
        return out

    def _speech_started(self, audio_ms: int) -> list[Effect]:
        td = self.settings.turn_detection
        self._speech_item = self._new_id("item")
        # Keep prefix_padding_ms of audio before the speech; older buffered audio is not the turn.
        keep_from = max(0, (audio_ms - (td.prefix_padding_ms if td else 0))) * BYTES_PER_MS
        if keep_from > self._buffer_start:
            drop = min(len(self._buffer), keep_from - self._buffer_start)
            drop -= drop % 2
            del self._buffer[:drop]
            self._buffer_start += drop
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
        if r is not None and r.conversation == "auto":
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

    def _speech_stopped(self, audio_ms: int) -> list[Effect]:
        item_id = self._speech_item
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
        end = max(0, audio_ms * BYTES_PER_MS - self._buffer_start)
        end = min(end - end % 2, len(self._buffer))
        pcm = bytes(self._buffer[:end])
        del self._buffer[:end]
        self._buffer_start += end
        out += self._commit(pcm, item_id)
        td = self.settings.turn_detection
        if td is not None and td.create_response and self._response is None:
            out += self._create_response({}, None)
        return out

    def _commit(self, pcm: bytes, item_id: str) -> list[Effect]:
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
        job = self._new_id("job")
        self._jobs[job] = ("transcribe", item_id)
        out.append(Transcribe(job, pcm))
        return out

    def _on_input_audio_buffer_commit(self, event: dict) -> list[Effect]:
        ms = len(self._buffer) / BYTES_PER_MS
        if ms < MIN_COMMIT_MS:
            raise _Refused(
                "input_audio_buffer_commit_empty",
                f"Error committing input audio buffer: buffer too small. Expected at least {MIN_COMMIT_MS}ms "
                f"of audio, but buffer only has {ms:.2f}ms of audio.",
            )
        item_id = self._speech_item or self._new_id("item")
        pcm = bytes(self._buffer)
        self._buffer_start += len(self._buffer)
        self._buffer.clear()
        self._reset_detector()
        return self._commit(pcm, item_id)

    def _on_input_audio_buffer_clear(self, event: dict) -> list[Effect]:
        self._buffer_start += len(self._buffer)
        self._buffer.clear()
        self._reset_detector()
        return [self._send({"type": "input_audio_buffer.cleared"})]

    def _on_output_audio_buffer_clear(self, event: dict) -> list[Effect]:
        if self.transport != "webrtc":
            raise _Refused(
                "unsupported_for_transport",
                "output_audio_buffer.clear is only supported for WebRTC connections; over WebSocket the "
                "client owns playback (send response.cancel and conversation.item.truncate instead).",
            )
        r = self._response
        if r is not None and r.audio:
            r.incomplete = True  # audio still being made will not be played
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
            audio_ms = sum(p.audio_ms for p in parts)
            if self.settings.transcription is not None:
                if failed:
                    out.append(
                        self._send(
                            {
                                "type": "conversation.item.input_audio_transcription.failed",
                                "item_id": item_id,
                                "content_index": 0,
                                "error": {
                                    "type": "transcription_error",
                                    "code": "transcription_failed",
                                    "message": f"Transcription failed: {result}",
                                    "param": None,
                                },
                            }
                        )
                    )
                else:
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
                    audio_tokens = math.ceil(audio_ms / 100)
                    text_tokens = _text_tokens(text)
                    out.append(
                        self._send(
                            {
                                "type": "conversation.item.input_audio_transcription.completed",
                                "item_id": item_id,
                                "content_index": 0,
                                "transcript": text,
                                "usage": {
                                    "type": "tokens",
                                    "input_tokens": audio_tokens,
                                    "output_tokens": text_tokens,
                                    "total_tokens": audio_tokens + text_tokens,
                                    "input_token_details": {"audio_tokens": audio_tokens, "text_tokens": 0},
                                },
                            }
                        )
                    )
        r = self._response
        if r is not None and job_id in r.waiting_on:
            r.waiting_on.discard(job_id)
            if not r.waiting_on:
                out += self._produce(r)
        return out

    # -- responses ---------------------------------------------------------------------------

    def _on_response_create(self, event: dict) -> list[Effect]:
        return self._create_response(event.get("response") or {}, event.get("event_id"))

    def _on_response_cancel(self, event: dict) -> list[Effect]:
        r = self._response
        wanted = event.get("response_id")
        if r is None or (wanted is not None and wanted != r.id):
            raise _Refused(
                "response_cancel_not_active",
                "Cancellation failed: no active response found.",
            )
        return self._finish(r, "cancelled", reason="client_cancelled")

    def _create_response(self, params: dict, event_id: str | None) -> list[Effect]:
        if self._response is not None:
            raise _Refused(
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: {self._response.id}. "
                "Wait until the response is finished before creating a new one.",
            )
        s = self.settings
        conversation = params.get("conversation") or "auto"
        if conversation not in ("auto", "none"):
            raise _Refused("invalid_value", "response.conversation must be 'auto' or 'none'.", "response.conversation")
        modalities = s.output_modalities
        if params.get("output_modalities") is not None:
            modalities = self._check_modalities(params["output_modalities"], "response.output_modalities")
        out_cfg = (params.get("audio") or {}).get("output") or {}
        self._check_format(out_cfg.get("format"), "response.audio.output.format")
        voice = s.voice
        if out_cfg.get("voice") is not None:
            if not isinstance(out_cfg["voice"], str):
                raise _Refused(
                    "unsupported_voice", "The local engine supports named voices only.", "response.audio.output.voice"
                )
            if out_cfg["voice"] != s.voice and self._audio_produced:
                raise _Refused(
                    "cannot_update_voice",
                    "Cannot update a conversation's voice if assistant audio is present.",
                    "response.audio.output.voice",
                )
            voice = out_cfg["voice"]
        tools = s.tools if params.get("tools") is None else self._check_tools(params["tools"], "response.tools")
        tool_choice = s.tool_choice if params.get("tool_choice") is None else params["tool_choice"]
        self._check_tool_choice(tool_choice, tools, "response.tool_choice")
        input_items = None
        if params.get("input") is not None:
            built = []
            for i, wire in enumerate(params["input"]):
                if wire.get("type") == "item_reference":
                    ref = self._items.get(wire["id"])
                    if ref is None:
                        raise _Refused(
                            "item_not_found",
                            f"Referenced item '{wire['id']}' does not exist.",
                            f"response.input[{i}].id",
                        )
                    built.append(ref)
                else:
                    built.append(self._build_item(wire, f"response.input[{i}]"))
            input_items = tuple(built)
        r = _Response(
            id=self._new_id("resp"),
            conversation=conversation,
            modalities=modalities,
            voice=voice,
            instructions=s.instructions if params.get("instructions") is None else params["instructions"],
            tools=tools,
            tool_choice=tool_choice,
            metadata=params.get("metadata"),
            max_output_tokens=params.get("max_output_tokens") or s.max_output_tokens,
            input_items=input_items,
        )
        r.waiting_on = {job for job, (kind, _) in self._jobs.items() if kind == "transcribe"}
        self._response = r
        self._last_response_id = r.id
        out: list[Effect] = [self._send({"type": "response.created", "response": self._response_wire(r)})]
        if not r.waiting_on:
            out += self._produce(r)
        return out

    def _context_items(self, r: _Response) -> tuple[Item, ...]:
        return r.input_items if r.input_items is not None else self.items

    def _produce(self, r: _Response) -> list[Effect]:
        """Plan the reply and emit it (all of it for text / tool calls; up to Synthesize for audio)."""
        items = self._context_items(r)
        tool_choice = r.tool_choice["name"] if isinstance(r.tool_choice, dict) else r.tool_choice
        ctx = ReplyContext(
            instructions=r.instructions,
            turns=tuple(i.turn() for i in items),
            tools=tuple(
                tool_spec_from_schema(t["name"], t.get("parameters"), t.get("description") or "") for t in r.tools
            ),
            tool_choice=tool_choice,
        )
        r.reply = plan_reply(ctx)
        r.usage_in = _input_usage(r.instructions, items, r.tools)
        if r.reply.is_function_call:
            return self._produce_call(r)
        text = r.reply.text
        limit = r.max_output_tokens
        if isinstance(limit, int) and _text_tokens(text) > limit:
            text = text[: limit * 4]
            r.incomplete = True
        r.spoken = text
        content_type = "output_audio" if r.audio else "output_text"
        r.item = Item(id=self._new_id("item"), type="message", role="assistant", status="in_progress", content=())
        out = self._item_added(r)
        part_key = "transcript" if r.audio else "text"
        out.append(
            self._send(
                {
                    "type": "response.content_part.added",
                    "response_id": r.id,
                    "item_id": r.item.id,
                    "output_index": 0,
                    "content_index": 0,
                    "part": {"type": "audio" if r.audio else "text", part_key: ""},
                }
            )
        )
        delta_type = "response.output_audio_transcript.delta" if r.audio else "response.output_text.delta"
        for chunk in _chunks(text):
            out.append(
                self._send(
                    {
                        "type": delta_type,
                        "response_id": r.id,
                        "item_id": r.item.id,
                        "output_index": 0,
                        "content_index": 0,
                        "delta": chunk,
                    }
                )
            )
        r.item = replace(
            r.item, content=(Part(content_type, text=None if r.audio else text, transcript=text if r.audio else None),)
        )
        if r.audio and text:
            r.synth_job = self._new_id("job")
            self._jobs[r.synth_job] = ("synthesize", r.id)
            self._audio_produced = True
            out.append(Synthesize(r.synth_job, text, r.voice))
            return out
        out += self._finish(r, "incomplete" if r.incomplete else "completed")
        return out

    def _item_added(self, r: _Response) -> list[Effect]:
        assert r.item is not None
        wire = r.item.to_wire()
        out = [self._send({"type": "response.output_item.added", "response_id": r.id, "output_index": 0, "item": wire})]
        if r.conversation == "auto":
            self._order.append(r.item.id)
            self._items[r.item.id] = r.item
            out.append(
                self._send(
                    {
                        "type": "conversation.item.added",
                        "previous_item_id": self._previous_of(r.item.id),
                        "item": wire,
                    }
                )
            )
        return out

    def _produce_call(self, r: _Response) -> list[Effect]:
        assert r.reply is not None and r.reply.function_name is not None
        call_id = self._new_id("call")
        r.item = Item(
            id=self._new_id("item"),
            type="function_call",
            status="in_progress",
            name=r.reply.function_name,
            call_id=call_id,
            arguments="",
        )
        out = self._item_added(r)
        args = r.reply.arguments or "{}"
        for chunk in _chunks(args, size=24):
            out.append(
                self._send(
                    {
                        "type": "response.function_call_arguments.delta",
                        "response_id": r.id,
                        "item_id": r.item.id,
                        "output_index": 0,
                        "call_id": call_id,
                        "delta": chunk,
                    }
                )
            )
        out.append(
            self._send(
                {
                    "type": "response.function_call_arguments.done",
                    "response_id": r.id,
                    "item_id": r.item.id,
                    "output_index": 0,
                    "call_id": call_id,
                    "name": r.item.name,
                    "arguments": args,
                }
            )
        )
        r.item = replace(r.item, arguments=args)
        out += self._finish(r, "completed")
        return out

    def _synthesized(self, response_id: str, job_id: str, result: Any) -> list[Effect]:
        r = self._response
        if r is None or r.id != response_id or r.synth_job != job_id:
            return []  # cancelled meanwhile
        r.synth_job = None
        if isinstance(result, BaseException) or not isinstance(result, (bytes, bytearray)):
            return self._finish(r, "failed", error=f"Speech synthesis failed: {result}")
        pcm = bytes(result[: len(result) - len(result) % 2])
        r.audio_ms = len(pcm) // BYTES_PER_MS
        assert r.item is not None
        out: list[Effect] = []
        if self.transport == "websocket":
            step = AUDIO_DELTA_MS * BYTES_PER_MS
            for start in range(0, len(pcm), step):
                out.append(
                    self._send(
                        {
                            "type": "response.output_audio.delta",
                            "response_id": r.id,
                            "item_id": r.item.id,
                            "output_index": 0,
                            "content_index": 0,
                            "delta": base64.b64encode(pcm[start : start + step]).decode("ascii"),
                        }
                    )
                )
        elif not r.incomplete and pcm:
            self._playback[r.item.id] = _Playback(response_id=r.id, total_ms=r.audio_ms)
            out.append(Play(r.item.id, r.id, pcm))
        out += self._finish(r, "incomplete" if r.incomplete else "completed")
        return out

    def _finish(
        self, r: _Response, status: str, *, reason: str | None = None, error: str | None = None
    ) -> list[Effect]:
        """Close out response ``r`` with the done events, response.done and rate_limits.updated."""
        out: list[Effect] = []
        self._response = None
        for job in [j for j, (kind, target) in self._jobs.items() if kind == "synthesize" and target == r.id]:
            del self._jobs[job]
        item_status = "completed" if status == "completed" else "incomplete"
        if r.item is not None:
            if r.item.type == "message":
                part = (
                    r.item.content[0]
                    if r.item.content
                    else Part(
                        "output_audio" if r.audio else "output_text",
                        text="" if not r.audio else None,
                        transcript="" if r.audio else None,
                    )
                )
                if status == "cancelled" and r.audio and r.audio_ms == 0:
                    part = replace(part, transcript="")  # nothing was heard
                part = replace(part, audio_ms=r.audio_ms)
                if r.audio:
                    if self.transport == "websocket" and r.audio_ms:
                        out.append(
                            self._send(
                                {
                                    "type": "response.output_audio.done",
                                    "response_id": r.id,
                                    "item_id": r.item.id,
                                    "output_index": 0,
                                    "content_index": 0,
                                }
                            )
                        )
                    out.append(
                        self._send(
                            {
                                "type": "response.output_audio_transcript.done",
                                "response_id": r.id,
                                "item_id": r.item.id,
                                "output_index": 0,
                                "content_index": 0,
                                "transcript": part.transcript or "",
                            }
                        )
                    )
                else:
                    out.append(
                        self._send(
                            {
                                "type": "response.output_text.done",
                                "response_id": r.id,
                                "item_id": r.item.id,
                                "output_index": 0,
                                "content_index": 0,
                                "text": part.text or "",
                            }
                        )
                    )
                out.append(
                    self._send(
                        {
                            "type": "response.content_part.done",
                            "response_id": r.id,
                            "item_id": r.item.id,
                            "output_index": 0,
                            "content_index": 0,
                            "part": {"type": "audio", "transcript": part.transcript or ""}
                            if r.audio
                            else {"type": "text", "text": part.text or ""},
                        }
                    )
                )
                r.item = replace(r.item, status=item_status, content=(part,))
            else:
                r.item = replace(r.item, status=item_status)
            wire = r.item.to_wire()
            out.append(
                self._send({"type": "response.output_item.done", "response_id": r.id, "output_index": 0, "item": wire})
            )
            if r.conversation == "auto" and r.item.id in self._items:
                self._items[r.item.id] = r.item
                out.append(
                    self._send(
                        {
                            "type": "conversation.item.done",
                            "previous_item_id": self._previous_of(r.item.id),
                            "item": wire,
                        }
                    )
                )
        r.status = status
        details: dict[str, Any] | None = None
        if status == "cancelled":
            details = {"type": "cancelled", "reason": reason or "client_cancelled"}
        elif status == "incomplete":
            details = {"type": "incomplete", "reason": "max_output_tokens"}
        elif status == "failed":
            details = {"type": "failed", "error": {"type": "server_error", "code": "speech_failed", "message": error}}
        usage = self._usage(r)
        out.append(self._send({"type": "response.done", "response": self._response_wire(r, details, usage)}))
        used = usage["total_tokens"] if usage else 0
        out.append(
            self._send(
                {
                    "type": "rate_limits.updated",
                    "rate_limits": [
                        {
                            "name": "requests",
                            "limit": RATE_LIMIT_REQUESTS,
                            "remaining": RATE_LIMIT_REQUESTS - 1,
                            "reset_seconds": 0.012,
                        },
                        {
                            "name": "tokens",
                            "limit": RATE_LIMIT_TOKENS,
                            "remaining": max(0, RATE_LIMIT_TOKENS - used),
                            "reset_seconds": round(used * 60 / RATE_LIMIT_TOKENS, 3),
                        },
                    ],
                }
            )
        )
        return out

    def _usage(self, r: _Response) -> dict:
        inp = r.usage_in or {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0}
        if r.reply is not None and r.reply.is_function_call:
            out_text = _text_tokens(r.reply.function_name or "") + _text_tokens(r.reply.arguments or "")
        else:
            out_text = _text_tokens(r.spoken)
        out_audio = math.ceil(r.audio_ms / 100) if r.audio else 0
        input_tokens = inp["text_tokens"] + inp["audio_tokens"] + inp["image_tokens"]
        output_tokens = out_text + out_audio
        return {
            "total_tokens": input_tokens + output_tokens,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "input_token_details": {
                "text_tokens": inp["text_tokens"],
                "audio_tokens": inp["audio_tokens"],
                "image_tokens": inp["image_tokens"],
                "cached_tokens": 0,
                "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0},
            },
            "output_token_details": {"text_tokens": out_text, "audio_tokens": out_audio},
        }

    def _response_wire(self, r: _Response, details: dict | None = None, usage: dict | None = None) -> dict:
        return {
            "object": "realtime.response",
            "id": r.id,
            "status": r.status,
            "status_details": details,
            "output": [r.item.to_wire()] if r.item is not None and r.status != "in_progress" else [],
            "conversation_id": f"conv_{self._token}" if r.conversation == "auto" else None,
            "output_modalities": list(r.modalities),
            "max_output_tokens": r.max_output_tokens,
            "audio": {"output": {"format": dict(PCM_FORMAT), "voice": r.voice}},
            "usage": usage,
            "metadata": r.metadata,
        }


# ------------------------------------------------------------------------------- helpers


def _decode_b64(value: str, param: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _Refused("invalid_value", f"Invalid '{param}': expected base64-encoded audio.", param) from None


def _text_tokens(text: str) -> int:
    return math.ceil(len(text) / 4) if text else 0


def _image_tokens(image: ImageInfo, detail: str | None) -> int:
    if detail == "low":
        return 85
    tiles = math.ceil(min(image.width, 2048) / 512) * math.ceil(min(image.height, 2048) / 512)
    return min(765, 85 + 170 * tiles)


def _input_usage(instructions: str, items: tuple[Item, ...], tools: tuple[dict, ...]) -> dict:
    text = _text_tokens(instructions) + sum(_text_tokens(json.dumps(t)) for t in tools)
    audio = image = 0
    for item in items:
        if item.type == "function_call":
            text += _text_tokens(item.name) + _text_tokens(item.arguments)
        elif item.type == "function_call_output":
            text += _text_tokens(item.output)
        for p in item.content:
            if p.type in ("input_text", "output_text"):
                text += _text_tokens(p.text or "")
            elif p.type in ("input_audio", "output_audio"):
                audio += math.ceil(p.audio_ms / 100)
                text += _text_tokens(p.transcript or "") if p.type == "output_audio" else 0
            elif p.image is not None:
                image += _image_tokens(p.image, p.detail)
    return {"text_tokens": text, "audio_tokens": audio, "image_tokens": image}


def _chunks(text: str, size: int = 0) -> list[str]:
    """Split into streaming deltas: words (with their trailing space), or fixed ``size`` pieces."""
    if not text:
        return []
    if size:
        return [text[i : i + size] for i in range(0, len(text), size)]
    pieces: list[str] = []
    for word in text.split(" "):
        pieces.append(word + " ")
    pieces[-1] = pieces[-1][:-1]
    return [p for p in pieces if p]
