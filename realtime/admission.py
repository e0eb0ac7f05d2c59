"""How many conversations one server process runs at once: the studio's own calls (a tab each) and
the calls other clients placed through the API. Past ``REALTIME_MAX_CONVERSATIONS`` the next Start
(or API call) is turned away with a sentence, instead of a call whose audio would break up for
everyone: on this 2-core machine four voice conversations are clean and eight are not.

The default is two per core (``os.cpu_count()``), at least one. Thread-safe: tabs start calls on
their script threads, the API on the server's loop.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Mapping
from typing import Protocol

__all__ = ["ENV_MAX", "Admission", "admission", "busy_message", "default_max", "max_from_env"]

log = logging.getLogger(__name__)

ENV_MAX = "REALTIME_MAX_CONVERSATIONS"
PER_CORE = 2


class _Call(Protocol):
    @property
    def running(self) -> bool: ...


def default_max(cores: int | None = None) -> int:
    return max(1, PER_CORE * (cores or os.cpu_count() or 1))


def max_from_env(env: Mapping[str, str] | None = None) -> int:
    """``REALTIME_MAX_CONVERSATIONS`` (a whole number, at least 1), else the default; a bad value
    raises ValueError naming the variable."""
    raw = (os.environ if env is None else env).get(ENV_MAX, "").strip()
    if not raw:
        return default_max()
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{ENV_MAX} must be a whole number of at least 1, not {raw!r}.")
    return value


def busy_message(running: int) -> str:
    noun = "conversation is" if running == 1 else "conversations are"
    return f"The studio is busy: {running} {noun} running on this server. Try again in a minute."


class Admission:
    """Counts the live calls (weakly: a call nobody holds no longer counts), the studio's and the
    API's alike, and admits a new one only below the limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._calls: weakref.WeakSet[_Call] = weakref.WeakSet()

    def _running_locked(self) -> int:
        return sum(1 for call in list(self._calls) if call.running)

    def running(self) -> int:
        with self._lock:
            return self._running_locked()

    def full(self) -> bool:
        return self.running() >= self.limit

    def admit(self, call: _Call, *, force: bool = False) -> str | None:
        """Count ``call`` and return None, or return why not (the busy message). ``force``: count
        it whatever the limit (a call the provider already placed)."""
        with self._lock:
            running = self._running_locked()
            if running >= self.limit and not force:
                return busy_message(running)
            self._calls.add(call)
        return None


_admission: Admission | None = None
_admission_lock = threading.Lock()


def admission() -> Admission:
    """The process's admission, with the limit read from the environment once."""
    global _admission
    with _admission_lock:
        if _admission is None:
            try:
                limit = max_from_env()
            except ValueError as exc:
                log.warning("%s; using %d", exc, default_max())
                limit = default_max()
            _admission = Admission(limit)
        return _admission
