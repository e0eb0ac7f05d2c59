"""Audio frames to mono s16 samples at one rate: what the mic track and the voice relay both need."""

from __future__ import annotations

import threading

import av
import numpy as np

__all__ = ["MonoS16"]


class MonoS16:
    """``convert(frame)`` -> int16 mono samples at ``rate``. The browser's own frames (s16, stereo or
    mono, at ``rate``) take a cheap average; anything else (planar, float, other rates or layouts)
    goes through libswresample. Thread-safe."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._lock = threading.Lock()  # the resampler keeps state between frames
        self._resampler: av.AudioResampler | None = None

    def convert(self, frame: av.AudioFrame) -> np.ndarray:
        fmt, layout = frame.format.name, frame.layout.name
        if fmt == "s16" and frame.sample_rate == self.rate and layout in ("stereo", "mono"):
            pcm = frame.to_ndarray().reshape(-1)
            if layout == "mono":
                return pcm.astype(np.int16, copy=True)
            pairs = pcm.reshape(-1, 2).astype(np.int32)
            return ((pairs[:, 0] + pairs[:, 1]) // 2).astype(np.int16)
        with self._lock:
            if self._resampler is None:
                self._resampler = av.AudioResampler(format="s16", layout="mono", rate=self.rate)
            out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        return np.concatenate(out).astype(np.int16) if out else np.zeros(0, np.int16)
