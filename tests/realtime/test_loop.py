"""realtime.loop: the shared loop's heartbeat measures how late it runs what is due."""

from __future__ import annotations

import asyncio
import time

import pytest

from realtime import loop as bg
from realtime.loop import HEARTBEAT_S, LATE_S, LoopLag


async def test_the_heartbeat_counts_a_stall_once_by_its_length():
    lag = LoopLag(asyncio.get_running_loop())
    lag.start()
    try:
        await asyncio.sleep(0.3)
        quiet = lag.behind_s
        time.sleep(0.4)  # this loop runs nothing else for 400 ms
        await asyncio.sleep(0.2)
        stalled = lag.behind_s - quiet
        assert 0.3 <= stalled <= 0.45 + quiet  # the stall, counted once (not per missed beat)
        assert lag.beats >= 6
    finally:
        lag.stop()
    beats = lag.beats
    await asyncio.sleep(0.15)
    assert lag.beats == beats  # stopped


async def test_the_shared_loop_reports_how_long_it_was_behind():
    loop = bg.get_loop()
    before = bg.behind_s()
    done = asyncio.Event()
    here = asyncio.get_running_loop()

    def hog() -> None:
        time.sleep(0.5)
        here.call_soon_threadsafe(done.set)

    loop.call_soon_threadsafe(hog)
    await asyncio.wait_for(done.wait(), 5)
    await asyncio.sleep(0.2)  # the next beat notes it
    assert bg.behind_s() - before >= 0.5 - HEARTBEAT_S - LATE_S  # (from when the beat was due)


def test_behind_s_is_zero_before_any_loop_ran(monkeypatch):
    monkeypatch.setattr(bg, "_lag", None)
    assert bg.behind_s() == pytest.approx(0.0)
