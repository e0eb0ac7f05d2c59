"""What a Bridge tells its listeners: typed updates, told apart with ``isinstance``.

A listener is called on the bridge loop with each ``TranscriptItem`` when it becomes final, each
``TurnMetrics`` when a turn completes, and one ``CallEnded`` when the call is over. It must be
cheap (put the update on a queue) and do its own IO on its own thread.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from realtime.metrics import TurnMetrics
from realtime.transcript import TranscriptItem

__all__ = ["BridgeUpdate", "CallEnded", "Listener"]


@dataclass(frozen=True)
class CallEnded:
    """The call is over: hung up or closed (``closed``), or ended by an error (``failed``).
    The last update a listener gets from a bridge."""

    state: Literal["closed", "failed"]
    error: str | None = None  # the error's message for a failed call


BridgeUpdate = TranscriptItem | TurnMetrics | CallEnded
Listener = Callable[[BridgeUpdate], None]
