"""The engine's outbound voice track: paced 20 ms frames, and no catch-up burst after a stall."""

from __future__ import annotations

import time

from localengine.rtc import FRAME_SAMPLES, MAX_LAG_S, VoiceTrack


async def test_frames_are_paced_and_continuous():
    track = VoiceTrack()
    started = time.monotonic()
    pts = [(await track.recv()).pts for _ in range(11)]
    assert pts == [i * FRAME_SAMPLES for i in range(11)]
    assert time.monotonic() - started >= 0.19  # ten 20 ms steps after the first frame
    track.stop()


async def test_after_a_stall_the_clock_is_reanchored_instead_of_bursting():
    track = VoiceTrack()
    await track.recv()
    pacer = track._pacer
    assert pacer._start is not None
    pacer._start -= 1.0  # as if the event loop had stalled for a second
    await track.recv()  # the late frame goes out at once, and the clock starts again from now
    started = time.monotonic()
    for _ in range(10):
        await track.recv()
    elapsed = time.monotonic() - started
    # a burst would hand out the backlog (1 s = 50 frames) without waiting
    assert elapsed >= 10 * 0.020 - MAX_LAG_S / 10, elapsed
    track.stop()
