"""Typed engine limits and auth: one frozen value, built from code or from the environment."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["MAX_SESSION_ENV", "EngineConfig", "parse_session_seconds"]

MAX_SESSION_ENV = "LOCALENGINE_MAX_SESSION_S"


def parse_session_seconds(raw: str, source: str = MAX_SESSION_ENV) -> float:
    """A maximum session duration in seconds from text (``"3600"``, ``"2.5"``); ``ValueError`` names ``source``."""
    try:
        value = float(raw.strip())
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{source} must be a positive number of seconds (e.g. 3600), got {raw!r}")
    return value


@dataclass(frozen=True)
class EngineConfig:
    """Everything an operator may tune about the local engine.

    ``accepted_keys`` is the set of bearer keys the engine accepts; ``None`` means any non-empty
    key (the real service's shape without the real service's key check). Ephemeral keys minted by
    ``POST /v1/realtime/client_secrets`` are accepted in addition until they expire.
    """

    accepted_keys: frozenset[str] | None = None
    max_session_seconds: float = 3600
    max_event_bytes: int = 1_048_576
    max_input_audio_seconds: float = 120
    client_secret_ttl_seconds: int = 600
    vad_silence_ms: int = 500

    def __post_init__(self) -> None:
        if self.accepted_keys is not None:
            keys = frozenset(k for k in self.accepted_keys if k)
            if not keys:
                raise ValueError("accepted_keys must hold at least one non-empty key, or be None")
            object.__setattr__(self, "accepted_keys", keys)
        for name in (
            "max_session_seconds",
            "max_event_bytes",
            "max_input_audio_seconds",
            "client_secret_ttl_seconds",
            "vad_silence_ms",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")

    def accepts_static_key(self, key: str) -> bool:
        """Whether ``key`` is one of the configured keys (ephemeral keys are checked elsewhere)."""
        if not key:
            return False
        return self.accepted_keys is None or key in self.accepted_keys

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EngineConfig:
        """Read ``LOCALENGINE_API_KEYS`` (comma-separated; unset or empty = any non-empty key) and
        ``LOCALENGINE_MAX_SESSION_S`` (seconds; unset or empty = 3600). A bad value raises ``ValueError``
        naming the variable."""
        env = os.environ if env is None else env
        raw = env.get("LOCALENGINE_API_KEYS", "")
        keys = frozenset(part.strip() for part in raw.split(",") if part.strip())
        seconds = env.get(MAX_SESSION_ENV, "")
        if seconds.strip():
            return cls(accepted_keys=keys or None, max_session_seconds=parse_session_seconds(seconds))
        return cls(accepted_keys=keys or None)
