"""The browser leg's voice source: streamlit-webrtc's PcmAudioSource, read when each frame is due.

streamlit-webrtc's ``AudioSourceTrack.recv()`` (0.79) takes the next 20 ms from its buffer
*first* and then sleeps until that frame's time: the sender calls ``recv()`` right after the
previous frame went out, so every frame is taken one whole period before it is sent. The
assistant's first word, landing in the buffer, waits for the next read (10 ms on average) and
then 20 ms more. `just_in_time(source)` makes a ``PcmAudioSource``'s track sleep first and
read the buffer when the frame is due: 20 ms less on the voice path, nothing else changes
(same ``push``/``clear``, same buffer, so `VoiceOut` measures and caps it exactly as before).

It changes the class of the *existing* track object (to `JustInTimeAudioTrack`, a subclass
that only overrides ``recv`` and adds no state), so whatever holds that track keeps it:
``create_pcm_audio_source_track``'s session cache and lifecycle observers, the sender it was
given to. The app calls it on what the factory returns, before ``webrtc_streamer``:

    voice_out = just_in_time(create_pcm_audio_source_track(key=..., sample_rate=48000))
"""

from __future__ import annotations

import asyncio
import time

import av
from aiortc.mediastreams import MediaStreamError
from streamlit_webrtc.pcm_source import PcmAudioSource
from streamlit_webrtc.source import AudioSourceTrack

__all__ = ["JustInTimeAudioTrack", "just_in_time"]


class JustInTimeAudioTrack(AudioSourceTrack):
    """An ``AudioSourceTrack`` that calls its callback when the frame is due, not a period early."""

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._started_at is None or self._pts is None:
            self._started_at = time.monotonic()
            self._pts = 0
        else:
            self._pts += self._samples_per_frame
            wait = self._started_at + self._pts / self._sample_rate - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if self.readyState != "live":
                raise MediaStreamError
        return self._call_callback(self._pts, self._time_base)


def just_in_time(source: PcmAudioSource) -> PcmAudioSource:
    """Make ``source.track`` read each frame when it is due. Idempotent; returns ``source``."""
    track = getattr(source, "track", None)
    if not isinstance(source, PcmAudioSource) or type(track) not in (AudioSourceTrack, JustInTimeAudioTrack):
        raise TypeError(
            "just_in_time() takes a streamlit-webrtc PcmAudioSource whose track is an AudioSourceTrack, "
            f"got {type(source).__name__} with {type(track).__name__}"
        )
    track.__class__ = JustInTimeAudioTrack
    return source
