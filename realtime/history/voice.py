"""A saved conversation's kept voice: both sides as one WAV in time order, each spoken turn's own
audio, and what the cap left out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from realtime.audio_tape import CLIP_RATE
from realtime.voice_codec import decode_voice, wav_bytes

from .export import format_duration
from .records import ConversationRecord, StoredClip

__all__ = ["MAX_GAP_S", "clip_pcm", "conversation_wav", "voice_note"]

MAX_GAP_S = 2.0  # a longer silence between clips is shortened to this in the conversation's WAV


def clip_pcm(clip: StoredClip) -> bytes:
    """The clip as s16 mono at 24 kHz."""
    return decode_voice(clip.data, CLIP_RATE)


def _timeline(clips: Sequence[StoredClip]) -> list[tuple[int, np.ndarray]]:
    """(sample offset, pcm) per clip: real timing, overlaps kept (a barge-in), long silences cut."""
    placed: list[tuple[int, np.ndarray]] = []
    cut = 0.0  # silence taken out so far, in seconds
    end = 0.0  # the latest end so far, on the shortened timeline
    start0 = clips[0].started_at
    for clip in clips:
        pcm = np.frombuffer(clip_pcm(clip), dtype="<i2")
        at = clip.started_at - start0 - cut
        if at > end + MAX_GAP_S:
            cut += at - (end + MAX_GAP_S)
            at = end + MAX_GAP_S
        placed.append((round(at * CLIP_RATE), pcm))
        end = max(end, at + pcm.size / CLIP_RATE)
    return placed


def conversation_wav(record: ConversationRecord) -> bytes | None:
    """Both sides in time order as one 24 kHz mono WAV (None: no voice was kept)."""
    if not record.audio:
        return None
    placed = _timeline(sorted(record.audio, key=lambda c: (c.started_at, c.seq)))
    mix = np.zeros(max(offset + pcm.size for offset, pcm in placed), dtype=np.int32)
    for offset, pcm in placed:
        mix[offset : offset + pcm.size] += pcm
    return wav_bytes(np.clip(mix, -32768, 32767).astype("<i2").tobytes(), CLIP_RATE)


def voice_note(record: ConversationRecord) -> str | None:
    """For the page: how much voice was kept, and what the cap left out (None: none kept, none cut)."""
    kept = sum(c.seconds for c in record.audio)
    size = sum(len(c.data) for c in record.audio)
    if record.audio_cut_at is not None:
        after = format_duration(record.audio_cut_at - record.summary.started_at)
        return (
            f"Voice kept for the first {after} ({size / 1e6:.1f} MB); the per-conversation cap "
            "(REALTIME_AUDIO_CAP_MB) left out the rest."
        )
    if not record.audio:
        return None
    return f"Voice kept: {format_duration(kept)} in {len(record.audio)} clips ({size / 1e6:.2f} MB)."
