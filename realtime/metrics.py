"""Per-turn latency and token usage, as a sans-IO clock fed with events and times.

A turn starts when the user stops speaking (``input_audio_buffer.speech_stopped``) or sends a
typed message (client ``conversation.item.create`` of a user message with text), and is stamped
with the first assistant audio (``response.output_audio.delta``, or ``output_audio_buffer.started``
on WebRTC where audio travels as media) and the first assistant text (output text or audio
transcript delta). It completes at the ``response.done`` of its last response: a response that
only calls functions keeps the turn open for the follow-up response. Usage of every response of
the turn is summed. Times are passed in (``now``, seconds, monotonic); nothing reads a clock.

A spoken turn completes at its first audio. Over WebRTC the audio is media, and
``output_audio_buffer.started`` usually arrives *after* ``response.done`` (the reply is
generated faster than it plays), so when a response whose output holds audio is done before
any audio was seen, its turn is held until the first of: its playback starts (first audio is
stamped), its audio buffer is stopped or cleared without starting, the next turn starts, or
``audio_grace_s`` passes (checked on every ``feed`` and on ``tick(now)``); in the last three
cases it completes with no first audio.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["AUDIO_GRACE_S", "TurnClock", "TurnMetrics", "UsageTotals"]

_AUDIO_START = frozenset({"response.output_audio.delta", "response.audio.delta", "output_audio_buffer.started"})
_TEXT_START = frozenset(
    {
        "response.output_text.delta",
        "response.text.delta",
        "response.output_audio_transcript.delta",
        "response.audio_transcript.delta",
    }
)


_AUDIO_END = frozenset({"output_audio_buffer.stopped", "output_audio_buffer.cleared"})
AUDIO_GRACE_S = 2.0


def _has_audio(response: Mapping[str, Any]) -> bool:
    for item in response.get("output") or ():
        if isinstance(item, Mapping):
            for part in item.get("content") or ():
                if isinstance(part, Mapping) and part.get("type") in ("output_audio", "audio"):
                    return True
    return False


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


@dataclass(frozen=True)
class UsageTotals:
    input_text: int = 0
    input_audio: int = 0
    input_image: int = 0
    cached_text: int = 0  # part of input_text billed at the cached rate
    cached_audio: int = 0
    cached_image: int = 0
    output_text: int = 0
    output_audio: int = 0
    responses: int = 0

    @classmethod
    def from_usage(cls, usage: Mapping[str, Any] | None) -> UsageTotals:
        """From a ``response.usage`` object (``RealtimeResponseUsage`` shape)."""
        if not isinstance(usage, Mapping):
            return cls()
        inp = usage.get("input_token_details") or {}
        out = usage.get("output_token_details") or {}
        cached = inp.get("cached_tokens_details") or {} if isinstance(inp, Mapping) else {}
        inp = inp if isinstance(inp, Mapping) else {}
        out = out if isinstance(out, Mapping) else {}
        cached = cached if isinstance(cached, Mapping) else {}
        totals = cls(
            input_text=_int(inp.get("text_tokens")),
            input_audio=_int(inp.get("audio_tokens")),
            input_image=_int(inp.get("image_tokens")),
            cached_text=_int(cached.get("text_tokens")),
            cached_audio=_int(cached.get("audio_tokens")),
            cached_image=_int(cached.get("image_tokens")),
            output_text=_int(out.get("text_tokens")),
            output_audio=_int(out.get("audio_tokens")),
            responses=1,
        )
        # Some servers give totals without a breakdown: count those as text.
        if not (totals.input_text or totals.input_audio or totals.input_image):
            totals = _replace(totals, input_text=_int(usage.get("input_tokens")))
        if not (totals.output_text or totals.output_audio):
            totals = _replace(totals, output_text=_int(usage.get("output_tokens")))
        return totals

    @classmethod
    def from_response_done(cls, event: Mapping[str, Any]) -> UsageTotals:
        response = event.get("response") if isinstance(event, Mapping) else None
        if not isinstance(response, Mapping):
            return cls()
        return _replace(cls.from_usage(response.get("usage")), responses=1)  # a response even without usage

    def __add__(self, other: UsageTotals) -> UsageTotals:
        if not isinstance(other, UsageTotals):
            return NotImplemented
        return UsageTotals(
            *(getattr(self, f) + getattr(other, f) for f in self.__dataclass_fields__)  # type: ignore[arg-type]
        )

    @property
    def input_tokens(self) -> int:
        return self.input_text + self.input_audio + self.input_image

    @property
    def output_tokens(self) -> int:
        return self.output_text + self.output_audio

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def _replace(u: UsageTotals, **changes: int) -> UsageTotals:
    from dataclasses import replace

    return replace(u, **changes)


@dataclass(frozen=True)
class TurnMetrics:
    turn_id: str
    started_at: float  # the ``now`` given with the event that started the turn
    first_audio_ms: float | None  # None: the turn produced no audio (text mode, cancelled, ...)
    first_text_ms: float | None
    usage: UsageTotals = UsageTotals()
    trigger: str = "speech"  # "speech", "text" or "response" (a response nobody asked for)
    status: str = "completed"  # the last response's status: completed, cancelled, failed, incomplete


@dataclass
class _Turn:
    turn_id: str
    started_at: float
    trigger: str
    first_audio_ms: float | None = None
    first_text_ms: float | None = None
    usage: UsageTotals = field(default_factory=UsageTotals)
    responses: set[str] = field(default_factory=set)
    had_response: bool = False
    status: str = "completed"
    held_since: float | None = None  # response.done came, its audio has not started yet

    def freeze(self) -> TurnMetrics:
        return TurnMetrics(
            self.turn_id,
            self.started_at,
            self.first_audio_ms,
            self.first_text_ms,
            self.usage,
            self.trigger,
            self.status,
        )


def _is_user_text_item(event: Mapping[str, Any]) -> bool:
    item = event.get("item")
    if not isinstance(item, Mapping) or item.get("type") != "message" or item.get("role") != "user":
        return False
    return any(isinstance(p, Mapping) and p.get("type") == "input_text" for p in item.get("content") or ())


class TurnClock:
    """Feed every server event, and the client events the app sends, with the time they happened."""

    def __init__(self, audio_grace_s: float = AUDIO_GRACE_S) -> None:
        self._open: _Turn | None = None
        self._by_response: dict[str, _Turn] = {}
        self._held: dict[Any, _Turn] = {}  # response id -> turn waiting for its first audio
        self._seq = 0
        self._grace = float(audio_grace_s)
        self.usage = UsageTotals()  # every response.done of the conversation

    def tick(self, now: float) -> tuple[TurnMetrics, ...]:
        """Complete held turns whose audio did not start within the grace period."""
        late = [rid for rid, turn in self._held.items() if now - (turn.held_since or now) >= self._grace]
        return tuple(self._held.pop(rid).freeze() for rid in late)

    def _release_all(self) -> tuple[TurnMetrics, ...]:
        done = tuple(turn.freeze() for turn in self._held.values())
        self._held.clear()
        return done

    def _start(self, now: float, trigger: str) -> tuple[TurnMetrics, ...]:
        done = self._release_all()
        cur = self._open
        if cur is not None and not cur.had_response:
            # The user went on before any response: measure from the latest end of input.
            cur.started_at = now
            cur.trigger = trigger
            return done
        if cur is not None and not cur.responses:
            done += (cur.freeze(),)  # a tool turn whose follow-up never came
        # A turn with responses in flight completes at their response.done.
        self._seq += 1
        self._open = _Turn(f"turn_{self._seq}", now, trigger)
        return done

    def feed(self, event: Mapping[str, Any], now: float) -> tuple[TurnMetrics, ...]:
        """Returns the turns completed by this event (usually none, sometimes one)."""
        expired = self.tick(now) if self._held else ()
        return expired + self._feed(event, now)

    def _feed(self, event: Mapping[str, Any], now: float) -> tuple[TurnMetrics, ...]:
        if not isinstance(event, Mapping):
            return ()
        t = event.get("type")
        if t == "input_audio_buffer.speech_stopped":
            return self._start(now, "speech")
        if t == "conversation.item.create" and _is_user_text_item(event):
            return self._start(now, "text")
        if t == "response.created":
            rid = (event.get("response") or {}).get("id")
            done: tuple[TurnMetrics, ...] = ()
            if self._open is None:
                done = self._release_all()
                self._seq += 1
                self._open = _Turn(f"turn_{self._seq}", now, "response")
            if isinstance(rid, str):
                self._open.responses.add(rid)
                self._by_response[rid] = self._open
            self._open.had_response = True
            return done
        if t in _AUDIO_START or t in _TEXT_START:
            rid = event.get("response_id")
            held = self._held.get(rid) or (next(iter(self._held.values())) if rid is None and self._held else None)
            turn = held or self._by_response.get(rid) or self._open
            if turn is None:
                return ()
            ms = max((now - turn.started_at) * 1000.0, 0.0)
            if t in _TEXT_START and turn.first_text_ms is None:
                turn.first_text_ms = ms
            if t in _AUDIO_START and turn.first_audio_ms is None:
                turn.first_audio_ms = ms
                if held is not None:
                    self._held = {k: v for k, v in self._held.items() if v is not held}
                    return (held.freeze(),)
            return ()
        if t in _AUDIO_END:
            held = self._held.pop(event.get("response_id"), None)
            return (held.freeze(),) if held is not None else ()
        if t == "response.done":
            return self._response_done(event, now)
        return ()

    def _response_done(self, event: Mapping[str, Any], now: float) -> tuple[TurnMetrics, ...]:
        response = event.get("response")
        if not isinstance(response, Mapping):
            return ()
        usage = UsageTotals.from_response_done(event)
        self.usage = self.usage + usage
        rid = response.get("id")
        turn = self._by_response.pop(rid, None) if isinstance(rid, str) else None
        if turn is None:
            turn = self._open
        if turn is None:
            return ()
        turn.usage = turn.usage + usage
        turn.responses.discard(rid)  # type: ignore[arg-type]
        status = str(response.get("status") or "completed")
        turn.status = status
        output = [i for i in response.get("output") or () if isinstance(i, Mapping)]
        only_calls = bool(output) and all(i.get("type") == "function_call" for i in output)
        if only_calls and status == "completed" and turn is self._open:
            return ()  # the follow-up response after the tool output belongs to this turn
        if turn.responses:
            return ()
        if turn is self._open:
            self._open = None
        if turn.first_audio_ms is None and _has_audio(response):
            turn.held_since = now  # its playback has not started yet: complete at the first audio
            self._held[rid] = turn
            return ()
        return (turn.freeze(),)
