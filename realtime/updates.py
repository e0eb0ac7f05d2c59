"""What a Bridge tells its listeners: typed updates, told apart with ``isinstance``.

A listener is called on the bridge loop with each ``TranscriptItem`` when it becomes final, each
``TurnMetrics`` when a turn completes, a ``VoiceClip`` of either side's voice when History keeps it,
a ``CallReplaced`` when a new upstream call took over the conversation, and one ``CallEnded`` when
the conversation is over. It must be cheap (put the update on a queue) and do its own IO on its own thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from realtime.audio_tape import VoiceClip
from realtime.metrics import TurnMetrics
from realtime.transcript import TranscriptItem

__all__ = ["BridgeUpdate", "CallEnded", "CallReplaced", "Listener", "ReplacedKind"]

ReplacedKind = Literal["reconnect", "rollover", "resume"]


@dataclass(frozen=True)
class CallEnded:
    """The call is over: hung up or closed (``closed``), or ended by an error (``failed``).
    The last update a listener gets from a bridge."""

    state: Literal["closed", "failed"]
    error: str | None = None  # the error's message for a failed call


@dataclass(frozen=True)
class CallReplaced:
    """The upstream call was replaced by a new one carrying the conversation: after a loss
    (``reconnect``), a pause (``resume``) or before the provider's session cap (``rollover``)."""

    kind: ReplacedKind
    reason: str  # why the old call ended ("the realtime server ended the call", "rollover at 55 min"...)
    took_s: float  # reconnect, resume: from the loss (or Resume) to the restored call; rollover: the switch
    attempts: int  # calls opened for it (1 when the first one worked)
    restored: int  # conversation items restored into the new call
    cut: int  # oldest items left out to fit the restore budget
    at: float  # wall-clock time (time.time()) when the new call took over
    call_id: str | None = None

    @property
    def note(self) -> str:
        """For the page: "Reconnected in 1.4 s — 12 items restored"."""
        said = f"{self.restored} item{'s' if self.restored != 1 else ''} restored"
        if self.cut:
            said += f", {self.cut} oldest left out"
        if self.kind == "rollover":
            return f"Moved to a fresh call in {self.took_s * 1000:.0f} ms \u2014 {said}"
        verb = "Resumed" if self.kind == "resume" else "Reconnected"
        return f"{verb} in {self.took_s:.1f} s \u2014 {said}"


BridgeUpdate = TranscriptItem | TurnMetrics | CallEnded | CallReplaced | VoiceClip
Listener = Callable[[BridgeUpdate], None]
