"""What the Diagnostics page shows of the upstream peer: aiortc's stats report read into one value."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from realtime.mic_track import MicStats
from realtime.voice_out import VoiceStats

__all__ = ["RtcStats", "read_rtc_stats"]


@dataclass(frozen=True)
class RtcStats:
    rtt_ms: float | None = None
    jitter_ms: float | None = None
    packets_sent: int = 0
    packets_received: int = 0
    packets_lost: int = 0
    mic_level: float = 0.0  # rms of the mic sent upstream, 0..1
    voice_level: float = 0.0  # rms of the assistant's voice received, 0..1
    voice_buffer_ms: float = 0.0
    voice_dropped_ms: float = 0.0
    codec: str | None = None  # the audio codec the call negotiated: "opus", "PCMU", "PCMA"
    voice_underruns: int = 0  # times the assistant's voice ran out mid-reply (a gap the user heard)
    voice_starved_ms: float = 0.0  # how long, in all (a lower bound)
    mic_late_ms: float = 0.0  # mic audio that arrived too late to be sent on time, in all


def read_rtc_stats(report: Mapping[str, Any], voice: VoiceStats, mic: MicStats, codec: str | None = None) -> RtcStats:
    """``report``: ``RTCPeerConnection.getStats()``; aiortc's stats objects are untyped dataclasses."""
    rtt = jitter = None
    sent = received = lost = 0
    for stat in report.values():
        kind = getattr(stat, "type", "")
        if kind == "remote-inbound-rtp":
            rtt = stat.roundTripTime * 1000 if stat.roundTripTime is not None else rtt
            lost += int(stat.packetsLost or 0)
        elif kind == "inbound-rtp":
            received += int(stat.packetsReceived or 0)
            lost += int(stat.packetsLost or 0)
            jitter = float(stat.jitter) / 48.0 if stat.jitter is not None else jitter  # RTP units at 48 kHz
        elif kind == "outbound-rtp":
            sent += int(stat.packetsSent or 0)
    return RtcStats(
        rtt_ms=rtt,
        jitter_ms=jitter,
        packets_sent=sent,
        packets_received=received,
        packets_lost=lost,
        mic_level=mic.level,
        voice_level=voice.level,
        voice_buffer_ms=voice.current_buffer_ms,
        voice_dropped_ms=voice.dropped_ms,
        codec=codec,
        voice_underruns=voice.underruns,
        voice_starved_ms=voice.starved_ms,
        mic_late_ms=mic.late_ms,
    )
