"""The calls other clients placed through the studio's API, live and recent, for the whole process.

The API routes add each call here; the Events, Diagnostics and Vision pages list them beside the tab's
own call. Ended calls stay listed (the newest ``KEEP_ENDED``) so a page can still show what happened.
Thread-safe: the routes run on the server's event loop, the pages on script threads.
"""

from __future__ import annotations

import threading

from realtime.sideband_call import SidebandCall

__all__ = ["KEEP_ENDED", "ExternalCalls", "external_calls"]

KEEP_ENDED = 20


class ExternalCalls:
    def __init__(self, keep_ended: int = KEEP_ENDED) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, SidebandCall] = {}
        self._keep_ended = keep_ended

    def add(self, call: SidebandCall) -> None:
        with self._lock:
            self._calls[call.call_id] = call
            ended = [c for c in self._calls.values() if not c.live]
            for old in ended[: max(0, len(ended) - self._keep_ended)]:
                del self._calls[old.call_id]

    def get(self, call_id: str) -> SidebandCall | None:
        with self._lock:
            return self._calls.get(call_id)

    def all(self) -> tuple[SidebandCall, ...]:
        """Newest first."""
        with self._lock:
            return tuple(sorted(self._calls.values(), key=lambda c: c.started_at, reverse=True))

    def live(self) -> tuple[SidebandCall, ...]:
        return tuple(c for c in self.all() if c.live)


_registry = ExternalCalls()


def external_calls() -> ExternalCalls:
    """The process's registry."""
    return _registry
