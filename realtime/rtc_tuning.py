"""Low-latency audio receive for aiortc peers: the one place that touches aiortc's jitter buffer.

aiortc (1.x, pinned) gives every audio ``RTCRtpReceiver`` a ``JitterBuffer(capacity=16,
prefetch=4)``: a frame is handed to the decoder only once 4 more frames are stored behind
it, so each receive hop holds about 80 ms. A bridged conversation has two more receive hops
than a direct one (the server's browser leg receiving the mic, the bridge receiving the
voice), so that alone is ~160 ms of the bridge's added latency. Loopback and datacentre
links hardly reorder, and the receivers behind these hops feed our own queues (MicTrack,
VoiceOut's capped buffer) that absorb jitter anyway, so we ask for 1 frame instead: a frame
is released as soon as the next packet proves it complete (20 ms).

aiortc has no public knob for this. The buffer is the name-mangled private attribute
``RTCRtpReceiver._RTCRtpReceiver__jitter_buffer`` and its prefetch is ``_prefetch``, which
``JitterBuffer._remove_frame`` reads on every packet, so changing it is safe at any time,
before or during reception. `tune_receiver` checks both exist and raises
`RtcTuningError` otherwise (a test pins this, so an aiortc upgrade that changes them fails
loudly instead of silently restoring the latency).

The app applies it to its streamlit-webrtc leg with `tune_streamlit_webrtc(ctx)` (the
``webrtc_streamer`` context, once ``ctx.state.playing``); the Bridge tunes its own peer.
"""

from __future__ import annotations

import logging
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpReceiver
from aiortc.jitterbuffer import JitterBuffer

__all__ = ["AUDIO_PREFETCH", "RtcTuningError", "tune_receiver", "tune_peer_connection", "tune_streamlit_webrtc"]

log = logging.getLogger(__name__)

AUDIO_PREFETCH = 1  # frames held behind the one released (aiortc's default: 4)
_ATTR = "_RTCRtpReceiver__jitter_buffer"


class RtcTuningError(RuntimeError):
    """aiortc's receiver no longer looks like the version this module was written for."""


def tune_receiver(receiver: RTCRtpReceiver, prefetch: int = AUDIO_PREFETCH) -> bool:
    """Lower an audio receiver's jitter-buffer prefetch. Returns False for video (left alone)."""
    if not isinstance(receiver, RTCRtpReceiver):
        raise TypeError(f"tune_receiver() takes an aiortc RTCRtpReceiver, got {type(receiver).__name__}")
    if not 0 <= prefetch <= 4:
        raise ValueError(f"prefetch must be within 0..4, got {prefetch!r}")
    buffer = getattr(receiver, _ATTR, None)
    if not isinstance(buffer, JitterBuffer) or not isinstance(getattr(buffer, "_prefetch", None), int):
        raise RtcTuningError(
            "aiortc's RTCRtpReceiver has no JitterBuffer with an int _prefetch at "
            f"{_ATTR}; realtime/rtc_tuning.py must be updated for this aiortc version"
        )
    if getattr(buffer, "_is_video", False):
        return False
    buffer._prefetch = int(prefetch)
    return True


def tune_peer_connection(pc: RTCPeerConnection, prefetch: int = AUDIO_PREFETCH) -> int:
    """Tune every audio receiver of ``pc`` (call again after new transceivers). Returns how many."""
    return sum(tune_receiver(r, prefetch) for r in pc.getReceivers())


def tune_streamlit_webrtc(ctx: Any, prefetch: int = AUDIO_PREFETCH) -> int:
    """Tune the server side of a streamlit-webrtc leg (its ``webrtc_streamer(...)`` context).

    streamlit-webrtc (0.79) keeps the peer on its worker (``ctx._get_worker().pc``), with no
    public accessor. Returns the number of audio receivers tuned (0 when no worker is
    running yet: call it when ``ctx.state.playing``; repeating it is cheap and harmless).
    Never raises into the page: a mismatch is logged once per call and 0 returned.
    """
    try:
        worker = ctx._get_worker()
        pc = getattr(worker, "pc", None) if worker is not None else None
        if not isinstance(pc, RTCPeerConnection):
            return 0
        return tune_peer_connection(pc, prefetch)
    except Exception as exc:  # noqa: BLE001 - latency tuning must never break the page
        log.warning("could not tune the browser leg's audio receive: %s", exc)
        return 0
