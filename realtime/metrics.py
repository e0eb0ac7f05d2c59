"""Per-turn latency and token usage, as a sans-IO clock fed with typed events and times.

A turn starts when the user stops speaking (``Speech`` stopped) or sends a typed message (the app's
own ``ItemCreate`` of a user message with text), and is stamped with the first assistant audio
(``AudioDelta``, or ``AudioBuffer`` started on WebRTC where audio travels as media) and the first
assistant text (``OutputDelta``: output text or audio transcript). It completes at the
``ResponseDone`` of its last response: a response that only calls functions keeps the turn open for
the follow-up response. Usage of every response of the turn is summed. Times are passed in (``now``,
seconds, monotonic); nothing reads a clock.

A spoken turn completes at its first audio. Over WebRTC the audio is media, and its playback start
usually arrives *after* the response is done (the reply is generated faster than it plays), so when
a response whose output holds audio is done before any audio was seen, its turn is held until the
first of: its playback starts (first audio is stamped), its audio buffer is stopped or cleared
without starting, the next turn starts, or ``audio_grace_s`` passes (checked on every ``feed`` and
on ``tick(now)``); in the last three cases it completes with no first audio.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from realtime.events import (
    AudioBuffer,
    AudioDelta,
    ItemCreate,
    OutputDelta,
    ResponseCreated,
    ResponseDone,
    ServerEvent,
    Speech,
)
from realtime.usage import UsageTotals

__all__ = ["AUDIO_GRACE_S", "ClockEvent", "TurnClock", "TurnMetrics", "UsageTotals"]

AUDIO_GRACE_S = 2.0

ClockEvent = ServerEvent | ItemCreate


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
    held_since: float | None = None  # its response is done, its audio has not started yet

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


class TurnClock:
    """Feed every server event, and the client events the app sends, with the time they happened."""

    def __init__(self, audio_grace_s: float = AUDIO_GRACE_S) -> None:
        self._open: _Turn | None = None
        self._by_response: dict[str, _Turn] = {}
        self._held: dict[str | None, _Turn] = {}  # response id -> turn waiting for its first audio
        self._seq = 0
        self._grace = float(audio_grace_s)
        self.usage = UsageTotals()  # every response of the conversation, once done

    def tick(self, now: float) -> tuple[TurnMetrics, ...]:
        """Complete held turns whose audio did not start within the grace period."""
        late = [rid for rid, turn in self._held.items() if now - (turn.held_since or now) >= self._grace]
        return tuple(self._held.pop(rid).freeze() for rid in late)

    def cut(self) -> tuple[TurnMetrics, ...]:
        """The call was lost: turns waiting for a response or its audio end here (status ``reconnect``);
        a turn whose response never came does not wait for the new call's."""
        done: list[TurnMetrics] = []
        turns = [*self._held.values(), *self._by_response.values()]
        if self._open is not None and self._open.had_response:
            turns.append(self._open)
            self._open = None
        seen: set[int] = set()
        for turn in turns:
            if id(turn) in seen:  # a turn with two responses in flight ends once
                continue
            seen.add(id(turn))
            turn.status = "reconnect"
            done.append(turn.freeze())
        self._held.clear()
        self._by_response.clear()
        return tuple(done)

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
        # A turn with responses in flight completes when they are done.
        self._seq += 1
        self._open = _Turn(f"turn_{self._seq}", now, trigger)
        return done

    def feed(self, event: ClockEvent, now: float) -> tuple[TurnMetrics, ...]:
        """Returns the turns completed by this event (usually none, sometimes one)."""
        expired = self.tick(now) if self._held else ()
        return expired + self._feed(event, now)

    def _feed(self, event: ClockEvent, now: float) -> tuple[TurnMetrics, ...]:
        if isinstance(event, Speech):
            return self._start(now, "speech") if event.phase == "stopped" else ()
        if isinstance(event, ItemCreate):
            item = event.item
            if item.type == "message" and item.role == "user" and item.has_text:
                return self._start(now, "text")
            return ()
        if isinstance(event, ResponseCreated):
            return self._response_created(event.response_id, now)
        if isinstance(event, AudioDelta) or (isinstance(event, AudioBuffer) and event.phase == "started"):
            return self._first_output(event.response_id, now, audio=True)
        if isinstance(event, OutputDelta):
            return self._first_output(event.response_id, now, audio=False)
        if isinstance(event, AudioBuffer):  # stopped or cleared
            held = self._held.pop(event.response_id, None)
            return (held.freeze(),) if held is not None else ()
        if isinstance(event, ResponseDone):
            return self._response_done(event, now)
        return ()

    def _response_created(self, rid: str | None, now: float) -> tuple[TurnMetrics, ...]:
        done: tuple[TurnMetrics, ...] = ()
        if self._open is None:
            done = self._release_all()
            self._seq += 1
            self._open = _Turn(f"turn_{self._seq}", now, "response")
        if rid is not None:
            self._open.responses.add(rid)
            self._by_response[rid] = self._open
        self._open.had_response = True
        return done

    def _first_output(self, rid: str | None, now: float, *, audio: bool) -> tuple[TurnMetrics, ...]:
        held = self._held.get(rid) or (next(iter(self._held.values())) if rid is None and self._held else None)
        turn = held or (self._by_response.get(rid) if rid is not None else None) or self._open
        if turn is None:
            return ()
        ms = max((now - turn.started_at) * 1000.0, 0.0)
        if not audio:
            if turn.first_text_ms is None:
                turn.first_text_ms = ms
            return ()
        if turn.first_audio_ms is None:
            turn.first_audio_ms = ms
            if held is not None:
                self._held = {k: v for k, v in self._held.items() if v is not held}
                return (held.freeze(),)
        return ()

    def _response_done(self, event: ResponseDone, now: float) -> tuple[TurnMetrics, ...]:
        response = event.response
        usage = response.usage
        self.usage = self.usage + usage
        rid = response.id
        turn = self._by_response.pop(rid, None) if rid is not None else None
        if turn is None:
            turn = self._open
        if turn is None:
            return ()
        turn.usage = turn.usage + usage
        if rid is not None:
            turn.responses.discard(rid)
        status = response.status or "completed"
        turn.status = status
        only_calls = bool(response.output) and all(i.type == "function_call" for i in response.output)
        if only_calls and status == "completed" and turn is self._open:
            return ()  # the follow-up response after the tool output belongs to this turn
        if turn.responses:
            return ()
        if turn is self._open:
            self._open = None
        if turn.first_audio_ms is None and response.has_audio:
            turn.held_since = now  # its playback has not started yet: complete at the first audio
            self._held[rid] = turn
            return ()
        return (turn.freeze(),)
