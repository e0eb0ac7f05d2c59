"""The assistant's voice: upstream remote audio track -> s16 mono 48 kHz -> ``audio_out``.

``audio_out`` is streamlit-webrtc's ``PcmAudioSource`` in the app (anything with
``push(bytes)`` and ``clear()`` works). Its buffer has no cap, and any drift between
the provider's clock and the browser leg's clock, or a burst after a network stall,
would add latency for the rest of the call. `VoiceOut` caps it.

How much is buffered, and why it is measured this way
-----------------------------------------------------
``PcmAudioSource`` pulls 20 ms frames from its own ``av.AudioFifo`` on the browser
leg's media clock, which we do not see: it starts only when the browser track is
consumed, stalls when that loop is busy, and stops when the browser leaves. Own
accounting (samples pushed minus wall-clock time elapsed) would assume a consumer
that runs exactly in real time from the first push, and it drifts in precisely the
cases the cap exists for. So, when ``audio_out`` is a ``PcmAudioSource`` (it has
``_fifo`` and ``_lock``, true of the pinned streamlit-webrtc 0.79 and checked by a
test), `VoiceOut` reads ``_fifo.samples`` under the source's own ``_lock`` (the
lock ``push``, ``clear`` and the track's callback take) and drops the oldest excess
by reading it out of the fifo under that lock: exact, O(1), and thread-safe. Each
``clear()`` replaces the fifo, so it is looked up afresh every time.

The cap is on the *standing* backlog
-----------------------------------
A burst is not a backlog. When the provider's sender falls behind (its loop stalled)
it catches up by sending the late frames at once: the buffer jumps, then drains in
the next pause. Dropping every sample over ``max_buffer_ms`` the moment it arrives
cut ~0.7 s of reply audio per run out of the middle of words. So the cap applies to
a backlog that *stands*: once the buffer has stayed above ``max_buffer_ms`` for
``cap_window_ms`` (1 s), the oldest excess is dropped down to the cap. Only a burst
beyond ``max_burst_ms`` (1 s) is cut at once, so latency stays bounded either way.

Silence, and latency between the cap and zero
---------------------------------------------
The provider's stream carries silence between utterances. ``PcmAudioSource`` plays
silence by itself when its buffer is empty, so queueing that silence only puts it in
front of the next reply: up to ``silence_skip_ms`` (and a frame) of pure delay before
the first word. `VoiceOut` therefore queues a silent frame (RMS below -60 dBFS) only
inside an utterance (within ``hangover_ms`` of the last voiced frame, so pauses between
words keep their length) and only while no more than ``silence_skip_ms`` is buffered
(so a backlog drains in the pauses, and no speech is ever cut for it).

For any other sink (no fifo to look into) it falls back to that own accounting, a
leaky bucket drained at ``sample_rate`` in real time, and since it cannot take
samples back out of an opaque sink it drops the excess of the incoming chunk.

Underruns: the voice running out mid-reply
------------------------------------------
When the provider's frames arrive late (this loop or the network stalled), the browser
leg's track finds the buffer empty mid-word and plays silence: a gap the user hears.
Inside an utterance (as long as frames are still queued, silence within ``hangover_ms``
included), each frame sets a deadline: the audio buffered after it, plus one frame
period for the phase of the player's reads. A frame arriving later than that means the
player read an empty buffer at least once; the time past the deadline is counted as
starved (`VoiceStats.starved_ms`, a lower bound; at most ``_MAX_GAP_S`` per gap, since a
stream that stops mid-word and resumes much later is not one long underrun). Outside an
utterance the buffer runs empty on purpose and nothing is counted. This is O(1) work per
frame on what `push_frame` measures already.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from realtime.mono import MonoS16

__all__ = ["PcmSink", "VoiceOut", "VoiceStats"]

logger = logging.getLogger(__name__)

_LEVEL_WINDOW_S = 0.2


class PcmSink(Protocol):
    """Where the assistant's voice goes: s16 mono PCM at 48 kHz (a streamlit-webrtc ``PcmAudioSource``,
    or ``VoiceGate`` in front of one). Both methods are thread-safe."""

    def push(self, pcm: bytes) -> None: ...

    def clear(self) -> None: ...


_SILENCE_RMS = 0.001  # -60 dBFS
_FRAME_S = 0.02  # the browser leg's track reads 20 ms at a time (streamlit-webrtc's ptime)
_MAX_GAP_S = 1.0  # the most one gap between frames counts as starved


@dataclass(frozen=True)
class VoiceStats:
    frames: int  # frames received from the upstream track
    pushed_ms: float  # audio handed to audio_out
    dropped_ms: float  # audio dropped to keep the buffer under the cap
    skipped_silence_ms: float  # silent frames not queued because audio was already buffered
    current_buffer_ms: float
    level: float  # RMS of the last 200 ms received, 0..1 of full scale (0 if none lately)
    clears: int
    bad_frames: int  # frames that could not be converted (skipped, logged once)
    underruns: int = 0  # times the voice ran out mid-utterance (see the module docstring)
    starved_ms: float = 0.0  # how long it was out, in total (a lower bound)


class _FifoGauge:
    """Exact buffered-sample count of a streamlit-webrtc PcmAudioSource."""

    def __init__(self, source: Any) -> None:
        self._source = source

    def queued(self) -> int:
        with self._source._lock:
            return int(self._source._fifo.samples)

    def push_capped(self, pcm: np.ndarray, cap: int) -> int:
        """Push, then drop the oldest samples over ``cap``. Returns samples dropped."""
        self._source.push(pcm)
        return self.trim(cap)

    def trim(self, cap: int) -> int:
        """Drop the oldest samples over ``cap``. Returns samples dropped."""
        with self._source._lock:
            fifo = self._source._fifo
            excess = int(fifo.samples) - cap
            if excess > 0:
                fifo.read(excess)
                return excess
        return 0

    def cleared(self) -> None:
        pass


class _BucketGauge:
    """Own accounting for an opaque sink: a leaky bucket drained in real time."""

    def __init__(self, sink: Any, sample_rate: int, clock: Callable[[], float]) -> None:
        self._sink = sink
        self._rate = sample_rate
        self._clock = clock
        self._level = 0.0
        self._at = clock()
        self._lock = threading.Lock()

    def _drain(self) -> None:
        now = self._clock()
        self._level = max(0.0, self._level - (now - self._at) * self._rate)
        self._at = now

    def queued(self) -> int:
        with self._lock:
            self._drain()
            return int(self._level)

    def push_capped(self, pcm: np.ndarray, cap: int) -> int:
        with self._lock:
            self._drain()
            room = max(0, cap - int(self._level))
            keep = pcm[:room]
            self._level += keep.size
        if keep.size:
            self._sink.push(keep.tobytes())
        return pcm.size - keep.size

    def trim(self, cap: int) -> int:
        return 0  # an opaque sink's samples cannot be taken back

    def cleared(self) -> None:
        with self._lock:
            self._level = 0.0
            self._at = self._clock()


def _is_pcm_source(obj: Any) -> bool:
    fifo = getattr(obj, "_fifo", None)
    lock = getattr(obj, "_lock", None)
    return isinstance(fifo, av.AudioFifo) and hasattr(lock, "acquire")


class VoiceOut:
    """Relay the upstream peer's audio to ``audio_out`` with a capped buffer."""

    def __init__(
        self,
        audio_out: PcmSink,
        *,
        max_buffer_ms: float = 400.0,
        sample_rate: int = 48000,
        silence_skip_ms: float = 60.0,
        cap_window_ms: float = 1000.0,
        max_burst_ms: float = 1000.0,
        hangover_ms: float = 200.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (callable(getattr(audio_out, "push", None)) and callable(getattr(audio_out, "clear", None))):
            raise TypeError("audio_out must have push(bytes) and clear() methods")
        if not max_buffer_ms >= 20:
            raise ValueError(f"max_buffer_ms must be >= 20, got {max_buffer_ms!r}")
        source_rate = getattr(audio_out, "sample_rate", sample_rate)
        if source_rate != sample_rate:
            raise ValueError(f"audio_out plays {source_rate} Hz but VoiceOut was given sample_rate={sample_rate}")
        self.audio_out = audio_out
        self.sample_rate = sample_rate
        self.max_buffer_ms = float(max_buffer_ms)
        if not 0 <= silence_skip_ms <= max_buffer_ms:
            raise ValueError(f"silence_skip_ms must be within 0..max_buffer_ms, got {silence_skip_ms!r}")
        if not max_burst_ms >= max_buffer_ms:
            raise ValueError(f"max_burst_ms must be >= max_buffer_ms, got {max_burst_ms!r}")
        if not cap_window_ms >= 0 or not hangover_ms >= 0:
            raise ValueError(f"cap_window_ms and hangover_ms must be >= 0, got {cap_window_ms!r}, {hangover_ms!r}")
        self._cap = int(sample_rate * max_buffer_ms / 1000)
        self._burst_cap = int(sample_rate * max_burst_ms / 1000)
        self._cap_window_s = cap_window_ms / 1000
        self._above_since: float | None = None  # when the buffer last rose above the cap
        self._hangover = int(sample_rate * hangover_ms / 1000)
        self._since_voiced = self._hangover  # samples of silence since the last voiced frame
        self._skip_above = int(sample_rate * silence_skip_ms / 1000)
        self._skipped = 0
        self._clock = clock
        self._gauge: _FifoGauge | _BucketGauge = (
            _FifoGauge(audio_out) if _is_pcm_source(audio_out) else _BucketGauge(audio_out, sample_rate, clock)
        )
        self.exact_gauge = isinstance(self._gauge, _FifoGauge)
        self._lock = threading.Lock()
        self._mono = MonoS16(sample_rate)
        self._levels: deque[tuple[float, float, int]] = deque()  # (time, sum of squares, samples)
        self._frames = 0
        self._pushed = 0
        self._dropped = 0
        self._clears = 0
        self._bad = 0
        self._next_by: float | None = None  # inside an utterance: the next frame is due by then
        self._underruns = 0
        self._starved_s = 0.0
        # told each frame of the voice as received (mono s16), before any of it is skipped or dropped
        self.on_voice: Callable[[np.ndarray], None] | None = None

    # ------------------------------------------------------------------ API

    def push_frame(self, frame: av.AudioFrame) -> None:
        """Convert one decoded frame and hand it to ``audio_out``, keeping the cap."""
        pcm = self._mono.convert(frame)
        if self.on_voice is not None:
            self.on_voice(pcm)
        now = self._clock()
        f = pcm.astype(np.float32) / 32768.0
        energy = float(np.dot(f, f))
        with self._lock:
            self._frames += 1
            if pcm.size:
                self._levels.append((now, energy, int(pcm.size)))
            while self._levels and now - self._levels[0][0] > _LEVEL_WINDOW_S:
                self._levels.popleft()
        if not pcm.size:
            return
        queued = self._gauge.queued()
        cap = self._cap_now(queued, now)
        if energy <= _SILENCE_RMS**2 * pcm.size:
            with self._lock:
                self._since_voiced += pcm.size
                pause = self._since_voiced > self._hangover  # between utterances: let the buffer run out
                skip = pause or queued > self._skip_above
                if skip:
                    self._skipped += pcm.size
                self._arrived(now, None if pause else queued)
            if skip:
                if queued > cap:  # a standing backlog in a long pause: trim it all the same
                    dropped = self._gauge.trim(cap)
                    with self._lock:
                        self._dropped += dropped
                return
        else:
            with self._lock:
                self._since_voiced = 0
        dropped = self._gauge.push_capped(pcm, cap)
        with self._lock:
            self._pushed += pcm.size
            self._dropped += dropped
            self._arrived(now, queued + pcm.size - dropped)

    def _arrived(self, now: float, buffered: int | None) -> None:
        """Count an underrun if this frame came after the buffer ran dry; ``buffered``: samples
        queued after it (None: between utterances, nothing to keep up). Under ``self._lock``."""
        due = self._next_by
        if buffered is None:  # what ran out, if anything did, was the utterance's tail of silence
            self._next_by = None
            return
        if due is not None and now > due:
            self._underruns += 1
            self._starved_s += min(now - due, _MAX_GAP_S)
        self._next_by = now + buffered / self.sample_rate + _FRAME_S

    def _cap_now(self, queued: int, now: float) -> int:
        """The cap for this push: the burst ceiling, or ``max_buffer_ms`` once a backlog stood."""
        if queued <= self._cap:
            self._above_since = None
            return self._burst_cap
        if self._above_since is None:
            self._above_since = now
        if now - self._above_since >= self._cap_window_s:
            self._above_since = None
            return self._cap
        return self._burst_cap

    def clear(self) -> None:
        """Drop everything buffered (barge-in, Interrupt). Thread-safe."""
        self.audio_out.clear()
        self._gauge.cleared()
        with self._lock:
            self._clears += 1
            self._levels.clear()
            self._since_voiced = self._hangover
            self._above_since = None
            self._next_by = None

    async def run(self, track: MediaStreamTrack, active: Callable[[], bool] | None = None) -> None:
        """Relay ``track`` until it ends (MediaStreamError). Cancel the task to stop early.

        With ``active``, frames arriving while it returns False are read and dropped: a call being
        readied to take over (a rollover) is drained, so no backlog plays when it does."""
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if not isinstance(frame, av.AudioFrame) or (active is not None and not active()):
                continue
            try:
                self.push_frame(frame)
            except Exception:
                with self._lock:
                    self._bad += 1
                    first = self._bad == 1
                if first:
                    logger.exception("VoiceOut: skipped a frame it could not convert")

    def buffer_ms(self) -> float:
        return self._gauge.queued() * 1000 / self.sample_rate

    def level(self) -> float:
        now = self._clock()
        with self._lock:
            recent = [(s, n) for t, s, n in self._levels if now - t <= _LEVEL_WINDOW_S]
        total = sum(n for _, n in recent)
        return float(np.sqrt(sum(s for s, _ in recent) / total)) if total else 0.0

    def stats(self) -> VoiceStats:
        buffered = self.buffer_ms()
        level = self.level()
        with self._lock:
            return VoiceStats(
                frames=self._frames,
                pushed_ms=self._pushed * 1000 / self.sample_rate,
                dropped_ms=self._dropped * 1000 / self.sample_rate,
                skipped_silence_ms=self._skipped * 1000 / self.sample_rate,
                current_buffer_ms=buffered,
                level=level,
                clears=self._clears,
                bad_frames=self._bad,
                underruns=self._underruns,
                starved_ms=self._starved_s * 1000,
            )
