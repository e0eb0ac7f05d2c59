"""Real-time pacing of fixed-length media frames: when the next frame is due.

A media track's ``recv()`` hands out one frame per period (20 ms of audio, one video frame); the
clock is anchored at the first frame, so frame ``n`` is due ``n`` periods later and sleeps never
add up to drift. ``FramePacer`` only does that arithmetic (the clock is injectable for tests);
``await pacer.wait()`` is the sleep around it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["FramePacer"]


class FramePacer:
    """Says when each frame of a ``frames_per_second`` stream is due.

    ``max_lag_s``: when a frame is found more than this late (the event loop stalled), the clock is
    re-anchored so that this frame is due now: the stream carries on in real time instead of
    bursting the backlog out at once. ``None`` keeps the anchor, so a late stream catches up.
    """

    def __init__(
        self,
        frames_per_second: float,
        *,
        max_lag_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if frames_per_second <= 0:
            raise ValueError(f"frames_per_second must be positive, got {frames_per_second!r}")
        self.frames_per_second = frames_per_second
        self.max_lag_s = max_lag_s
        self._clock = clock
        self._start: float | None = None
        self.index = -1  # of the frame last handed out; -1 before the first

    def next_delay(self) -> float:
        """Count one more frame (``index``); return the seconds until it is due, 0 if it is due now."""
        if self._start is None:
            self._start = self._clock()
            self.index = 0
            return 0.0
        self.index += 1
        offset = self.index / self.frames_per_second
        wait = self._start + offset - self._clock()
        if wait > 0:
            return wait
        if self.max_lag_s is not None and wait < -self.max_lag_s:
            self._start = self._clock() - offset
        return 0.0

    async def wait(self) -> int:
        """Sleep until the next frame is due; return its index (0 for the first)."""
        delay = self.next_delay()
        if delay > 0:
            await asyncio.sleep(delay)
        return self.index
