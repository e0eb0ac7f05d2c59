"""A bounded, thread-safe ring buffer of the client and server events of one conversation.

Payloads are stored already elided: base64 blobs (audio deltas, image data URLs, any long base64
run) become a short marker such as ``<base64 audio: 12,345 chars>``, and very long strings are cut,
so memory stays bounded (``maxlen`` events, each of bounded size) whatever the provider sends.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

__all__ = ["EventLog", "LoggedEvent", "elide"]

# agent: what the scenario's agents did (handoffs...); local: what the bridge itself noticed (the
# audio degrading under load, a hang-up that failed), with types under "local."
Direction = Literal["client", "server", "agent", "local"]

MAX_STRING_CHARS = 8192  # longer strings (instructions, transcripts) are cut to this
MAX_TYPES = 500  # distinct event types remembered for ``types()`` (bounded against a noisy peer)
_BASE64_MIN_CHARS = 200
_BASE64_RUN = re.compile(r"^[A-Za-z0-9+/=\s]+$")
_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?(;[\w=.+-]+)*;base64,", re.IGNORECASE)
_AUDIO_KEYS = frozenset({"audio", "delta"})  # keys holding base64 audio in audio events


@dataclass(frozen=True)
class LoggedEvent:
    seq: int
    time: float  # wall clock, seconds since the epoch
    direction: Direction
    type: str
    size_bytes: int  # size of the event as JSON (or as given by the caller)
    payload: Mapping[str, Any]  # elided copy; treat as read-only

    @property
    def size(self) -> int:
        return self.size_bytes


def _elide_string(s: str, key: str | None, audio_event: bool) -> str:
    m = _DATA_URL.match(s)
    if m:
        mime = m.group(1) or "data"
        return f"{s[: m.end()]}<base64 {mime}: {len(s) - m.end():,} chars>"
    if audio_event and key in _AUDIO_KEYS and len(s) > 16:
        return f"<base64 audio: {len(s):,} chars>"
    if len(s) >= _BASE64_MIN_CHARS and " " not in s[:200] and _BASE64_RUN.match(s):
        return f"<base64: {len(s):,} chars>"
    if len(s) > MAX_STRING_CHARS:
        return s[:MAX_STRING_CHARS] + f"… (+{len(s) - MAX_STRING_CHARS:,} chars)"
    return s


def elide(value: Any, *, audio_event: bool = False, _key: str | None = None, _depth: int = 0) -> Any:
    """A deep copy of a JSON-like value with base64 blobs replaced by short markers."""
    if _depth > 32:
        return "<nested too deep>"
    if isinstance(value, str):
        return _elide_string(value, _key, audio_event)
    if isinstance(value, Mapping):
        return {str(k): elide(v, audio_event=audio_event, _key=str(k), _depth=_depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [elide(v, audio_event=audio_event, _key=_key, _depth=_depth + 1) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return repr(value)[:200]


def _is_audio_event(event_type: str) -> bool:
    """Events whose ``delta``/``audio`` field is base64 audio (not a transcript)."""
    if "transcript" in event_type or "audio" not in event_type:
        return False
    return event_type.endswith((".delta", ".append"))


class EventLog:
    """``record()`` from any thread; ``snapshot()`` / ``types()`` from any other."""

    def __init__(self, maxlen: int = 2000):
        if maxlen < 1:
            raise ValueError("EventLog maxlen must be at least 1")
        self.maxlen = maxlen
        self._events: deque[LoggedEvent] = deque(maxlen=maxlen)
        self._types: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._seq = 0

    def record(
        self, direction: Direction, event: Mapping[str, Any] | str | bytes, *, size_bytes: int | None = None
    ) -> LoggedEvent:
        """Log one event (a dict, or the raw JSON text as sent/received). Never raises on bad input:
        a raw message that is not a JSON object is logged as type ``"(invalid)"``."""
        if direction not in get_args(Direction):
            raise ValueError(f"direction must be one of {', '.join(get_args(Direction))}, not {direction!r}")
        if isinstance(event, (str, bytes, bytearray)):
            raw = event
            if size_bytes is None:
                size_bytes = len(raw.encode() if isinstance(raw, str) else raw)
            try:
                decoded: Any = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                decoded = None
            if isinstance(decoded, Mapping):
                event = decoded
            else:
                text = raw if isinstance(raw, str) else bytes(raw).decode("utf-8", "replace")
                event = {"type": "(invalid)", "raw": text}
        event_type = event.get("type")
        event_type = event_type if isinstance(event_type, str) and event_type else "(no type)"
        if size_bytes is None:
            try:
                size_bytes = len(json.dumps(event, separators=(",", ":"), default=str).encode())
            except (TypeError, ValueError):
                size_bytes = 0
        payload = elide(event, audio_event=_is_audio_event(event_type))
        with self._lock:
            self._seq += 1
            logged = LoggedEvent(self._seq, time.time(), direction, event_type, size_bytes, payload)
            self._events.append(logged)
            if event_type in self._types or len(self._types) < MAX_TYPES:
                self._types[event_type] += 1
        return logged

    def snapshot(self, since_seq: int = 0) -> tuple[LoggedEvent, ...]:
        """Events currently held, oldest first; only those with ``seq > since_seq`` if given."""
        with self._lock:
            if since_seq <= 0:
                return tuple(self._events)
            return tuple(e for e in self._events if e.seq > since_seq)

    def types(self) -> tuple[str, ...]:
        """Every event type seen so far (also those already evicted), sorted."""
        with self._lock:
            return tuple(sorted(self._types))

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._types)

    @property
    def last_seq(self) -> int:
        with self._lock:
            return self._seq

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)

    def clear(self) -> None:
        with self._lock:
            self._events.clear()
            self._types.clear()
