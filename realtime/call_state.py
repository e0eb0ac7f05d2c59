"""The state of one call as a sans-IO fold: ``transition(state, signal) -> (state, effects)``.

A signal is either a provider event as ``realtime.events`` read it, or something the bridge's IO
edge saw (the call was created, the data channel opened, the peer failed, the user asked to
close...). The fold decides what the call is (idle -> connecting -> connected -> closed / failed),
what it is doing (listening, the user or the assistant speaking), what is pending (a response in
flight, tool calls started) and which effects the edge must run. It reads no clock and touches no
socket; ``Bridge`` runs it and carries out the effects.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from realtime.errors import BridgeError, describe_error
from realtime.events import (
    AudioBuffer,
    FunctionArgsDone,
    ItemDeleted,
    OutputDelta,
    ProviderError,
    ResponseCreated,
    ResponseDone,
    ServerEvent,
    Speech,
)
from realtime.updates import CallEnded

__all__ = [
    "Act",
    "Activity",
    "CallCreated",
    "CallState",
    "Effect",
    "Failure",
    "ForgetImage",
    "Lifecycle",
    "Note",
    "Reconnect",
    "ReconnectPolicy",
    "Restore",
    "RunTool",
    "Signal",
    "State",
    "TellEnded",
    "transition",
]

State = Literal["idle", "connecting", "connected", "reconnecting", "paused", "closed", "failed"]
Activity = Literal["idle", "listening", "user_speaking", "assistant_speaking"]


@dataclass(frozen=True)
class CallState:
    state: State = "idle"
    activity: Activity = "idle"
    error: BridgeError | None = None  # the latest error (fatal when ``state`` is failed)
    call_id: str | None = None
    closing: bool = False  # a close was asked for: nothing more is sent
    channel_open: bool = False  # the data channel is open: events go out at once, else they wait
    response_active: bool = False  # a response is in flight (Interrupt cancels it)
    audio_started: bool = False  # the assistant has spoken: its voice is fixed for this call
    tools_started: frozenset[str] = frozenset()  # call ids whose tool already runs (each runs once)
    ended_told: bool = False  # listeners were told CallEnded
    connected_once: bool = False  # a call was up: losing it now means reconnecting, not failing
    reconnectable: bool = False  # failed after reconnect attempts ran out: Reconnect may be pressed
    attempt: int = 0  # reconnect attempts in the current outage
    lost_at: float | None = None  # when the current outage (or pause) began
    lost_reason: str = ""  # why: shown while reconnecting, kept for the restore note
    attempt_times: tuple[float, ...] = ()  # when recent attempts started (the per-minute bound)
    reconnects: int = 0  # calls replaced after a loss, a pause or a rollover

    @property
    def accepts_sends(self) -> bool:
        """Whether an event may still go out (now, or once the channel of this or the next call opens)."""
        if self.closing:
            return False
        return self.state not in ("closed", "failed") or self.reconnectable

    @property
    def over(self) -> bool:
        return self.state in ("closed", "failed")


# ------------------------------------------------------------------- signals from the IO edge

LifecycleKind = Literal[
    "connect",
    "channel_opened",
    "channel_closed",
    "peer_closed",
    "close_requested",
    "closed",
    "reconnect",
    "pause",
    "rolled_over",
]
FailureSource = Literal["setup", "peer", "deadline"]


@dataclass(frozen=True)
class Lifecycle:
    """What the IO edge saw happen to the call: ``connect`` (``start()``), the data channel opened
    or closed, the peer closed, a close was asked for, ``closed`` (peer closed and call hung up);
    ``reconnect`` (the user pressed Reconnect or Resume, or spoke or typed while paused), ``pause``
    (idle for long: hang up until then), ``rolled_over`` (the edge switched to a fresh, restored call).
    ``at`` is the edge's monotonic clock when it happened."""

    kind: LifecycleKind
    at: float = 0.0


@dataclass(frozen=True)
class CallCreated:
    call_id: str | None  # from the ``Location`` header of ``calls.create``


@dataclass(frozen=True)
class Failure:
    """Something ended the call with an error. ``setup``: connecting failed (bad key, provider
    down...); ``peer``: the media connection failed (ignored once a close was asked for);
    ``deadline``: the connect deadline passed (ignored unless still connecting)."""

    error: BridgeError
    source: FailureSource
    at: float = 0.0


Signal = Lifecycle | CallCreated | Failure | ServerEvent


# -------------------------------------------------------------------------- effects for the edge

ActionKind = Literal["clear_voice", "flush_pending", "close_soon", "drop_call"]


@dataclass(frozen=True)
class Act:
    """``clear_voice``: drop the assistant's queued voice (barge-in); ``flush_pending``: send what
    was queued while the channel was not open; ``close_soon``: hang up and close; ``drop_call``:
    hang up the upstream call but keep the conversation (a pause)."""

    kind: ActionKind


@dataclass(frozen=True)
class ReconnectPolicy:
    """How hard to try: the first attempt at once, then ``base_delay_s`` doubling up to
    ``max_delay_s``; ``max_attempts`` per outage; never more than ``per_minute`` attempts in any
    60 s (a call that keeps dropping right after it connects waits instead of hammering)."""

    max_attempts: int = 8
    base_delay_s: float = 0.5
    max_delay_s: float = 5.0
    per_minute: int = 20

    def delay(self, attempt: int, recent: tuple[float, ...], now: float) -> float:
        """Seconds to wait before ``attempt`` (1-based), given when the recent attempts started."""
        backoff = 0.0 if attempt <= 1 else min(self.base_delay_s * 2 ** (attempt - 2), self.max_delay_s)
        window = sorted(t for t in recent if now - t < 60.0)
        if self.per_minute > 0 and len(window) >= self.per_minute:
            backoff = max(backoff, window[len(window) - self.per_minute] + 60.0 - now)
        return backoff


DEFAULT_POLICY = ReconnectPolicy()


@dataclass(frozen=True)
class Reconnect:
    """Hang up the current upstream call (if any) and open a new one after ``delay_s`` seconds."""

    attempt: int
    delay_s: float


@dataclass(frozen=True)
class Restore:
    """The new call is up: restore the conversation into it before anything queued goes out.
    ``kind`` says why it replaced the last one; ``took_s`` runs from the loss (or the resume)."""

    kind: Literal["reconnect", "resume"]
    reason: str
    took_s: float
    attempts: int


@dataclass(frozen=True)
class Note:
    """A line for the transcript (the page shows what happens to the call)."""

    text: str
    role: Literal["system", "error"] = "system"


@dataclass(frozen=True)
class RunTool:
    """Run the tool ``name``; its output goes back to the model as the answer to ``call_id``."""

    call_id: str
    name: str
    arguments: str | None


@dataclass(frozen=True)
class ForgetImage:
    """An image item left the conversation: it no longer counts against the image window."""

    item_id: str


@dataclass(frozen=True)
class TellEnded:
    ended: CallEnded


Effect = Act | RunTool | ForgetImage | TellEnded | Reconnect | Restore | Note
Step = tuple[CallState, tuple[Effect, ...]]

# --------------------------------------------------------------------------------- transitions


def _replace(s: CallState, **changes: Any) -> CallState:
    return dataclasses.replace(s, **changes)


# Error kinds a new call would hit again at once: reconnecting is pointless, say so instead.
_FATAL_KINDS = frozenset({"auth", "model", "config"})
RESUMED = "resumed"  # the reason of a reconnect that resumes a paused call
PAUSE_NOTE = "Paused to save cost \u2014 speak, type or press Resume."


def _lost_reason(s: CallState, default: str) -> str:
    """Why the call ended: the provider's own words when it said (its session cap), else ``default``."""
    if s.error is not None and s.error.code == "session_expired":
        return s.error.message
    return default


def _lose(s: CallState, reason: str, at: float, policy: ReconnectPolicy) -> Step:
    """The upstream call ended without the user asking: begin an outage and its first attempt."""
    s = _replace(s, lost_at=at, attempt=0, lost_reason=reason)
    return _next_attempt(s, at, policy, (Note(f"Connection lost \u2014 reconnecting\u2026 ({reason})"),))


def _next_attempt(
    s: CallState, at: float, policy: ReconnectPolicy, effects: tuple[Effect, ...] = (), fatal: BridgeError | None = None
) -> Step:
    down = dict(activity="idle", channel_open=False, response_active=False, audio_started=False, call_id=None)
    if fatal is not None or s.attempt >= policy.max_attempts:
        why = fatal.message if fatal is not None else s.lost_reason
        error = BridgeError(
            fatal.kind if fatal is not None else "connection",
            f"Could not reconnect: {why}",
            fatal.status if fatal is not None else None,
            fatal.code if fatal is not None else None,
        )
        failed = _replace(s, state="failed", error=error, reconnectable=True, **down)
        return failed, (*effects, Note(error.message, "error"))
    attempt = s.attempt + 1
    recent = tuple(t for t in s.attempt_times if at - t < 60.0)
    delay = policy.delay(attempt, recent, at)
    s = _replace(s, state="reconnecting", attempt=attempt, attempt_times=(*recent, at + delay), **down)
    return s, (*effects, Reconnect(attempt, delay))


def _lifecycle(s: CallState, sig: Lifecycle, _: tuple[str, ...], policy: ReconnectPolicy) -> Step:
    kind = sig.kind
    if kind == "connect":
        return (_replace(s, state="connecting") if s.state == "idle" else s), ()
    if kind == "channel_opened":
        if s.state == "connecting":
            s = _replace(s, state="connected", activity="listening", connected_once=True)
        elif s.state == "reconnecting":
            resumed = s.lost_reason == RESUMED
            restore = Restore(
                "resume" if resumed else "reconnect",
                s.lost_reason,
                max(sig.at - (s.lost_at if s.lost_at is not None else sig.at), 0.0),
                s.attempt,
            )
            s = _replace(s, state="connected", activity="listening", error=None, attempt=0, reconnects=s.reconnects + 1)
            return _replace(s, channel_open=True), (restore, Act("flush_pending"))
        return _replace(s, channel_open=True), (Act("flush_pending"),)
    if kind in ("channel_closed", "peer_closed"):
        if not s.closing and s.state in ("connected", "reconnecting") and s.connected_once:
            if s.state == "reconnecting":  # the attempt's call ended before it was up
                return _next_attempt(s, sig.at, policy)
            return _lose(s, _lost_reason(s, "the realtime server ended the call"), sig.at, policy)
        if kind == "channel_closed":
            s = _replace(s, channel_open=False)
            return (_replace(s, state="closed") if not s.closing and s.state == "connected" else s), ()
        return (s if s.closing or s.state in ("failed", "paused") else _replace(s, state="closed")), ()
    if kind == "close_requested":
        return _replace(s, closing=True), ()
    if kind == "reconnect":
        if s.closing or not (s.state == "paused" or (s.state == "failed" and s.reconnectable)):
            return s, ()
        reason = RESUMED if s.state == "paused" else "Reconnect pressed"
        s = _replace(s, lost_at=sig.at, attempt=0, lost_reason=reason, reconnectable=False, error=None)
        return _next_attempt(s, sig.at, policy)
    if kind == "pause":
        if s.closing or s.state != "connected":
            return s, ()
        paused = _replace(
            s, state="paused", activity="idle", channel_open=False, response_active=False, audio_started=False
        )
        return _replace(paused, call_id=None), (Act("drop_call"), Note(PAUSE_NOTE))
    if kind == "rolled_over":
        if s.state != "connected":
            return s, ()
        return _replace(s, response_active=False, audio_started=False, reconnects=s.reconnects + 1), ()
    # closed: the peer is closed and the call hung up
    return _replace(s, state="failed" if s.state == "failed" else "closed", activity="idle", channel_open=False), ()


def _call_created(s: CallState, sig: CallCreated, _: tuple[str, ...], __: ReconnectPolicy) -> Step:
    return _replace(s, call_id=sig.call_id), ()


def _failure(s: CallState, sig: Failure, _: tuple[str, ...], policy: ReconnectPolicy) -> Step:
    if s.closing:  # only a connect that failed outright still says why
        return (_replace(s, state="failed", activity="idle", error=sig.error) if sig.source == "setup" else s), ()
    if s.state == "reconnecting":  # this attempt failed: the next one, or give up
        fatal = sig.error if sig.error.kind in _FATAL_KINDS else None
        s = _replace(s, lost_reason=sig.error.message)
        return _next_attempt(s, sig.at, policy, fatal=fatal)
    if sig.source == "peer" and s.state == "connected" and s.connected_once:
        return _lose(s, sig.error.message, sig.at, policy)
    if sig.source == "deadline" and s.state != "connecting":
        return s, ()
    failed = _replace(s, state="failed", activity="idle", error=sig.error)
    return failed, ((Act("close_soon"),) if sig.source == "deadline" else ())


def _speech(s: CallState, ev: Speech, _: tuple[str, ...], _policy: ReconnectPolicy) -> Step:
    if ev.phase == "started":  # the user talks, maybe over the assistant: drop its queued voice
        return _replace(s, activity="user_speaking"), (Act("clear_voice"),)
    return _replace(s, activity="listening"), ()


def _response_created(s: CallState, _: ResponseCreated, __: tuple[str, ...], _policy: ReconnectPolicy) -> Step:
    return _replace(s, response_active=True), ()


def _audio_buffer(s: CallState, ev: AudioBuffer, _: tuple[str, ...], _policy: ReconnectPolicy) -> Step:
    if ev.phase == "started":
        return _replace(s, audio_started=True, activity="assistant_speaking"), ()
    return _replace(s, activity="listening"), ()


def _output_delta(s: CallState, ev: OutputDelta, _: tuple[str, ...], _policy: ReconnectPolicy) -> Step:
    return (_replace(s, audio_started=True) if ev.kind == "audio" else s), ()


def _start_tools(s: CallState, calls: Iterable[tuple[str | None, str | None, str | None]]) -> Step:
    effects: list[Effect] = []
    started = set(s.tools_started)
    for call_id, name, arguments in calls:
        if call_id is None or name is None or call_id in started:
            continue
        started.add(call_id)
        effects.append(RunTool(call_id, name, arguments))
    return _replace(s, tools_started=frozenset(started)), tuple(effects)


def _function_args_done(s: CallState, ev: FunctionArgsDone, _: tuple[str, ...], _policy: ReconnectPolicy) -> Step:
    return _start_tools(s, [(ev.call_id, ev.name, ev.arguments)])


def _response_done(s: CallState, ev: ResponseDone, secrets: tuple[str, ...], _policy: ReconnectPolicy) -> Step:
    response = ev.response
    s, effects = _start_tools(
        _replace(s, response_active=False), [(i.call_id, i.name, i.arguments) for i in response.function_calls]
    )
    if response.status == "failed" and response.error is not None:
        s = _replace(s, error=describe_error(response.error, secrets=secrets))
    return s, effects


def _item_deleted(s: CallState, ev: ItemDeleted, _: tuple[str, ...], _policy: ReconnectPolicy) -> Step:
    return s, (ForgetImage(ev.item_id),)


def _provider_error(s: CallState, ev: ProviderError, secrets: tuple[str, ...], _policy: ReconnectPolicy) -> Step:
    return _replace(s, error=describe_error(ev.error, secrets=secrets)), ()


_TRANSITIONS: dict[type[Any], Callable[[CallState, Any, tuple[str, ...], ReconnectPolicy], Step]] = {
    Lifecycle: _lifecycle,
    CallCreated: _call_created,
    Failure: _failure,
    Speech: _speech,
    ResponseCreated: _response_created,
    AudioBuffer: _audio_buffer,
    OutputDelta: _output_delta,
    FunctionArgsDone: _function_args_done,
    ResponseDone: _response_done,
    ItemDeleted: _item_deleted,
    ProviderError: _provider_error,
}


def transition(
    state: CallState, signal: Signal, *, secrets: tuple[str, ...] = (), policy: ReconnectPolicy = DEFAULT_POLICY
) -> Step:
    """The one transition function. ``secrets`` are redacted from provider error messages."""
    step = _TRANSITIONS.get(type(signal))
    if step is None:
        return state, ()
    new, effects = step(state, signal, secrets, policy)
    # a call that could not reconnect waits for Reconnect or Stop: it ends when the user closes it
    if new.over and not new.ended_told and (new.closing or not new.reconnectable):
        error = new.error.message if new.state == "failed" and new.error is not None else None
        ended = CallEnded("failed" if new.state == "failed" else "closed", error)
        new, effects = _replace(new, ended_told=True), (*effects, TellEnded(ended))
    return new, effects
