"""Which audio codec the upstream leg offers: Opus (the default) or a phone line's G.711 (PCMU, PCMA).

People pick a phone codec to hear how their agent sounds on a telephone: 8 kHz, narrow band.
``offer_only(transceiver, codec)`` limits the SDP offer to that codec (aiortc's codec preferences);
``negotiated_codec(sdp)`` reads back what the answer settled on, for Diagnostics.
"""

from __future__ import annotations

from typing import Literal

from aiortc import RTCRtpSender, RTCRtpTransceiver
from aiortc.sdp import SessionDescription

__all__ = ["CODECS", "AudioCodec", "negotiated_codec", "offer_only"]

AudioCodec = Literal["opus", "pcmu", "pcma"]
CODECS: tuple[AudioCodec, ...] = ("opus", "pcmu", "pcma")
_MIME: dict[AudioCodec, str] = {"opus": "audio/opus", "pcmu": "audio/PCMU", "pcma": "audio/PCMA"}


def offer_only(transceiver: RTCRtpTransceiver, codec: AudioCodec) -> None:
    """Offer ``codec`` alone on ``transceiver`` (call before ``createOffer``)."""
    wanted = _MIME[codec].lower()
    capabilities = RTCRtpSender.getCapabilities("audio").codecs
    chosen = [c for c in capabilities if c.mimeType.lower() == wanted]
    if not chosen:  # aiortc always has all three; a build without one must not send an empty offer
        raise ValueError(f"this aiortc cannot send {codec}")
    transceiver.setCodecPreferences(chosen)


def negotiated_codec(sdp: str | None) -> str | None:
    """The audio codec an SDP answer settled on: its first audio codec ("opus", "PCMU", "PCMA")."""
    if not sdp:
        return None
    try:
        description = SessionDescription.parse(sdp)
    except (ValueError, IndexError, KeyError):
        return None
    for media in description.media:
        if media.kind == "audio" and media.rtp.codecs:
            return media.rtp.codecs[0].mimeType.split("/", 1)[-1]
    return None
