"""The bridge's upstream audio track: browser mic frames in, paced 20 ms mono frames out."""

from __future__ import annotations

import asyncio
import fractions
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from realtime.mono import MonoS16

__all__ = ["SAMPLES_PER_FRAME", "SAMPLE_RATE", "MicFeed", "MicStats", "MicTrack"]

SAMPLE_RATE = 48000
SAMPLES_PER_FRAME = 960  # 20 ms
_FRAME_S = SAMPLES_PER_FRAME / SAMPLE_RATE
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
# If the loop stalls longer than this, re-anchor the clock instead of bursting to catch up.
_MAX_LAG_S = 0.2
_LEVEL_WINDOW_S = 0.2
_MAX_GAP_S = 1.0  # the most one gap between mic frames counts as late (a browser that paused is not load)


@dataclass(frozen=True)
class MicStats:
    pushed_frames: int
    sent_frames: int
    silence_frames: int  # frames sent with no mic audio at all (muted or starved)
    dropped_ms: float  # mic audio dropped: queue over its cap, or a standing backlog trimmed
    trimmed_ms: float  # the part of dropped_ms that was standing-backlog trimming
    queued_ms: float
    muted: bool
    level: float  # RMS (0..1 of full scale) of mic audio pushed in the last 200 ms; 0 when muted
    late_gaps: int = 0  # gaps between mic frames longer than the slack: the provider got silence
    late_ms: float = 0.0  # how late the frames after those gaps were, in total (at most 1 s each)


class MicTrack(MediaStreamTrack):
    """An aiortc audio track fed by ``push()`` from another thread.

    ``push(frame)`` takes browser mic frames (s16 interleaved stereo 48 kHz, 960
    samples, as streamlit-webrtc delivers them; mono, planar and other rates are
    converted too), downmixes them to mono and queues the samples. The queue holds
    at most ``max_queue_ms``; beyond that the oldest samples are dropped so latency
    cannot build up. A smaller standing backlog is trimmed too: a burst (the browser
    leg's jitter buffer releasing late packets together) would otherwise leave the
    queue, and so the mic's latency, raised for the rest of the call because input and
    output then run at the same rate. If the queue never fell below
    ``target_queue_ms`` during the last ``trim_window`` frames sent (1 s by default),
    the excess oldest audio is dropped.

    ``recv()`` always returns a 20 ms s16 mono 48 kHz frame whose pts starts at 0
    and grows by exactly 960 per frame whatever the browser's timestamps do. It is
    driven by the mic, not by its own clock: it returns as soon as a whole frame of
    mic audio is queued, so audio does not wait in the queue for a clock tick (a
    clock of our own, out of phase with the browser leg's, held 10-20 ms on average
    and let a standing backlog form). The schedule ``start + pts / 48 kHz`` only
    bounds it: never more than ``lead_ms`` ahead of it (a burst goes out at once up
    to that, the rest is paced and trimmed as above), and when the mic is late by
    more than ``slack_ms`` (the leg stalled, or the browser stopped sending) a frame
    padded with silence goes out, so the far side's clock keeps running. Muted, it
    sends silence on the schedule. After a loop stall longer than 200 ms the
    schedule is re-anchored instead of catching up with a burst of silence.

    Why a second of lead and of queue: under load the browser leg delivers the mic in
    bursts after gaps (its loop or the browser ran late). The gap is padded with
    silence after ``slack_ms``, so the burst that follows is behind the schedule; with
    200 ms of each, everything past ~0.5 s of it was dropped and the provider heard
    words cut out (4 Chromium tabs on 2 cores: 9-25 % of the mic audio lost, and up
    to a quarter of the replies never came). A provider's receiver takes a burst of
    in-order packets as it takes network jitter; a standing backlog is still trimmed.

    ``push()`` also notes gaps between mic frames longer than ``slack_ms`` (the
    browser leg's loop or network stalled; the provider was sent silence meanwhile):
    `MicStats.late_ms` is one of ``realtime.overload``'s signals.
    """

    kind = "audio"

    def __init__(
        self,
        *,
        max_queue_ms: float = 1000.0,
        target_queue_ms: float = 0.0,
        trim_window: int = 50,
        lead_ms: float = 1000.0,
        slack_ms: float = 100.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        if not max_queue_ms >= 20:
            raise ValueError(f"max_queue_ms must be >= 20, got {max_queue_ms!r}")
        if not 0 <= target_queue_ms <= max_queue_ms:
            raise ValueError(f"target_queue_ms must be within 0..max_queue_ms, got {target_queue_ms!r}")
        if not trim_window >= 1:
            raise ValueError(f"trim_window must be >= 1, got {trim_window!r}")
        self._max_samples = int(SAMPLE_RATE * max_queue_ms / 1000)
        self._target_samples = int(SAMPLE_RATE * target_queue_ms / 1000)
        self._trim_window = int(trim_window)
        if not 0 <= lead_ms <= 1000 or not 0 <= slack_ms <= 1000:
            raise ValueError(f"lead_ms and slack_ms must be within 0..1000, got {lead_ms!r}, {slack_ms!r}")
        self._lead_s = lead_ms / 1000
        self._slack_s = slack_ms / 1000
        self._wakeup: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None
        self._window_min: int | None = None
        self._window_frames = 0
        self._trimmed_samples = 0
        self._clock = clock
        self._lock = threading.Lock()
        self._chunks: deque[np.ndarray] = deque()
        self._queued = 0
        self._muted = False
        self._mono = MonoS16(SAMPLE_RATE)
        self._pts: int | None = None
        self._start = 0.0
        self._pushed = 0
        self._last_push: float | None = None
        self._late_gaps = 0
        self._late_s = 0.0
        self._sent = 0
        self._silence = 0
        self._dropped_samples = 0
        self._levels: deque[tuple[float, float, int]] = deque()  # (time, sum of squares, samples)
        # told each 20 ms of pcm as it goes upstream (on the consumer's loop): what the provider heard
        self.on_sent: Callable[[np.ndarray], None] | None = None

    # ------------------------------------------------------------------ producer side

    def push(self, frame: av.AudioFrame) -> None:
        """Queue one mic frame. Thread-safe and cheap (no blocking beyond a short lock)."""
        if not isinstance(frame, av.AudioFrame):
            raise TypeError(f"push() takes av.AudioFrame, got {type(frame).__name__}")
        if self.readyState != "live":
            return
        mono = self._mono.convert(frame)
        norm = mono.astype(np.float32) / 32768.0
        energy = float(np.dot(norm, norm))
        now = self._clock()
        with self._lock:
            self._pushed += 1
            last, self._last_push = self._last_push, now
            if last is not None and now - last > self._slack_s + _FRAME_S:
                self._late_gaps += 1
                self._late_s += min(now - last, _MAX_GAP_S) - _FRAME_S
            if self._muted or mono.size == 0:
                return
            self._levels.append((now, energy, int(mono.size)))
            while self._levels and now - self._levels[0][0] > _LEVEL_WINDOW_S:
                self._levels.popleft()
            self._chunks.append(mono)
            self._queued += mono.size
            self._drop_oldest_locked(self._queued - self._max_samples)
            if self._queued >= SAMPLES_PER_FRAME:
                self._wake_locked()

    def _drop_oldest_locked(self, n: int) -> int:
        dropped = 0
        while n > 0 and self._chunks:
            head = self._chunks[0]
            if head.size <= n:
                self._chunks.popleft()
                cut = head.size
            else:
                self._chunks[0] = head[n:]
                cut = n
            self._queued -= cut
            self._dropped_samples += cut
            dropped += cut
            n -= cut
        return dropped

    @property
    def muted(self) -> bool:
        with self._lock:
            return self._muted

    @muted.setter
    def muted(self, value: bool) -> None:
        with self._lock:
            self._muted = bool(value)
            if self._muted:
                self._chunks.clear()
                self._queued = 0
                self._levels.clear()

    def set_muted(self, value: bool) -> None:
        self.muted = value

    def stats(self) -> MicStats:
        now = self._clock()
        with self._lock:
            recent = [(e, n) for t, e, n in self._levels if now - t <= _LEVEL_WINDOW_S]
            total = sum(n for _, n in recent)
            level = float(np.sqrt(sum(e for e, _ in recent) / total)) if total else 0.0
            return MicStats(
                pushed_frames=self._pushed,
                sent_frames=self._sent,
                silence_frames=self._silence,
                dropped_ms=self._dropped_samples * 1000 / SAMPLE_RATE,
                trimmed_ms=self._trimmed_samples * 1000 / SAMPLE_RATE,
                queued_ms=self._queued * 1000 / SAMPLE_RATE,
                muted=self._muted,
                level=level,
                late_gaps=self._late_gaps,
                late_ms=self._late_s * 1000,
            )

    # ------------------------------------------------------------------ consumer side

    def _take(self, n: int) -> tuple[np.ndarray, int]:
        out = np.zeros(n, dtype=np.int16)
        filled = 0
        with self._lock:
            while filled < n and self._chunks:
                head = self._chunks[0]
                take = min(n - filled, head.size)
                out[filled : filled + take] = head[:take]
                if take == head.size:
                    self._chunks.popleft()
                else:
                    self._chunks[0] = head[take:]
                self._queued -= take
                filled += take
            self._sent += 1
            if filled == 0:
                self._silence += 1
            # Standing-backlog trim: the lowest queue depth seen over the window is
            # latency that jitter did not need.
            low = self._queued if self._window_min is None else min(self._window_min, self._queued)
            self._window_frames += 1
            if self._window_frames >= self._trim_window:
                if low > self._target_samples:
                    self._trimmed_samples += self._drop_oldest_locked(low - self._target_samples)
                self._window_min, self._window_frames = None, 0
            else:
                self._window_min = low
        return out, filled

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._pts is None:
            self._pts = 0
            self._start = self._clock()
        else:
            self._pts += SAMPLES_PER_FRAME
        due = self._start + self._pts / SAMPLE_RATE
        if self._clock() - due > _MAX_LAG_S:
            # Stalled loop: keep pts continuous but do not send a burst of silence to catch up.
            self._start = self._clock() - self._pts / SAMPLE_RATE
            due = self._start + self._pts / SAMPLE_RATE
        await self._wait_for_frame(due)
        if self.readyState != "live":
            raise MediaStreamError
        pcm, _ = self._take(SAMPLES_PER_FRAME)
        if self.on_sent is not None:
            self.on_sent(pcm)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        frame.time_base = TIME_BASE
        return frame

    async def _wait_for_frame(self, due: float) -> None:
        """Return as soon as a whole frame of mic audio is queued (but no earlier than
        ``due - lead``), or at ``due + slack`` when it is not (then silence pads it)."""
        loop = asyncio.get_running_loop()
        try:
            while self.readyState == "live":
                event = asyncio.Event()
                with self._lock:
                    ready = self._queued >= SAMPLES_PER_FRAME and not self._muted
                    # registered under the same lock push() takes: no wake-up can be missed
                    self._wakeup = None if ready else (loop, event)
                    muted = self._muted
                now = self._clock()
                release_at = due - self._lead_s if ready else due + (0.0 if muted else self._slack_s)
                if now >= release_at:
                    return
                try:
                    await asyncio.wait_for(event.wait(), release_at - now)
                except TimeoutError:
                    pass
        finally:
            with self._lock:
                self._wakeup = None

    def _wake_locked(self) -> None:
        if self._wakeup is not None:
            loop, event = self._wakeup
            self._wakeup = None
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

    def stop(self) -> None:
        with self._lock:
            self._chunks.clear()
            self._queued = 0
        super().stop()
        with self._lock:
            self._wake_locked()


class MicFeed(MediaStreamTrack):
    """One upstream call's view of the conversation's ``MicTrack``.

    The mic outlives its calls (a reconnect, a rollover): each call's sender reads a feed. While
    ``live()`` is true the feed hands on the mic's frames; before that (a call readied in the
    background to take over) it sends paced silence, so the new call hears nothing until it is
    the current one. A shared lock lets only one feed read the mic at a time: at a switch the new
    feed waits for the old one's read in flight (at most a frame) instead of splitting the audio.
    The pts are the feed's own, continuous from 0 as its sender expects.
    """

    kind = "audio"

    def __init__(self, mic: MicTrack, live: Callable[[], bool], lock: asyncio.Lock) -> None:
        super().__init__()
        self._mic = mic
        self._live = live
        self._reading = lock
        self._pts = 0
        self._silent_from: float | None = None  # the silence schedule's start (monotonic)
        self._silent_sent = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._live():
            async with self._reading:
                frame = await self._mic.recv()
            self._silent_from = None
        else:
            frame = await self._silence()
        frame.pts = self._pts
        frame.time_base = TIME_BASE
        self._pts += SAMPLES_PER_FRAME
        return frame

    async def _silence(self) -> av.AudioFrame:
        now = time.monotonic()
        if self._silent_from is None or now - (self._silent_from + self._silent_sent * 0.02) > _MAX_LAG_S:
            self._silent_from, self._silent_sent = now, 0
        due = self._silent_from + self._silent_sent * 0.02
        self._silent_sent += 1
        if due > now:
            await asyncio.sleep(due - now)
        silence = np.zeros((1, SAMPLES_PER_FRAME), dtype=np.int16)
        frame = av.AudioFrame.from_ndarray(silence, format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        return frame
