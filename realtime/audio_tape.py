"""The conversation's voice, both sides, cut into clips on one wall-clock timeline (no IO).

The bridge hands the tape every 20 ms of mic audio it sends upstream (``mic``) and every frame of
the assistant's voice it receives (``voice``), both mono s16 at 48 kHz, and the provider's turn
signals: ``speech`` (``input_audio_buffer.speech_started`` / ``speech_stopped``, with the item the
spoken turn becomes) and ``playback`` (``output_audio_buffer.started`` / ``stopped`` / ``cleared``,
with the response id). A user clip runs from ``pre_roll_s`` before speech started (the provider
hears speech a moment after it began, and pads its own turns the same way) to speech stopped; an
assistant clip from playback started to ``tail_s`` after it stopped (the last packets arrive after
the event), or to ``cleared`` (a barge-in). Audio outside a clip costs a short ring buffer and is
dropped. Each finished clip is returned once, as a ``VoiceClip`` at 24 kHz, for History to keep.

Loop-only: every method is called on the bridge loop, so there is no lock.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

__all__ = ["CLIP_RATE", "AudioTape", "VoiceClip"]

CLIP_RATE = 24_000  # what is kept: 24 kHz mono s16, the Realtime API's own audio format
_IN_RATE = 48_000

Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class VoiceClip:
    """One stretch of voice: a spoken user turn, or one response's audio as it played."""

    role: Role
    item_id: str | None  # user: the item the spoken turn became; assistant: the response id
    started_at: float  # wall-clock time (time.time()) of the first sample
    pcm: bytes = field(repr=False)  # s16 mono at CLIP_RATE

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 2 / CLIP_RATE


def _half_rate(pcm48: np.ndarray) -> np.ndarray:
    """48 kHz to 24 kHz: the mean of each pair (a cheap low-pass before dropping every other sample)."""
    even = pcm48[: pcm48.size - pcm48.size % 2].astype(np.int32)
    return ((even[0::2] + even[1::2]) >> 1).astype(np.int16)


class _Open:
    def __init__(self, role: Role, item_id: str | None, started_at: float, max_samples: int) -> None:
        self.role = role
        self.item_id = item_id
        self.started_at = started_at
        self.chunks: list[np.ndarray] = []
        self.samples = 0
        self.max_samples = max_samples
        self.closes_at: float | None = None  # assistant: the tail's end, once playback stopped

    def add(self, pcm: np.ndarray) -> None:
        room = self.max_samples - self.samples
        if room > 0:
            pcm = pcm[:room]
            self.chunks.append(pcm)
            self.samples += pcm.size

    def clip(self) -> VoiceClip:
        pcm = np.concatenate(self.chunks) if self.chunks else np.zeros(0, dtype=np.int16)
        return VoiceClip(self.role, self.item_id, self.started_at, pcm.astype("<i2").tobytes())


class AudioTape:
    def __init__(
        self,
        *,
        pre_roll_s: float = 1.0,
        tail_s: float = 0.3,
        max_clip_s: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._pre_roll = int(pre_roll_s * CLIP_RATE)
        self._tail_s = tail_s
        self._max = int(max_clip_s * CLIP_RATE)
        self._clock = clock
        self._ring: deque[np.ndarray] = deque()
        self._ring_samples = 0
        self._user: _Open | None = None
        self._voice: _Open | None = None

    # -- audio ------------------------------------------------------------------------------------
    def mic(self, pcm48: np.ndarray) -> None:
        """20 ms (or any length) of what went upstream."""
        pcm = _half_rate(pcm48)
        if self._user is not None:
            self._user.add(pcm)
            return
        self._ring.append(pcm)
        self._ring_samples += pcm.size
        while self._ring and self._ring_samples - self._ring[0].size >= self._pre_roll:
            self._ring_samples -= self._ring.popleft().size

    def voice(self, pcm48: np.ndarray) -> tuple[VoiceClip, ...]:
        """A frame of the assistant's voice as received (its clip ends here once the tail ran out)."""
        clip = self._voice
        if clip is None:
            return ()
        if clip.closes_at is not None and self._clock() >= clip.closes_at:
            return self._end_voice()
        clip.add(_half_rate(pcm48))
        return ()

    # -- the provider's turn signals ----------------------------------------------------------------
    def speech(self, phase: Literal["started", "stopped"], item_id: str | None) -> tuple[VoiceClip, ...]:
        if phase == "started":
            done = self._end_user()
            now = self._clock()
            opened = _Open("user", item_id, now - self._ring_samples / CLIP_RATE, self._max)
            for chunk in self._ring:
                opened.add(chunk)
            self._ring.clear()
            self._ring_samples = 0
            self._user = opened
            return done
        if self._user is not None and item_id and self._user.item_id is None:
            self._user.item_id = item_id
        return self._end_user()

    def playback(
        self, phase: Literal["started", "stopped", "cleared"], response_id: str | None
    ) -> tuple[VoiceClip, ...]:
        if phase == "started":
            done = self._end_voice()
            self._voice = _Open("assistant", response_id, self._clock(), self._max)
            return done
        if phase == "cleared":
            return self._end_voice()
        if self._voice is not None:
            self._voice.closes_at = self._clock() + self._tail_s
        return ()

    def tick(self) -> tuple[VoiceClip, ...]:
        """Ends an assistant clip whose tail ran out while no frame came (call it now and then)."""
        clip = self._voice
        if clip is not None and clip.closes_at is not None and self._clock() >= clip.closes_at:
            return self._end_voice()
        return ()

    def close(self) -> tuple[VoiceClip, ...]:
        """The call is over: what is still open, as it is."""
        return self._end_user() + self._end_voice()

    # -- inside -----------------------------------------------------------------------------------
    def _end_user(self) -> tuple[VoiceClip, ...]:
        clip, self._user = self._user, None
        return (clip.clip(),) if clip is not None and clip.samples else ()

    def _end_voice(self) -> tuple[VoiceClip, ...]:
        clip, self._voice = self._voice, None
        return (clip.clip(),) if clip is not None and clip.samples else ()
