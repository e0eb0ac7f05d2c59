"""rtc_tuning: the audio receivers' jitter buffer releases a frame after 1 more, not 4."""

from __future__ import annotations

import asyncio
import fractions
import inspect

import av
import numpy as np
import pytest
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpReceiver
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket

from realtime.rtc_tuning import (
    AUDIO_PREFETCH,
    RtcTuningError,
    tune_peer_connection,
    tune_receiver,
    tune_streamlit_webrtc,
)


def jitter_buffer(receiver: RTCRtpReceiver) -> JitterBuffer:
    return receiver._RTCRtpReceiver__jitter_buffer


def test_aiortc_still_has_the_private_buffer_this_module_tunes():
    """Fails when an aiortc upgrade moves or renames what tune_receiver changes."""
    source = inspect.getsource(RTCRtpReceiver.__init__)
    assert "self.__jitter_buffer = JitterBuffer(capacity=16, prefetch=4)" in source
    assert "self._prefetch" in inspect.getsource(JitterBuffer._remove_frame)


def packet(seq: int) -> RtpPacket:
    p = RtpPacket(payload_type=111, sequence_number=seq, timestamp=seq * 960, payload=b"x")
    p._data = b"x"  # what the receiver sets after depacketizing
    return p


def frames_released(buffer: JitterBuffer, packets: int) -> int:
    return sum(buffer.add(packet(seq))[1] is not None for seq in range(packets))


def test_prefetch_one_releases_each_frame_one_packet_later_instead_of_four():
    assert frames_released(JitterBuffer(capacity=16, prefetch=4), 5) == 1  # aiortc: 80 ms held
    assert frames_released(JitterBuffer(capacity=16, prefetch=AUDIO_PREFETCH), 5) == 4  # ours: 20 ms


async def test_tunes_the_audio_receivers_of_a_peer_and_leaves_video_alone():
    pc = RTCPeerConnection()
    try:
        audio = pc.addTransceiver("audio", direction="sendrecv")
        video = pc.addTransceiver("video", direction="recvonly")
        assert tune_peer_connection(pc) == 1
        assert jitter_buffer(audio.receiver)._prefetch == AUDIO_PREFETCH
        assert jitter_buffer(video.receiver)._prefetch == 0 and jitter_buffer(video.receiver).capacity == 512
        assert tune_peer_connection(pc) == 1  # idempotent
        with pytest.raises(ValueError):
            tune_receiver(audio.receiver, prefetch=9)
        with pytest.raises(TypeError):
            tune_receiver(object())  # type: ignore[arg-type]
    finally:
        await pc.close()


async def test_a_receiver_without_the_expected_buffer_is_a_clear_error():
    pc = RTCPeerConnection()
    try:
        receiver = pc.addTransceiver("audio").receiver
        receiver._RTCRtpReceiver__jitter_buffer = None
        with pytest.raises(RtcTuningError, match="rtc_tuning.py must be updated"):
            tune_receiver(receiver)
    finally:
        await pc.close()


class _Clicks(MediaStreamTrack):
    """A 20 ms frame every 20 ms: silence, with one loud frame at frame `click`."""

    kind = "audio"

    def __init__(self, click: int) -> None:
        super().__init__()
        self.n, self.click, self.click_sent_at = 0, click, None

    async def recv(self) -> av.AudioFrame:
        await asyncio.sleep(0.02)
        loud = self.n == self.click
        pcm = np.full((1, 960), 12000 if loud else 0, np.int16)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 48000, self.n * 960, fractions.Fraction(1, 48000)
        if loud:
            self.click_sent_at = asyncio.get_running_loop().time()
        self.n += 1
        return frame


async def _click_delay_ms(tune: bool) -> float:
    sender, receiver = RTCPeerConnection(), RTCPeerConnection()
    track = _Clicks(click=40)
    got: asyncio.Future = asyncio.get_running_loop().create_future()
    receiver.on("track", lambda t: got.done() or got.set_result(t))
    try:
        sender.addTrack(track)
        await sender.setLocalDescription(await sender.createOffer())
        await receiver.setRemoteDescription(sender.localDescription)
        if tune:
            tune_peer_connection(receiver)
        await receiver.setLocalDescription(await receiver.createAnswer())
        await sender.setRemoteDescription(receiver.localDescription)
        remote = await asyncio.wait_for(got, 10)
        while True:
            frame = await asyncio.wait_for(remote.recv(), 5)
            if np.abs(frame.to_ndarray()).max() > 3000:
                return (asyncio.get_running_loop().time() - track.click_sent_at) * 1000
    finally:
        await sender.close()
        await receiver.close()


async def test_a_tuned_receiver_hands_audio_over_about_60_ms_sooner():
    """Over a real loopback peer connection: what a listener would notice."""
    default = min([await _click_delay_ms(tune=False) for _ in range(2)])
    tuned = min([await _click_delay_ms(tune=True) for _ in range(2)])
    assert default - tuned > 35, (default, tuned)  # 3 frames = 60 ms less, with margin for a busy machine
    assert tuned < 60, tuned


def test_tune_streamlit_webrtc_reaches_the_worker_peer_and_never_raises():
    from streamlit_webrtc.component import WebRtcStreamerContext
    from streamlit_webrtc.webrtc import WebRtcWorker

    # streamlit-webrtc still keeps the peer where tune_streamlit_webrtc looks for it
    assert callable(WebRtcStreamerContext._get_worker)
    assert "self.pc = RTCPeerConnection(" in inspect.getsource(WebRtcWorker.__init__)

    class NoWorker:
        def _get_worker(self):
            return None

    assert tune_streamlit_webrtc(NoWorker()) == 0
    assert tune_streamlit_webrtc(object()) == 0  # not a context at all: logged, not raised
