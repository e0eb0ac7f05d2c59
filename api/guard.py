"""Who may use the studio's API, and how much: the token check and the per-token call limits (pure).

The routes hand out access to a paid API, so they are off unless ``REALTIME_API_TOKEN`` is set, and
every request must carry that token as ``Authorization: Bearer <token>`` (compared in constant time).
Calls are limited per token: at most ``calls_per_minute`` new calls in any 60 s, and at most
``max_concurrent`` calls live at once; past a limit the answer is 429 with the seconds to wait. No
clock or IO here: the routes pass ``now`` (monotonic seconds) and say when a call ends.

| Variable | Default | Meaning |
|---|---|---|
| ``REALTIME_API_TOKEN`` | (none: the API is off) | the Bearer token every API request must carry |
| ``REALTIME_API_ORIGINS`` | (none) | comma list of browser origins allowed by CORS, e.g. ``https://demo.example`` |
| ``REALTIME_API_CALLS_PER_MINUTE`` | ``10`` | new calls (and minted sessions) per token in any 60 s |
| ``REALTIME_API_MAX_CONCURRENT`` | ``4`` | calls per token live at the same time |
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Admission", "ApiConfig", "ApiConfigError", "CallLimiter", "bearer_token", "token_matches"]

WINDOW_S = 60.0


class ApiConfigError(ValueError):
    """A REALTIME_API_* variable that cannot be used; the message names it."""


@dataclass(frozen=True)
class ApiConfig:
    token: str = field(default="", repr=False)
    origins: tuple[str, ...] = ()
    calls_per_minute: int = 10
    max_concurrent: int = 4

    @property
    def enabled(self) -> bool:
        return bool(self.token)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ApiConfig:
        token = env.get("REALTIME_API_TOKEN", "").strip()
        if token and len(token) < 16:
            raise ApiConfigError("REALTIME_API_TOKEN must be at least 16 characters (it guards a paid API).")
        origins = tuple(o.strip().rstrip("/") for o in env.get("REALTIME_API_ORIGINS", "").split(",") if o.strip())
        for origin in origins:
            if origin == "*" or not origin.startswith(("http://", "https://")):
                raise ApiConfigError(
                    f"REALTIME_API_ORIGINS lists {origin!r}: give full origins such as https://demo.example, not '*'."
                )
        return cls(
            token=token,
            origins=origins,
            calls_per_minute=_positive(env, "REALTIME_API_CALLS_PER_MINUTE", cls.calls_per_minute),
            max_concurrent=_positive(env, "REALTIME_API_MAX_CONCURRENT", cls.max_concurrent),
        )


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiConfigError(f"{name} must be a whole number, not {raw!r}.") from None
    if value < 1:
        raise ApiConfigError(f"{name} must be at least 1, not {value}.")
    return value


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def token_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison (of digests, so the length of the token does not leak either)."""
    if not given or not expected:
        return False
    return hmac.compare_digest(hashlib.sha256(given.encode()).digest(), hashlib.sha256(expected.encode()).digest())


@dataclass(frozen=True)
class Admission:
    ok: bool
    retry_after_s: int = 0  # when refused: whole seconds until a call would be admitted (at least 1)
    reason: str = ""


class CallLimiter:
    """Calls per minute and live calls, per token (keyed by a digest: the token itself is not kept)."""

    def __init__(self, calls_per_minute: int, max_concurrent: int) -> None:
        self.calls_per_minute = calls_per_minute
        self.max_concurrent = max_concurrent
        self._starts: dict[bytes, deque[float]] = {}
        self._live: dict[bytes, set[str]] = {}

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def admit(self, token: str, now: float, *, concurrent: bool = True) -> Admission:
        """May this token start a call now? Counts it when yes. ``concurrent=False`` (minting a session,
        which is not a call held by the studio) counts against the per-minute limit only."""
        key = self._key(token)
        starts = self._starts.setdefault(key, deque())
        while starts and now - starts[0] >= WINDOW_S:
            starts.popleft()
        if len(starts) >= self.calls_per_minute:
            wait = WINDOW_S - (now - starts[0])
            return Admission(
                False, max(1, math.ceil(wait)), f"More than {self.calls_per_minute} calls in a minute for this token."
            )
        if concurrent and len(self._live.get(key, ())) >= self.max_concurrent:
            return Admission(False, 5, f"This token already has {self.max_concurrent} calls running.")
        starts.append(now)
        return Admission(True)

    def started(self, token: str, call_id: str) -> None:
        self._live.setdefault(self._key(token), set()).add(call_id)

    def ended(self, call_id: str) -> None:
        for live in self._live.values():
            live.discard(call_id)

    def live(self, token: str) -> int:
        return len(self._live.get(self._key(token), ()))
