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

Once the leg has settled on Opus, `send_voice_as_opus(pc, track)` makes the track hand its sender Opus
packets it encodes itself, mono, on the loop (``realtime.opus_track``): aiortc would hop to a thread
pool for every 20 ms frame and encode it as stereo.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import av
from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamError
from streamlit_webrtc.pcm_source import PcmAudioSource
from streamlit_webrtc.source import AudioSourceTrack

from realtime.codecs import negotiated_codec
from realtime.opus_track import OpusVoice

if TYPE_CHECKING:
    from realtime.opus_track import Packet

__all__ = ["JustInTimeAudioTrack", "just_in_time", "send_voice_as_opus", "voice_track"]


class JustInTimeAudioTrack(AudioSourceTrack):
    """An ``AudioSourceTrack`` that calls its callback when the frame is due, not a period early."""

    # class defaults: `just_in_time` swaps the class of a track whose __init__ has run already
    frames_read = 0
    late_frames = 0  # frames read more than a frame's time after they were due
    opus: OpusVoice | None = None  # set by `send_voice_as_opus`: packets instead of frames

    async def recv(self) -> av.AudioFrame | Packet:  # type: ignore[override]  # aiortc's sender takes both
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
        frame = self._call_callback(self._pts, self._time_base)
        opus = self.opus
        return frame if opus is None else opus.packet(frame)

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


def send_voice_as_opus(pc: RTCPeerConnection, track: object) -> bool:
    """Make ``track`` (the leg's voice, a `JustInTimeAudioTrack`) send Opus packets it encodes itself,
    when ``pc``'s answer settled on Opus. Returns whether it does; safe to call again, and mid-call
    (the packets keep the frames' timestamps)."""
    answer = pc.localDescription
    if not isinstance(track, JustInTimeAudioTrack) or answer is None or negotiated_codec(answer.sdp) != "opus":
        return False
    if track.opus is None:
        track.opus = OpusVoice()
    return True
