"""The engine's one wire audio format, pcm16 little-endian mono at 24 kHz: its constants and checks."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from .schema import ClientEventError

__all__ = ["BYTES_PER_MS", "SAMPLE_RATE", "decode_audio", "whole_samples", "wire_format"]

SAMPLE_RATE = 24_000
BYTES_PER_MS = SAMPLE_RATE * 2 // 1000  # pcm16 mono: 48 bytes per millisecond


def wire_format() -> dict[str, Any]:
    """The format object of the session and response ``audio`` blocks (a fresh dict each time)."""
    return {"type": "audio/pcm", "rate": SAMPLE_RATE}


def whole_samples(pcm: bytes) -> bytes:
    """``pcm`` without a trailing half sample."""
    return pcm[: len(pcm) - len(pcm) % 2]


def decode_audio(value: str, param: str) -> bytes:
    """Base64 audio from a client event; refuses anything that is not base64."""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ClientEventError(
            "invalid_value", f"Invalid '{param}': expected base64-encoded audio.", param=param
        ) from None
