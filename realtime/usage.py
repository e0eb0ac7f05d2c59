"""Token usage as a value: what a response (or a conversation) consumed, summed field by field.

Read from the provider's ``response.usage`` by ``realtime.events``; priced by ``realtime.pricing``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["UsageTotals"]


@dataclass(frozen=True)
class UsageTotals:
    input_text: int = 0
    input_audio: int = 0
    input_image: int = 0
    cached_text: int = 0  # part of input_text billed at the cached rate
    cached_audio: int = 0
    cached_image: int = 0
    output_text: int = 0
    output_audio: int = 0
    responses: int = 0

    def __add__(self, other: UsageTotals) -> UsageTotals:
        if not isinstance(other, UsageTotals):
            return NotImplemented
        return UsageTotals(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in dataclasses.fields(self)})

    @property
    def input_tokens(self) -> int:
        return self.input_text + self.input_audio + self.input_image

    @property
    def output_tokens(self) -> int:
        return self.output_text + self.output_audio

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens
