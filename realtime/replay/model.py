"""The values a replay is made of: the user turns fed in, and what each setup answered (pure data).

A comparison holds one ``SetupRun`` per setup; the first is the original conversation as History kept
it. Everything is immutable and JSON-able through ``realtime.replay.report``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Comparison", "ReplayTurn", "ReplyResult", "SetupRun"]

TurnKind = Literal["typed", "spoken"]


@dataclass(frozen=True)
class ReplayTurn:
    """One user turn of the source conversation, in order: what was typed or said, and the images
    sent with it (JPEG bytes)."""

    index: int  # 0-based position among the user turns
    kind: TurnKind
    text: str
    images: tuple[bytes, ...] = field(default=(), repr=False)
    audio: bytes | None = field(default=None, repr=False)  # a spoken turn's kept voice (pcm16 mono 24 kHz)


@dataclass(frozen=True)
class ReplyResult:
    """What one setup answered to one turn."""

    turn: int  # ReplayTurn.index
    text: str = ""
    audio_wav: bytes | None = field(default=None, repr=False)  # the reply's voice, 24 kHz mono WAV
    first_audio_ms: float | None = None  # from the turn's response.create to the first audio
    first_text_ms: float | None = None  # ... to the first text (or transcript) delta
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    tool_calls: tuple[str, ...] = ()  # "name(arguments) -> output", in the order they ran
    error: str | None = None  # this turn failed: why (the text may hold what came before)

    @property
    def latency_ms(self) -> float | None:
        """To the first audio, else to the first text: what a listener waits for."""
        return self.first_audio_ms if self.first_audio_ms is not None else self.first_text_ms


@dataclass(frozen=True)
class SetupRun:
    """One setup's answers, turn by turn. ``error``: the run stopped early and why; the results it got
    before are kept."""

    name: str  # "original", "current", "preset:Brief"
    label: str  # for people: "Original conversation", "Current sidebar setup", "Preset “Brief”"
    voice: str = ""
    model: str = ""
    backend: str = ""  # "local" or "openai": the local engine is free
    results: tuple[ReplyResult, ...] = ()
    error: str | None = None
    seconds: float = 0.0  # how long the replay took


@dataclass(frozen=True)
class Comparison:
    conversation_id: str
    title: str  # the conversation's first user line
    turns: tuple[ReplayTurn, ...]
    runs: tuple[SetupRun, ...]  # the original first
    created_at: float  # wall-clock time the comparison was made
