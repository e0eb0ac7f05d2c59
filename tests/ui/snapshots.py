"""Snapshots of a call in each state, as the pages get them from `Bridge.snapshot()`."""

from __future__ import annotations

from typing import Any

from realtime.bridge import BridgeSnapshot, RtcStats
from realtime.errors import BridgeError
from realtime.metrics import UsageTotals
from realtime.updates import CallReplaced

GAVE_UP = BridgeError("connection", "Could not reconnect: the realtime server ended the call")


def snapshot(state: Any = "connected", **fields: Any) -> BridgeSnapshot:
    activity = fields.pop("activity", "listening" if state == "connected" else "idle")
    return BridgeSnapshot(
        state, activity, fields.pop("error", None), (), (), UsageTotals(), 0.0, RtcStats(), "rtc_1", **fields
    )


def replaced(kind: Any = "reconnect", *, at: float, took_s: float = 1.4, **fields: Any) -> CallReplaced:
    values: dict[str, Any] = {"reason": "the realtime server ended the call", "attempts": 1, "restored": 12, "cut": 0}
    return CallReplaced(kind, took_s=took_s, at=at, **{**values, **fields})


def reconnecting(attempt: int = 2, max_attempts: int = 8, reason: str = "the realtime server ended the call"):
    return snapshot("reconnecting", attempt=attempt, max_attempts=max_attempts, lost_reason=reason)


def gave_up() -> BridgeSnapshot:
    return snapshot("failed", error=GAVE_UP, reconnectable=True)
