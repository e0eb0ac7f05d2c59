"""MicTrack: browser mic frames in, continuous paced 20 ms mono frames out."""

from __future__ import annotations

import asyncio
import threading
import time

import av
import numpy as np
import pytest
from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamError

from realtime.mic_track import SAMPLES_PER_FRAME, MicTrack


def stereo_frame(left, right=None, *, pts=None, rate=48000) -> av.AudioFrame:
    """A browser-shaped frame: s16 interleaved stereo, 960 samples unless told."""
    left = np.broadcast_to(np.asarray(left, np.int16), (960,)) if np.ndim(left) == 0 else np.asarray(left, np.int16)
    right = left if right is None else np.broadcast_to(np.asarray(right, np.int16), left.shape)
    inter = np.empty(left.size * 2, np.int16)
    inter[0::2], inter[1::2] = left, right
    frame = av.AudioFrame.from_ndarray(inter.reshape(1, -1), format="s16", layout="stereo")
    frame.sample_rate = rate
    if pts is not None:
        frame.pts = pts
    return frame


def tone(n=960, start=0, freq=440.0, amp=8000) -> np.ndarray:
    t = (np.arange(n) + start) / 48000
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def pcm(frame: av.AudioFrame) -> np.ndarray:
    return frame.to_ndarray().reshape(-1)


async def test_frames_are_mono_48k_20ms_with_continuous_pts_whatever_the_browser_sends():
    track = MicTrack()
    try:
        # Browser timestamps that jump around, plus gaps where nothing arrives.
        weird_pts = [0, 960, 50_000, 10, 10, 999_999]
        for i, p in enumerate(weird_pts):
            track.push(stereo_frame(100 * (i + 1), pts=p))
        got = [await track.recv() for _ in range(10)]
        for i, frame in enumerate(got):
            assert frame.pts == i * SAMPLES_PER_FRAME
            assert frame.samples == SAMPLES_PER_FRAME and frame.sample_rate == 48000
            assert frame.layout.name == "mono" and frame.format.name == "s16"
            assert frame.time_base is not None
            assert frame.time_base.denominator == 48000 and frame.time_base.numerator == 1
        # Queued audio comes out in order, then silence fills the gap.
        assert [int(pcm(f)[0]) for f in got] == [100, 200, 300, 400, 500, 600, 0, 0, 0, 0]
        stats = track.stats()
        assert stats.sent_frames == 10 and stats.silence_frames == 4 and stats.pushed_frames == 6
    finally:
        track.stop()


async def test_recv_is_paced_in_real_time():
    track = MicTrack()
    try:
        t0 = time.monotonic()
        for _ in range(26):
            await track.recv()
        elapsed = time.monotonic() - t0
        # No mic audio: the first frame (silence) comes once the 100 ms slack is over, then 25 x 20 ms.
        assert 0.58 <= elapsed < 1.2, elapsed  # loose top: CI machines are busy
    finally:
        track.stop()


async def test_a_stalled_loop_does_not_cause_a_burst_but_pts_stays_continuous():
    now = [1000.0]
    track = MicTrack(clock=lambda: now[0])
    try:
        track.push(stereo_frame(1))
        first = await asyncio.wait_for(track.recv(), 1.0)
        now[0] += 5.0  # the loop was blocked for 5 s
        # Re-anchored: no burst of 250 silence frames to catch up; the next frame waits for the mic...
        task = asyncio.ensure_future(track.recv())
        await asyncio.sleep(0.05)
        assert not task.done()
        track.push(stereo_frame(2))
        second = await asyncio.wait_for(task, 1.0)
        assert set(pcm(second).tolist()) == {2}
        # ...and with no mic audio, a silence frame comes only once it is overdue by the slack.
        task = asyncio.ensure_future(track.recv())
        await asyncio.sleep(0.05)
        assert not task.done()
        now[0] += 0.15  # 20 ms period + 100 ms slack
        third = await asyncio.wait_for(task, 1.0)
        assert not pcm(third).any()
        assert [f.pts for f in (first, second, third)] == [0, 960, 1920]
    finally:
        track.stop()


async def test_mic_audio_goes_out_as_soon_as_it_arrives_not_on_a_clock_tick():
    now = [50.0]  # a frozen clock: only a push can release recv()
    track = MicTrack(clock=lambda: now[0])
    try:
        track.push(stereo_frame(1))
        await asyncio.wait_for(track.recv(), 1.0)
        for value in (2, 3, 4):
            task = asyncio.ensure_future(track.recv())
            await asyncio.sleep(0.02)
            assert not task.done()  # nothing queued: it waits (its silence deadline never comes)
            # pushed from another thread, as the browser leg's loop does
            threading.Thread(target=track.push, args=(stereo_frame(value),)).start()
            frame = await asyncio.wait_for(task, 1.0)
            assert set(pcm(frame).tolist()) == {value}
            now[0] += 0.02
        assert track.stats().queued_ms == 0  # nothing stands in the queue
    finally:
        track.stop()


async def test_a_burst_goes_out_at_once_up_to_the_lead_then_is_paced():
    now = [7.0]
    track = MicTrack(clock=lambda: now[0], lead_ms=120)
    try:
        for i in range(10):  # 200 ms released together by the browser leg
            track.push(stereo_frame(i + 1))
        got = [await asyncio.wait_for(track.recv(), 1.0) for _ in range(7)]  # frames due within 120 ms
        assert [int(pcm(f)[0]) for f in got] == [1, 2, 3, 4, 5, 6, 7]
        task = asyncio.ensure_future(track.recv())
        await asyncio.sleep(0.05)
        assert not task.done()  # 140 ms ahead of the schedule: paced from here
        now[0] += 0.02
        assert int(pcm(await asyncio.wait_for(task, 1.0))[0]) == 8
    finally:
        track.stop()


def test_downmix_averages_left_and_right_without_overflow():
    track = MicTrack()
    ramp = np.arange(960, dtype=np.int16) * 10
    track.push(stereo_frame(ramp, 0))
    track.push(stereo_frame(1000, 3000))
    track.push(stereo_frame(32767, 32767))
    track.push(stereo_frame(-32768, -32768))
    track.push(stereo_frame(-32768, 32767))
    out = [track._take(960)[0] for _ in range(5)]
    assert np.array_equal(out[0], ramp // 2)
    assert set(out[1].tolist()) == {2000}
    assert set(out[2].tolist()) == {32767}
    assert set(out[3].tolist()) == {-32768}
    assert set(out[4].tolist()) == {-1}
    track.stop()


def test_mono_and_other_formats_are_converted():
    track = MicTrack()
    mono = av.AudioFrame.from_ndarray(np.full((1, 960), 1234, np.int16), format="s16", layout="mono")
    mono.sample_rate = 48000
    track.push(mono)
    assert set(track._take(960)[0].tolist()) == {1234}
    # 44.1 kHz float planar stereo (what some capture stacks produce), 100 ms of a tone.
    n = 4410
    wave = (0.25 * np.sin(2 * np.pi * 440 * np.arange(n) / 44100)).astype(np.float32)
    flt = av.AudioFrame.from_ndarray(np.stack([wave, wave]), format="fltp", layout="stereo")
    flt.sample_rate = 44100
    track.push(flt)
    queued = track.stats().queued_ms
    assert 80 <= queued <= 101  # ~100 ms at 48 kHz (the resampler may hold back a few samples)
    out, filled = track._take(960)
    assert filled == 960
    rms = float(np.sqrt(np.mean((out[200:].astype(np.float64) / 32768) ** 2)))
    assert 0.15 < rms < 0.2  # 0.25 amplitude sine has RMS 0.177
    with pytest.raises(TypeError, match=r"av\.AudioFrame"):
        track.push(b"\x00\x00" * 960)  # type: ignore[arg-type]  # wrong type on purpose: checks the run-time error
    track.stop()


def test_queue_is_bounded_and_keeps_the_newest_audio():
    track = MicTrack(max_queue_ms=200)
    for i in range(50):  # one second of mic audio with nobody reading
        track.push(stereo_frame(i + 1))
    stats = track.stats()
    assert stats.queued_ms == pytest.approx(200.0)
    assert stats.dropped_ms == pytest.approx(800.0)
    first, _ = track._take(960)
    assert set(first.tolist()) == {41}  # frames 1..40 were dropped, the last 200 ms remain
    track.stop()


async def test_muted_sends_silence_and_unmuting_resumes():
    track = MicTrack()
    try:
        track.push(stereo_frame(5000))
        track.muted = True
        assert track.muted and track.stats().queued_ms == 0  # muting drops what was queued
        track.push(stereo_frame(5000))
        muted_frames = [await track.recv() for _ in range(2)]
        assert all(not pcm(f).any() for f in muted_frames)
        track.set_muted(False)
        track.push(stereo_frame(5000))
        live = await track.recv()
        assert set(pcm(live).tolist()) == {5000}
        assert [f.pts for f in muted_frames] + [live.pts] == [0, 960, 1920]
    finally:
        track.stop()


async def test_stopped_track_ends_recv_and_ignores_pushes():
    track = MicTrack(clock=lambda: 5.0)  # frozen: the pending recv() cannot fall due by itself
    track.push(stereo_frame(1))
    await track.recv()
    pending = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0.02)
    assert not pending.done()  # waiting for mic audio
    track.stop()
    with pytest.raises(MediaStreamError):
        await asyncio.wait_for(pending, 1.0)
    track.push(stereo_frame(1))
    assert track.stats().queued_ms == 0
    with pytest.raises(MediaStreamError):
        await track.recv()


async def test_carries_mic_audio_through_a_real_peer_connection():
    """Pushed from another thread, Opus-encoded by aiortc, decoded on the far side."""
    mic = MicTrack()
    sender, receiver = RTCPeerConnection(), RTCPeerConnection()
    got_track: asyncio.Future = asyncio.get_running_loop().create_future()

    def on_track(t):
        if not got_track.done():
            got_track.set_result(t)

    receiver.on("track", on_track)
    stop = threading.Event()

    def browser():  # the streamlit-webrtc loop pushing 20 ms frames
        i = 0
        while not stop.is_set():
            if i < 150:  # 3 s of tone, then nothing (the track must keep going with silence)
                t = tone(start=i * 960)
                mic.push(stereo_frame(t, t))
            i += 1
            time.sleep(0.02)

    feeder = threading.Thread(target=browser, daemon=True)
    try:
        sender.addTrack(mic)
        await sender.setLocalDescription(await sender.createOffer())
        await receiver.setRemoteDescription(sender.localDescription)
        await receiver.setLocalDescription(await receiver.createAnswer())
        await sender.setRemoteDescription(receiver.localDescription)
        remote = await asyncio.wait_for(got_track, 10)
        for _ in range(500):  # the browser talks once the call is up (before, the queue cap applies)
            if sender.connectionState == "connected":
                break
            await asyncio.sleep(0.02)
        feeder.start()
        loud = 0
        samples = 0
        for _ in range(400):
            frame = await asyncio.wait_for(remote.recv(), 5)
            data = frame.to_ndarray().reshape(-1).astype(np.float64) / 32768
            samples += frame.samples
            if np.sqrt(np.mean(data**2)) > 0.05:
                loud += 1
            if loud >= 25:
                break
        assert loud >= 25, f"far side heard only {loud} loud frames"
        assert mic.stats().dropped_ms == 0  # a real-time producer never overflows the queue
    finally:
        stop.set()
        if feeder.is_alive():
            feeder.join(2)
        mic.stop()
        await sender.close()
        await receiver.close()


def test_level_is_rms_of_the_last_200_ms_and_zero_when_muted():
    now = [10.0]
    track = MicTrack(clock=lambda: now[0])
    assert track.stats().level == 0
    for i in range(10):  # 200 ms of a 0.25 full-scale tone
        t = tone(start=i * 960, amp=int(0.25 * 32767))
        track.push(stereo_frame(t, t))
        now[0] += 0.02
    assert track.stats().level == pytest.approx(0.25 / np.sqrt(2), rel=0.05)
    now[0] += 0.5  # the user went quiet (no frames at all)
    assert track.stats().level == 0
    track.push(stereo_frame(8000))
    assert track.stats().level > 0.2
    track.muted = True
    track.push(stereo_frame(8000))
    assert track.stats().level == 0
    track.stop()


def test_a_standing_backlog_after_a_burst_is_trimmed_to_the_target():
    track = MicTrack(max_queue_ms=200, target_queue_ms=60, trim_window=50)
    for i in range(8):  # a 160 ms burst (late packets released together)
        track.push(stereo_frame(i + 1))
    depths = []
    for i in range(120):  # then steady: one frame in, one frame out
        track.push(stereo_frame(100 + i))
        track._take(960)
        depths.append(track.stats().queued_ms)
    assert depths[10] == pytest.approx(160)  # the burst stands while the window runs...
    assert max(depths[60:]) <= 60  # ...then is trimmed to the target and stays there
    stats = track.stats()
    assert stats.trimmed_ms == pytest.approx(100) and stats.dropped_ms == pytest.approx(100)
    # The newest audio survives the trim: the next frame out is three frames behind the last in.
    out, _ = track._take(960)
    assert int(out[0]) == 100 + 119 - 2


def test_jitter_below_the_target_is_left_alone():
    track = MicTrack(target_queue_ms=60, trim_window=50)
    for i in range(200):  # arrivals alternate 0 and 2 frames per tick: 20-40 ms queued
        if i % 2 == 0:
            track.push(stereo_frame(1))
            track.push(stereo_frame(1))
        track._take(960)
    assert track.stats().dropped_ms == 0


def test_gaps_between_mic_frames_longer_than_the_slack_are_counted_as_late():
    now = [10.0]
    track = MicTrack(slack_ms=100, clock=lambda: now[0])

    def push_after(seconds: float) -> None:
        now[0] += seconds
        track.push(stereo_frame(3000))

    push_after(0)
    for _ in range(100):  # a paced mic, with the jitter of a real network: nothing is late
        push_after(0.02)
    push_after(0.1)  # 100 ms: MicTrack's slack covers it
    push_after(0.001)
    assert (track.stats().late_gaps, track.stats().late_ms) == (0, 0)
    push_after(0.3)  # the browser leg stalled 300 ms: the provider was sent silence meanwhile
    stats = track.stats()
    assert stats.late_gaps == 1 and stats.late_ms == pytest.approx(280)
    track.muted = True  # muted frames still arrive: their gaps count the same
    push_after(0.25)
    push_after(30.0)  # a browser that stopped sending for a while: one second at most
    stats = track.stats()
    assert stats.late_gaps == 3 and stats.late_ms == pytest.approx(280 + 230 + 980)
    track.stop()
    push_after(0.5)  # stopped: nothing more is counted
    assert track.stats().late_gaps == 3
