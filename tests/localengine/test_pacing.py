"""``FramePacer``: frames due on a clock anchored at the first, and re-anchored after a stall."""

from __future__ import annotations

import time

import pytest

from localengine.pacing import FramePacer


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_first_frame_is_due_at_once_and_later_ones_one_period_apart():
    clock = FakeClock()
    pacer = FramePacer(50, clock=clock)
    assert pacer.next_delay() == 0.0 and pacer.index == 0
    assert pacer.next_delay() == pytest.approx(0.020) and pacer.index == 1
    clock.now += 0.020
    assert pacer.next_delay() == pytest.approx(0.020) and pacer.index == 2


def test_due_times_come_from_the_anchor_so_late_wakeups_do_not_drift():
    clock = FakeClock()
    pacer = FramePacer(50, clock=clock)
    pacer.next_delay()
    assert pacer.next_delay() == pytest.approx(0.020)
    clock.now += 0.025  # the sleep for frame 1 overslept by 5 ms
    assert pacer.next_delay() == pytest.approx(0.015)  # frame 2 is still due at 40 ms


def test_without_max_lag_a_late_stream_catches_up():
    clock = FakeClock()
    pacer = FramePacer(50, clock=clock)
    pacer.next_delay()
    clock.now += 1.0  # a stall of a second: 50 frames behind
    delays = [pacer.next_delay() for _ in range(50)]
    assert delays == [0.0] * 50  # the backlog goes out at once
    assert pacer.next_delay() == pytest.approx(0.020)


def test_with_max_lag_a_stall_reanchors_the_clock_instead_of_bursting():
    clock = FakeClock()
    pacer = FramePacer(50, max_lag_s=0.2, clock=clock)
    pacer.next_delay()
    clock.now += 1.0
    assert pacer.next_delay() == 0.0  # the late frame goes out now...
    assert pacer.next_delay() == pytest.approx(0.020)  # ...and the next one a period later
    assert pacer.index == 2


def test_lateness_within_max_lag_is_caught_up():
    clock = FakeClock()
    pacer = FramePacer(50, max_lag_s=0.2, clock=clock)
    pacer.next_delay()
    clock.now += 0.1  # 5 frames behind: within the allowed lag
    assert [pacer.next_delay() for _ in range(5)] == [0.0] * 5
    assert pacer.next_delay() == pytest.approx(0.020)


def test_video_rates_and_bad_rates():
    clock = FakeClock()
    pacer = FramePacer(15, clock=clock)
    pacer.next_delay()
    assert pacer.next_delay() == pytest.approx(1 / 15)
    with pytest.raises(ValueError):
        FramePacer(0)


async def test_wait_sleeps_until_due_and_returns_the_frame_index():
    pacer = FramePacer(50)
    started = time.monotonic()
    assert [await pacer.wait() for _ in range(6)] == [0, 1, 2, 3, 4, 5]
    assert time.monotonic() - started >= 5 * 0.020 - 0.002
