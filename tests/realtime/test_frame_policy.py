"""The frame policy: when camera frames go (interval, at each turn, manual), alone and driving a FrameThrottle."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from realtime.frame_policy import (
    DEFAULT_FRAME_POLICY,
    FRAME_POLICIES,
    FramePolicy,
    default_quiet_interval,
)
from realtime.frames import FrameThrottle
from realtime.settings import CameraSettings, Settings, SettingsError


def test_the_modes_are_one_constant_that_settings_share():
    assert FRAME_POLICIES == ("interval", "turn", "manual")
    assert DEFAULT_FRAME_POLICY == "turn" == CameraSettings().policy == Settings().camera.policy
    assert FramePolicy().mode == "turn"


def test_interval_mode_is_the_old_behaviour():
    p = FramePolicy("interval", 2.0)
    assert p.interval(speaking=True) == p.interval(speaking=False) == 2.0
    assert not p.on_speech("started") and not p.on_speech("stopped")


def test_turn_mode_sends_on_speech_and_slows_down_when_quiet():
    p = FramePolicy("turn", 2.0)
    assert p.on_speech("started") and p.on_speech("stopped")
    assert p.interval(speaking=True) == 2.0
    assert p.interval(speaking=False) == p.quiet_s == 20.0
    assert FramePolicy("turn", 5.0).interval(speaking=False) == 50.0
    assert FramePolicy("turn", 2.0, quiet_interval_s=60.0).interval(speaking=False) == 60.0


def test_manual_mode_sends_nothing_by_itself():
    p = FramePolicy("manual", 2.0)
    assert p.interval(speaking=True) is None and p.interval(speaking=False) is None
    assert not p.on_speech("started") and not p.on_speech("stopped")


@given(st.floats(0.2, 3600, allow_nan=False))
def test_the_default_quiet_interval_is_ten_times_at_least_twenty_seconds(interval_s):
    quiet = default_quiet_interval(interval_s)
    assert quiet >= interval_s and quiet >= 20.0
    assert quiet == max(10 * interval_s, 20.0)
    assert FramePolicy("turn", interval_s).quiet_s == quiet


def test_bad_values_are_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="frame policy must be one of interval, turn, manual, not 'often'"):
        FramePolicy("often", 2.0)  # type: ignore[arg-type]  # wrong on purpose: the run-time check
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="interval_s"):
            FramePolicy("turn", bad)
    with pytest.raises(ValueError, match="quiet_interval_s"):
        FramePolicy("turn", 10.0, quiet_interval_s=5.0)
    with pytest.raises(ValueError, match="phase"):
        FramePolicy().on_speech("maybe")  # type: ignore[arg-type]  # wrong on purpose


def test_settings_read_validate_and_replace_the_policy():
    assert Settings.from_env({"REALTIME_FRAME_POLICY": " Manual "}).camera.policy == "manual"
    assert Settings.from_env({"REALTIME_FRAME_POLICY": ""}).camera.policy == "turn"
    with pytest.raises(SettingsError) as err:
        Settings.from_env({"REALTIME_FRAME_POLICY": "often"})
    assert err.value.problems == (
        "Frame policy (REALTIME_FRAME_POLICY) must be one of interval, turn, manual, not 'often'.",
    )
    s = Settings().replace(camera={"policy": "interval"})
    assert s.camera.policy == "interval" and s.camera.interval_s == 2.0
    with pytest.raises(SettingsError, match="Frame policy"):
        Settings().replace(camera={"policy": "x"})


# --------------------------------------------------------------------------- driving a throttle

TICK_S = 0.25  # the bridge's camera tick


def scene(level: int) -> np.ndarray:
    img = np.empty((24, 32, 3), np.uint8)
    img[:] = level
    return img


@dataclass
class Sim:
    """What the bridge does, without IO: speech nudges the throttle, each tick applies the interval."""

    policy: FramePolicy
    throttle: FrameThrottle = field(init=False)
    now: float = 0.0
    speaking: bool = False
    level: int = 0
    sent: list[tuple[float, int, bool, bool]] = field(default_factory=list)  # (at, level, nudged, speaking)

    def __post_init__(self) -> None:
        self.throttle = FrameThrottle(interval_s=self.policy.interval(False), clock=lambda: self.now)

    def offer(self) -> None:
        self.throttle.offer(scene(self.level))

    def speech(self, phase: str) -> None:
        self.speaking = phase == "started"
        if self.policy.on_speech(phase):  # type: ignore[arg-type]  # phase is started/stopped
            self.throttle.nudge()
            self.tick()  # the bridge wakes its camera loop

    def tick(self) -> None:
        self.throttle.interval_s = self.policy.interval(self.speaking)
        frame = self.throttle.due(self.now)
        if frame is not None:
            self.sent.append((self.now, int(frame.to_rgb()[0, 0, 0]), frame.nudged, self.speaking))


step = st.one_of(
    st.tuples(st.just("wait"), st.floats(0.05, 30.0)),
    st.tuples(st.just("scene"), st.integers(0, 12)),
    st.tuples(st.just("speech"), st.sampled_from(["started", "stopped"])),
)


def run(policy: FramePolicy, steps: list[tuple[str, object]]) -> Sim:
    sim = Sim(policy)
    sim.offer()
    sim.tick()
    for kind, arg in steps:
        if kind == "wait":
            end = sim.now + float(arg)  # type: ignore[arg-type]
            while sim.now + TICK_S <= end:
                sim.now += TICK_S
                sim.offer()
                sim.tick()
            sim.now = end
        elif kind == "scene":
            sim.level = 20 * int(arg)  # type: ignore[call-overload]  # 20 apart: always a change
            sim.offer()
        else:
            sim.speech(str(arg))
    return sim


@hsettings(max_examples=150, deadline=None)
@given(st.lists(step, max_size=40), st.floats(0.2, 10.0))
def test_manual_never_sends_by_itself(steps, interval_s):
    sim = run(FramePolicy("manual", interval_s), steps)
    assert sim.sent == [] and sim.throttle.stats().sent == 0


@hsettings(max_examples=150, deadline=None)
@given(st.lists(step, max_size=40), st.floats(0.2, 10.0))
def test_interval_mode_sends_exactly_what_the_throttle_alone_did(steps, interval_s):
    sim = run(FramePolicy("interval", interval_s), steps)

    # the camera loop before frame policies: a throttle, ticks, no speech handling
    now, level, sent = 0.0, 0, []
    old = FrameThrottle(interval_s=interval_s)

    def tick() -> None:
        f = old.due(now)
        if f is not None:
            sent.append((now, int(f.to_rgb()[0, 0, 0])))

    old.offer(scene(level))
    tick()
    for kind, arg in steps:
        if kind == "wait":
            end = now + float(arg)
            while now + TICK_S <= end:
                now += TICK_S
                old.offer(scene(level))
                tick()
            now = end
        elif kind == "scene":
            level = 20 * int(arg)
            old.offer(scene(level))
    assert [(at, lvl) for at, lvl, _, _ in sim.sent] == sent
    assert not any(nudged for _, _, nudged, _ in sim.sent)


@hsettings(max_examples=200, deadline=None)
@given(st.lists(step, max_size=40), st.floats(0.2, 10.0))
def test_turn_mode_sends_on_speech_if_changed_and_otherwise_keeps_its_intervals(steps, interval_s):
    policy = FramePolicy("turn", interval_s)
    sim = Sim(policy)
    sim.offer()
    sim.tick()
    assert len(sim.sent) == 1  # the first frame goes at once
    for kind, arg in steps:
        if kind == "speech":
            last_level = sim.sent[-1][1] if sim.sent else None
            before = len(sim.sent)
            sim.speech(str(arg))
            # the latest frame goes now if (and only if) it changed since the last one sent
            if sim.level != last_level:
                assert len(sim.sent) == before + 1 and sim.sent[-1][1] == sim.level
            else:
                assert len(sim.sent) == before
        elif kind == "wait":
            end = sim.now + float(arg)
            while sim.now + TICK_S <= end:
                sim.now += TICK_S
                sim.offer()
                sim.tick()
            sim.now = end
        else:
            sim.level = 20 * int(arg)
            sim.offer()
    # every frame sent is different from the one before it
    levels = [lvl for _, lvl, _, _ in sim.sent]
    assert all(a != b for a, b in itertools.pairwise(levels))
    # a frame not sent for speech respects the interval in force: N while speaking, the quiet one otherwise
    for (t0, *_), (t1, _, nudged, speaking) in itertools.pairwise(sim.sent):
        if not nudged:
            assert t1 - t0 >= (interval_s if speaking else policy.quiet_s) - 1e-9


def test_turn_mode_in_a_quiet_minute_sends_a_few_frames_where_interval_sends_thirty():
    def minute(policy: FramePolicy) -> int:
        # the scene changes every 2 s; nobody speaks
        steps: list[tuple[str, object]] = []
        for i in range(30):
            steps += [("scene", i % 2), ("wait", 2.0)]
        return len(run(policy, steps).sent)

    assert minute(FramePolicy("interval", 2.0)) == 30
    assert minute(FramePolicy("turn", 2.0)) == 3  # t = 0, 20, 40
    assert minute(FramePolicy("manual", 2.0)) == 0


def test_a_question_gets_the_frame_of_its_moment():
    sim = run(FramePolicy("turn", 2.0), [("wait", 5.0), ("scene", 3), ("wait", 1.0)])
    assert [lvl for _, lvl, _, _ in sim.sent] == [0]  # quiet: the new scene waits for the slow interval
    sim.speech("started")
    assert sim.sent[-1][1:3] == (60, True)  # the user asks "what is this?": the new scene goes now
    sim.level = 80
    sim.offer()
    sim.speech("stopped")
    assert sim.sent[-1][1:3] == (80, True)  # what they showed while asking goes as they finish
    sim.speech("started")
    assert len(sim.sent) == 3  # unchanged: nothing more
