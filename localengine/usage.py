"""The token usage and rate limits the engine reports: deterministic estimates, not a tokenizer.

Text counts a token per four characters, audio ten tokens per second, an image by its 512-pixel
tiles (85 when ``detail`` is low). The ``*_wire`` functions render the GA usage objects.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .items import Item
from .responder import ImageInfo
from .session_config import FunctionTool

__all__ = [
    "RATE_LIMIT_REQUESTS",
    "RATE_LIMIT_TOKENS",
    "InputUsage",
    "audio_tokens",
    "input_usage",
    "rate_limits_wire",
    "response_usage_wire",
    "text_tokens",
    "transcription_usage_wire",
]

RATE_LIMIT_REQUESTS = 5_000
RATE_LIMIT_TOKENS = 400_000


@dataclass(frozen=True)
class InputUsage:
    """The tokens a response reads: instructions, tools and the conversation it answers."""

    text_tokens: int = 0
    audio_tokens: int = 0
    image_tokens: int = 0

    @property
    def total(self) -> int:
        return self.text_tokens + self.audio_tokens + self.image_tokens


def text_tokens(text: str) -> int:
    return math.ceil(len(text) / 4) if text else 0


def audio_tokens(audio_ms: int) -> int:
    return math.ceil(audio_ms / 100)


def image_tokens(image: ImageInfo, detail: str | None) -> int:
    if detail == "low":
        return 85
    tiles = math.ceil(min(image.width, 2048) / 512) * math.ceil(min(image.height, 2048) / 512)
    return min(765, 85 + 170 * tiles)


def input_usage(instructions: str, items: Iterable[Item], tools: Iterable[FunctionTool]) -> InputUsage:
    text = text_tokens(instructions) + sum(text_tokens(json.dumps(t.wire)) for t in tools)
    audio = image = 0
    for item in items:
        if item.type == "function_call":
            text += text_tokens(item.name) + text_tokens(item.arguments)
        elif item.type == "function_call_output":
            text += text_tokens(item.output)
        for p in item.content:
            if p.type in ("input_text", "output_text"):
                text += text_tokens(p.text or "")
            elif p.type in ("input_audio", "output_audio"):
                audio += audio_tokens(p.audio_ms)
                text += text_tokens(p.transcript or "") if p.type == "output_audio" else 0
            elif p.image is not None:
                image += image_tokens(p.image, p.detail)
    return InputUsage(text, audio, image)


def response_usage_wire(inp: InputUsage, out_text: int, out_audio: int) -> dict[str, Any]:
    """The ``usage`` of ``response.done``."""
    output_tokens = out_text + out_audio
    return {
        "total_tokens": inp.total + output_tokens,
        "input_tokens": inp.total,
        "output_tokens": output_tokens,
        "input_token_details": {
            "text_tokens": inp.text_tokens,
            "audio_tokens": inp.audio_tokens,
            "image_tokens": inp.image_tokens,
            "cached_tokens": 0,
            "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0},
        },
        "output_token_details": {"text_tokens": out_text, "audio_tokens": out_audio},
    }


def transcription_usage_wire(audio_ms: int, transcript: str) -> dict[str, Any]:
    """The ``usage`` of ``conversation.item.input_audio_transcription.completed``."""
    audio, text = audio_tokens(audio_ms), text_tokens(transcript)
    return {
        "type": "tokens",
        "input_tokens": audio,
        "output_tokens": text,
        "total_tokens": audio + text,
        "input_token_details": {"audio_tokens": audio, "text_tokens": 0},
    }


def rate_limits_wire(used_tokens: int) -> list[dict[str, Any]]:
    """The ``rate_limits`` of ``rate_limits.updated`` after a response that used ``used_tokens``."""
    return [
        {
            "name": "requests",
            "limit": RATE_LIMIT_REQUESTS,
            "remaining": RATE_LIMIT_REQUESTS - 1,
            "reset_seconds": 0.012,
        },
        {
            "name": "tokens",
            "limit": RATE_LIMIT_TOKENS,
            "remaining": max(0, RATE_LIMIT_TOKENS - used_tokens),
            "reset_seconds": round(used_tokens * 60 / RATE_LIMIT_TOKENS, 3),
        },
    ]
