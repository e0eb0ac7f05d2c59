"""Voice sent as Opus packets we encode ourselves: mono, continuous timestamps, and a real aiortc peer
hears the same tone that went in."""

from __future__ import annotations

import asyncio
import fractions

import av
import numpy as np
import pytest
from aiortc import RTCPeerConnection
from aiortc.codecs.opus import OpusDecoder
from aiortc.jitterbuffer import JitterFrame

from realtime.mic_track import MicTrack
from realtime.opus_track import EncodedVoice, OpusVoice

RATE = 48000


def tone(i: int, hz: float = 440.0, layout: str = "stereo", amplitude: int = 12000) -> av.AudioFrame:
    """Frame ``i`` (20 ms) of a continuous tone, as the browser's leg delivers audio (s16, interleaved)."""
    t = (np.arange(960) + i * 960) / RATE
    mono = (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)
    pcm = np.repeat(mono, 2) if layout == "stereo" else mono
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout=layout)
    frame.sample_rate = RATE
    frame.pts = i * 960
    frame.time_base = fractions.Fraction(1, RATE)
    return frame


def peak_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / RATE)[int(np.argmax(spectrum))])


@pytest.mark.parametrize("layout", ["stereo", "mono"])
def test_each_frame_is_one_mono_packet_at_speech_bitrate_and_decodes_to_the_same_tone(layout):
    """One packet per frame at once, stamped with the frame's pts: a track may switch to packets mid-call."""
    voice = OpusVoice()
    decoder = OpusDecoder()  # what the browser and aiortc decode with: opus/48000/2
    packets, heard = [], []
    for i in range(100):
        packet = voice.packet(tone(i + 7, layout=layout))  # a track that switches mid-call: pts from 7 frames in
        packets.append(packet)
        for frame in decoder.decode(JitterFrame(data=bytes(packet), timestamp=packet.pts or 0)):
            assert isinstance(frame, av.AudioFrame)
            heard.append(frame.to_ndarray().reshape(-1, 2)[:, 0])
    assert [p.pts for p in packets] == [(i + 7) * 960 for i in range(100)]  # the frames' own: no jump
    assert all(bytes(p)[0] & 0x04 == 0 for p in packets)  # TOC byte: mono
    kbps = sum(len(bytes(p)) for p in packets) * 8 / (len(packets) * 0.02) / 1000
    assert kbps < 64, f"{kbps:.0f} kb/s"  # aiortc's own encoder: 96 kb/s
    pcm = np.concatenate(heard[10:]).astype(np.float64)
    assert np.sqrt(np.mean(pcm**2)) > 5000  # the 12000-amplitude tone is still loud
    assert abs(peak_hz(pcm) - 440) < 10


async def test_a_real_peer_hears_the_tone_sent_as_packets():
    sender, receiver = RTCPeerConnection(), RTCPeerConnection()
    source = MicTrack()  # a paced track we can feed, as the mic is
    track = EncodedVoice(source)
    got: asyncio.Future = asyncio.get_running_loop().create_future()

    def on_track(t) -> None:
        if not got.done():
            got.set_result(t)

    receiver.on("track", on_track)
    try:
        sender.addTrack(track)
        await sender.setLocalDescription(await sender.createOffer())
        await receiver.setRemoteDescription(sender.localDescription)
        await receiver.setLocalDescription(await receiver.createAnswer())
        await sender.setRemoteDescription(receiver.localDescription)
        remote = await asyncio.wait_for(got, 10)
        heard = []
        for i in range(150):
            source.push(tone(i))
            frame = await asyncio.wait_for(remote.recv(), 5)
            heard.append(frame.to_ndarray().reshape(-1, 2)[:, 0])
        pcm = np.concatenate(heard[-100:]).astype(np.float64)
        assert np.sqrt(np.mean(pcm**2)) > 5000
        assert abs(peak_hz(pcm) - 440) < 10
    finally:
        track.stop()
        await sender.close()
        await receiver.close()
    assert source.readyState == "ended"  # stopping the packets stops the voice they came from


def test_frames_that_are_not_20_ms_at_48_khz_are_refused():
    frame = av.AudioFrame.from_ndarray(np.zeros((1, 480), np.int16), format="s16", layout="mono")
    frame.sample_rate = 24000
    with pytest.raises(ValueError, match="20 ms frames at 48 kHz"):
        OpusVoice().packet(frame)
