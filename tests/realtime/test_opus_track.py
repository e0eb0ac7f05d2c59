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


def silence(i: int, layout: str = "mono") -> av.AudioFrame:
    frame = tone(i, layout=layout, amplitude=0)
    assert not frame.to_ndarray().any()
    return frame


def decode_all(packets: list[bytes]) -> np.ndarray:
    decoder = OpusDecoder()
    out = [
        frame.to_ndarray().reshape(-1, 2)[:, 0]
        for i, data in enumerate(packets)
        for frame in decoder.decode(JitterFrame(data=data, timestamp=i * 960))
        if isinstance(frame, av.AudioFrame)
    ]
    return np.concatenate(out)


@pytest.mark.parametrize("layout", ["stereo", "mono"])
def test_a_long_silence_is_copied_not_encoded_and_what_follows_it_decodes_the_same(layout):
    """The listener hears no difference: the speech after 500 copied silence packets decodes to the very
    samples it decodes to after the few the encoder made itself."""
    voice = OpusVoice()
    speech = [bytes(voice.packet(tone(i, hz=300 + 40 * (i % 7), layout=layout))) for i in range(25)]
    made: list[bytes] = []
    while len(made) < 2 or made[-1] != made[-2]:  # the encoder flushes its look-ahead, then repeats itself
        assert len(made) < 20, "the encoder never settled on one silence packet"
        made.append(bytes(voice.packet(silence(25 + len(made), layout))))
    settled = voice.encoded
    copied = [voice.packet(silence(25 + len(made) + i, layout)) for i in range(500)]
    assert voice.encoded == settled  # no frame of the long silence went through libopus
    assert {bytes(p) for p in copied} == {made[-1]} and len(made[-1]) <= 3
    assert [p.pts for p in copied] == [(25 + len(made) + i) * 960 for i in range(500)]  # time runs on
    after = [bytes(voice.packet(tone(1000 + i, hz=500, layout=layout))) for i in range(20)]
    assert voice.encoded == settled + 20  # speech is encoded again at once

    with_copies = decode_all(speech + made + [bytes(p) for p in copied] + after)
    without = decode_all(speech + made + after)
    tail = 20 * 960
    assert np.array_equal(with_copies[-tail:], without[-tail:])
    assert np.sqrt(np.mean(with_copies[-tail:].astype(np.float64) ** 2)) > 5000  # and it is the loud tone
