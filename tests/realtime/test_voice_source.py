"""voice_source.just_in_time: the browser leg's voice track takes each frame when it is due."""

from __future__ import annotations

import asyncio
import inspect
import time

import av
import numpy as np
import pytest
from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamError
from streamlit_webrtc.pcm_source import PcmAudioSource
from streamlit_webrtc.source import AudioSourceTrack

from realtime.codecs import offer_only
from realtime.voice_gate import VoiceGate
from realtime.voice_source import JustInTimeAudioTrack, just_in_time, send_voice_as_opus, voice_track

LOUD = np.full(960, 9000, np.int16)


def pcm(frame: av.frame.Frame) -> np.ndarray:
    """An audio frame's samples (recv() is typed as any media frame)."""
    assert isinstance(frame, av.AudioFrame)
    return frame.to_ndarray()


def test_streamlit_webrtc_still_reads_its_buffer_a_period_early_and_keeps_the_state_we_use():
    """Fails when a streamlit-webrtc upgrade changes what JustInTimeAudioTrack relies on."""
    recv = inspect.getsource(AudioSourceTrack.recv)
    assert recv.index("self._call_callback") < recv.index("await asyncio.sleep")
    track = AudioSourceTrack(
        callback=lambda pts, tb: av.AudioFrame(format="s16", layout="mono", samples=960), sample_rate=48000
    )
    for name in ("_started_at", "_pts", "_samples_per_frame", "_sample_rate", "_ptime", "_time_base", "_call_callback"):
        assert hasattr(track, name), name
    track.stop()


async def _first_loud_frame(source: PcmAudioSource) -> int:
    """Push 20 ms of voice while the track waits for its next frame; which frame carries it?"""
    track = source.track
    try:
        await track.recv()  # frame 0: the clock starts
        pending = asyncio.ensure_future(track.recv())  # frame 1: due in 20 ms
        await asyncio.sleep(0.005)
        source.push(LOUD)  # the assistant's first word arrives meanwhile
        frames = [await pending] + [await track.recv() for _ in range(2)]
        return next(i + 1 for i, f in enumerate(frames) if np.abs(pcm(f)).max() > 1000)
    finally:
        track.stop()


async def test_voice_pushed_while_the_track_waits_goes_out_in_that_frame_not_the_next():
    assert await _first_loud_frame(PcmAudioSource(sample_rate=48000)) == 2  # as shipped: a period late
    assert await _first_loud_frame(just_in_time(PcmAudioSource(sample_rate=48000))) == 1


async def test_the_track_stays_paced_continuous_and_stoppable():
    source = just_in_time(PcmAudioSource(sample_rate=48000))
    track = source.track
    assert isinstance(track, JustInTimeAudioTrack) and just_in_time(source) is source  # idempotent
    ended = []
    track._on_ended_callback = lambda: ended.append(True)
    t0 = time.monotonic()
    frames = [await track.recv() for _ in range(26)]
    assert 0.48 <= time.monotonic() - t0 < 0.9  # 25 x 20 ms after the first frame
    assert [f.pts for f in frames] == [i * 960 for i in range(26)]
    assert all(isinstance(f, av.AudioFrame) and f.samples == 960 and f.sample_rate == 48000 for f in frames)
    pending = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0)
    track.stop()
    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(pending, 1)
    assert ended == [True]


def test_only_a_pcm_audio_source_is_accepted():
    with pytest.raises(TypeError, match="PcmAudioSource"):
        just_in_time(object())  # type: ignore[arg-type]


async def test_frames_read_late_because_the_loop_was_busy_are_counted():
    source = just_in_time(PcmAudioSource(sample_rate=48000))
    track = source.track
    assert isinstance(track, JustInTimeAudioTrack)
    try:
        for _ in range(5):
            await track.recv()
        before = track.late_frames
        time.sleep(0.3)  # this loop is busy for 300 ms: the frames due meanwhile go out late
        for _ in range(20):
            await track.recv()
        late = track.late_frames - before
        assert 10 <= late <= 20  # ~14 frames fell due during the stall and were read over 20 ms late
        assert track.frames_read == 25
        assert track.late_s == pytest.approx(track.late_frames * 0.02)
    finally:
        track.stop()


def test_the_bridge_finds_the_track_behind_its_sink():
    source = just_in_time(PcmAudioSource(sample_rate=48000))
    assert voice_track(source) is source.track
    assert voice_track(VoiceGate(source)) is source.track  # the app's sink: a gate in front of the source
    assert voice_track(PcmAudioSource(sample_rate=48000)) is None  # not made just in time
    assert voice_track(object()) is None
    source.track.stop()


@pytest.mark.parametrize(("codec", "packets"), [("opus", True), ("pcmu", False)])
async def test_once_the_leg_settled_on_opus_the_voice_goes_as_packets_without_a_timestamp_jump(codec, packets):
    offerer, answerer = RTCPeerConnection(), RTCPeerConnection()
    source = just_in_time(PcmAudioSource(sample_rate=48000))
    track = source.track
    try:
        offer_only(offerer.addTransceiver("audio", direction="recvonly"), codec)
        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(offerer.localDescription)
        answerer.addTrack(track)
        await answerer.setLocalDescription(await answerer.createAnswer())
        before = [await track.recv() for _ in range(3)]  # the call's first frames, as raw frames
        assert send_voice_as_opus(answerer, track) is packets
        assert send_voice_as_opus(answerer, object()) is False  # not the leg's voice track
        after = [await track.recv() for _ in range(3)]
    finally:
        track.stop()
        await offerer.close()
        await answerer.close()
    assert all(isinstance(f, av.AudioFrame) for f in before)
    assert all(isinstance(p, av.Packet) is packets for p in after)
    assert [x.pts for x in before + after] == [i * 960 for i in range(6)]  # the RTP clock runs on
