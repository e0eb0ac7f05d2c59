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
    "RunTool",
    "Signal",
    "State",
    "TellEnded",
    "transition",
]

State = Literal["idle", "connecting", "connected", "closed", "failed"]
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

    @property
    def accepts_sends(self) -> bool:
        """Whether an event may still go out (now, or once the channel opens)."""
        return not self.closing and self.state not in ("closed", "failed")

    @property
    def over(self) -> bool:
        return self.state in ("closed", "failed")


# ------------------------------------------------------------------- signals from the IO edge

LifecycleKind = Literal["connect", "channel_opened", "channel_closed", "peer_closed", "close_requested", "closed"]
FailureSource = Literal["setup", "peer", "deadline"]


@dataclass(frozen=True)
class Lifecycle:
    """What the IO edge saw happen to the call: ``connect`` (``start()``), the data channel opened
    or closed, the peer closed, a close was asked for, ``closed`` (peer closed and call hung up)."""

    kind: LifecycleKind


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


Signal = Lifecycle | CallCreated | Failure | ServerEvent


# -------------------------------------------------------------------------- effects for the edge

ActionKind = Literal["clear_voice", "flush_pending", "close_soon"]


@dataclass(frozen=True)
class Act:
    """``clear_voice``: drop the assistant's queued voice (barge-in); ``flush_pending``: send what
    was queued while the channel was not open; ``close_soon``: hang up and close."""

    kind: ActionKind


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


Effect = Act | RunTool | ForgetImage | TellEnded
Step = tuple[CallState, tuple[Effect, ...]]

# --------------------------------------------------------------------------------- transitions


def _replace(s: CallState, **changes: Any) -> CallState:
    return dataclasses.replace(s, **changes)


def _lifecycle(s: CallState, sig: Lifecycle, _: tuple[str, ...]) -> Step:
    kind = sig.kind
    if kind == "connect":
        return (_replace(s, state="connecting") if s.state == "idle" else s), ()
    if kind == "channel_opened":
        if s.state == "connecting":
            s = _replace(s, state="connected", activity="listening")
        return _replace(s, channel_open=True), (Act("flush_pending"),)
    if kind == "channel_closed":
        s = _replace(s, channel_open=False)
        return (_replace(s, state="closed") if not s.closing and s.state == "connected" else s), ()
    if kind == "peer_closed":
        return (s if s.closing or s.state == "failed" else _replace(s, state="closed")), ()
    if kind == "close_requested":
        return _replace(s, closing=True), ()
    # closed: the peer is closed and the call hung up
    return _replace(s, state="failed" if s.state == "failed" else "closed", activity="idle", channel_open=False), ()


def _call_created(s: CallState, sig: CallCreated, _: tuple[str, ...]) -> Step:
    return _replace(s, call_id=sig.call_id), ()


def _failure(s: CallState, sig: Failure, _: tuple[str, ...]) -> Step:
    if (sig.source == "peer" and s.closing) or (sig.source == "deadline" and s.state != "connecting"):
        return s, ()
    failed = _replace(s, state="failed", activity="idle", error=sig.error)
    return failed, ((Act("close_soon"),) if sig.source == "deadline" else ())


def _speech(s: CallState, ev: Speech, _: tuple[str, ...]) -> Step:
    if ev.phase == "started":  # the user talks, maybe over the assistant: drop its queued voice
        return _replace(s, activity="user_speaking"), (Act("clear_voice"),)
    return _replace(s, activity="listening"), ()


def _response_created(s: CallState, _: ResponseCreated, __: tuple[str, ...]) -> Step:
    return _replace(s, response_active=True), ()


def _audio_buffer(s: CallState, ev: AudioBuffer, _: tuple[str, ...]) -> Step:
    if ev.phase == "started":
        return _replace(s, audio_started=True, activity="assistant_speaking"), ()
    return _replace(s, activity="listening"), ()


def _output_delta(s: CallState, ev: OutputDelta, _: tuple[str, ...]) -> Step:
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


def _function_args_done(s: CallState, ev: FunctionArgsDone, _: tuple[str, ...]) -> Step:
    return _start_tools(s, [(ev.call_id, ev.name, ev.arguments)])


def _response_done(s: CallState, ev: ResponseDone, secrets: tuple[str, ...]) -> Step:
    response = ev.response
    s, effects = _start_tools(
        _replace(s, response_active=False), [(i.call_id, i.name, i.arguments) for i in response.function_calls]
    )
    if response.status == "failed" and response.error is not None:
        s = _replace(s, error=describe_error(response.error, secrets=secrets))
    return s, effects


def _item_deleted(s: CallState, ev: ItemDeleted, _: tuple[str, ...]) -> Step:
    return s, (ForgetImage(ev.item_id),)


def _provider_error(s: CallState, ev: ProviderError, secrets: tuple[str, ...]) -> Step:
    return _replace(s, error=describe_error(ev.error, secrets=secrets)), ()


_TRANSITIONS: dict[type[Any], Callable[[CallState, Any, tuple[str, ...]], Step]] = {
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


def transition(state: CallState, signal: Signal, *, secrets: tuple[str, ...] = ()) -> Step:
    """The one transition function. ``secrets`` are redacted from provider error messages."""
    step = _TRANSITIONS.get(type(signal))
    if step is None:
        return state, ()
    new, effects = step(state, signal, secrets)
    if new.over and not new.ended_told:
        error = new.error.message if new.state == "failed" and new.error is not None else None
        ended = CallEnded("failed" if new.state == "failed" else "closed", error)
        new, effects = _replace(new, ended_told=True), (*effects, TellEnded(ended))
    return new, effects
