"""Interrupt means quiet now: a gate in front of the browser leg's PcmAudioSource.

`Bridge.interrupt()` clears the buffered voice and asks the provider to stop
(`response.cancel`, `output_audio_buffer.clear`). Until the provider has acted on that, the
voice already on the wire keeps arriving and `VoiceOut` queues it again: measured in Chromium on
the local engine, 0.5-1 s more of the reply was heard after Interrupt. `VoiceGate.interrupt()`
clears the source and then drops every push until the incoming voice pauses (no push for
`quiet_s`: `VoiceOut` pushes nothing while the upstream is silent) or `max_hold_s` has passed, so
the next reply (which starts after a pause) plays normally. `quiet_s` is 0.5 s, not one frame or
two: under load the bridge's loop can stall for 100+ ms and then deliver the reply in a burst,
which a shorter pause test took for the end of it (measured: the voice came back 2 s after
Interrupt). A new reply only follows a user action, so it starts well after half a second.

It forwards ``_fifo``, ``_lock`` and ``sample_rate`` to the wrapped source, so `VoiceOut` still
measures and caps the real buffer exactly (see `realtime.voice_out`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["GateStats", "VoiceGate"]


@dataclass(frozen=True)
class GateStats:
    interrupts: int
    held: bool  # dropping pushes right now
    dropped_pushes: int  # pushes dropped after an Interrupt, in total


class VoiceGate:
    """``push``/``clear`` in front of ``source`` (a streamlit-webrtc PcmAudioSource). Thread-safe."""

    def __init__(
        self, source: Any, *, quiet_s: float = 0.5, max_hold_s: float = 3.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not (callable(getattr(source, "push", None)) and callable(getattr(source, "clear", None))):
            raise TypeError("source must have push() and clear() methods")
        if not 0 < quiet_s <= max_hold_s:
            raise ValueError(f"need 0 < quiet_s <= max_hold_s, got {quiet_s!r}, {max_hold_s!r}")
        self.source = source
        self._quiet_s = quiet_s
        self._max_hold_s = max_hold_s
        self._clock = clock
        self._gate_lock = threading.Lock()
        self._held_since: float | None = None
        self._last_push = 0.0
        self._interrupts = 0
        self._dropped = 0

    # what VoiceOut looks at to measure the real buffer
    @property
    def _fifo(self) -> Any:
        return self.source._fifo

    @property
    def sample_rate(self) -> int:
        return int(self.source.sample_rate)

    @property
    def _lock(self) -> Any:
        """The source's own lock (its push, clear and track take it), not the gate's."""
        return self.source._lock

    def push(self, pcm: Any) -> None:
        now = self._clock()
        with self._gate_lock:
            held_since, last = self._held_since, self._last_push
            self._last_push = now
            if held_since is not None:
                if now - last >= self._quiet_s or now - held_since >= self._max_hold_s:
                    self._held_since = None
                else:
                    self._dropped += 1
                    return
        self.source.push(pcm)

    def clear(self) -> None:
        self.source.clear()

    def interrupt(self) -> None:
        """Drop what is queued and what is still coming of the current reply."""
        now = self._clock()
        with self._gate_lock:
            self._held_since = now
            self._last_push = now
            self._interrupts += 1
        self.source.clear()

    def stats(self) -> GateStats:
        with self._gate_lock:
            return GateStats(self._interrupts, self._held_since is not None, self._dropped)
