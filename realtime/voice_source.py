"""The browser leg's voice source: streamlit-webrtc's PcmAudioSource, read when each frame is due.

streamlit-webrtc's ``AudioSourceTrack.recv()`` (0.79) takes the next 20 ms from its buffer
*first* and then sleeps until that frame's time: the sender calls ``recv()`` right after the
previous frame went out, so every frame is taken one whole period before it is sent. The
assistant's first word, landing in the buffer, waits for the next read (10 ms on average) and
then 20 ms more. `just_in_time(source)` makes a ``PcmAudioSource``'s track sleep first and
read the buffer when the frame is due: 20 ms less on the voice path, nothing else changes
(same ``push``/``clear``, same buffer, so `VoiceOut` measures and caps it exactly as before).

It changes the class of the *existing* track object (to `JustInTimeAudioTrack`, a subclass
that only overrides ``recv``; its two counters start from class defaults), so whatever holds that track keeps it:
``create_pcm_audio_source_track``'s session cache and lifecycle observers, the sender it was
given to. The app calls it on what the factory returns, before ``webrtc_streamer``:

    voice_out = just_in_time(create_pcm_audio_source_track(key=..., sample_rate=48000))

The track also counts the frames it read more than a frame late (`late_frames`): it runs on the
browser leg's loop (the Streamlit server's), so that is how late the voice went to the browser,
one of the signals of ``realtime.overload``. `voice_track(audio_out)` finds it behind a bridge's sink.
"""

from __future__ import annotations

import asyncio
import time

import av
from aiortc.mediastreams import MediaStreamError
from streamlit_webrtc.pcm_source import PcmAudioSource
from streamlit_webrtc.source import AudioSourceTrack

__all__ = ["JustInTimeAudioTrack", "just_in_time", "voice_track"]


class JustInTimeAudioTrack(AudioSourceTrack):
    """An ``AudioSourceTrack`` that calls its callback when the frame is due, not a period early."""

    # class defaults: `just_in_time` swaps the class of a track whose __init__ has run already
    frames_read = 0
    late_frames = 0  # frames read more than a frame's time after they were due

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._started_at is None or self._pts is None:
            self._started_at = time.monotonic()
            self._pts = 0
        else:
            self._pts += self._samples_per_frame
            due = self._started_at + self._pts / self._sample_rate
            now = time.monotonic()
            if due > now:
                await asyncio.sleep(due - now)
                now = time.monotonic()
            if now - due > self._ptime:
                self.late_frames += 1
            if self.readyState != "live":
                raise MediaStreamError
        self.frames_read += 1
        return self._call_callback(self._pts, self._time_base)

    @property
    def late_s(self) -> float:
        """Audio time of the frames read late, so far."""
        return self.late_frames * self._samples_per_frame / self._sample_rate


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


def voice_track(audio_out: object) -> JustInTimeAudioTrack | None:
    """The just-in-time track that plays ``audio_out`` (a PcmAudioSource, or a ``VoiceGate`` in front
    of one), or None when it plays through anything else (a test sink, a source left as it was)."""
    source = getattr(audio_out, "source", audio_out)  # VoiceGate keeps the source it fronts there
    track = getattr(source, "track", None)
    return track if isinstance(track, JustInTimeAudioTrack) else None
