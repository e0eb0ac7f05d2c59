"""realtime.overload: when a call's audio counts as degraded under load, and when it is fine again.

Fake timestamps throughout: a sample a second, counters growing by what each second was impaired."""

from __future__ import annotations

import pytest

from realtime.overload import (
    DEFAULT_POLICY,
    SIGNALS,
    Cleared,
    LoadSample,
    Overload,
    OverloadPolicy,
    OverloadWatch,
    Tripped,
)


class Feeder:
    """Feeds a watch one sample per ``step`` seconds, each signal impaired by the given seconds.
    The call came up (the baseline) ``settle_s`` before ``start``: from ``start`` on, it is judged."""

    def __init__(self, watch: OverloadWatch | None = None, start: float = 1000.0) -> None:
        self.watch = watch or OverloadWatch()
        settle = self.watch.policy.settle_s
        self.at = start - settle
        self.totals: dict[str, float] = dict.fromkeys(SIGNALS, 0.0)
        self.changes: list[tuple[float, Tripped | Cleared]] = []
        self.feed()  # the baseline
        if settle:
            self.feed(settle)

    def feed(self, step: float = 0.0, **impaired: float) -> Tripped | Cleared | None:
        return self._feed(step, True, impaired)

    def not_live(self, step: float = 0.0, **impaired: float) -> Tripped | Cleared | None:
        return self._feed(step, False, impaired)

    def _feed(self, step: float, live: bool, impaired: dict[str, float]) -> Tripped | Cleared | None:
        self.at += step
        for signal, seconds in impaired.items():
            self.totals[signal] += seconds
        change = self.watch.feed(LoadSample(self.at, **self.totals), live=live)
        if change is not None:
            self.changes.append((self.at, change))
        return change

    def seconds(self, n: int, step: float = 1.0, **impaired: float) -> list[str | None]:
        """``n`` samples; the watch's reason after each."""
        out = []
        for _ in range(n):
            self.feed(step, **impaired)
            out.append(self.watch.reason)
        return out


def test_an_idle_call_never_trips():
    f = Feeder()
    assert f.seconds(600) == [None] * 600
    assert f.changes == []


@pytest.mark.parametrize("signal", SIGNALS)
def test_impairment_just_under_each_limit_never_trips(signal):
    limit = DEFAULT_POLICY.limit(signal)
    f = Feeder()
    assert f.seconds(120, **{signal: limit * 0.9}) == [None] * 120


@pytest.mark.parametrize("signal", SIGNALS)
def test_each_signal_alone_trips_after_three_bad_seconds_and_says_which(signal):
    f = Feeder()
    reasons = f.seconds(5, **{signal: 0.3})
    assert reasons[:2] == [None, None]  # two bad seconds of five: not yet
    assert all(r is not None for r in reasons[2:])
    ((at, change),) = f.changes
    assert at == 1003.0 and isinstance(change, Tripped)
    assert change.overload == Overload(signal, pytest.approx(0.9), 5.0)  # type: ignore[arg-type]
    assert f.watch.overload == Overload(signal, pytest.approx(1.5), 5.0)  # type: ignore[arg-type]  # what is wrong now


def test_the_reason_names_the_signal_and_its_share_of_the_window():
    f = Feeder()
    f.seconds(3, loop=0.5)
    assert f.watch.reason == "the server's media loop ran late 30% of the last 5 s"
    texts = {s: Overload(s, 1.0, 5.0).reason for s in SIGNALS}
    assert texts == {
        "loop": "the server's media loop ran late 20% of the last 5 s",
        "leg": "the voice to the browser was sent late 20% of the last 5 s",
        "voice": "the assistant's voice ran out mid-reply 20% of the last 5 s",
        "mic": "the microphone audio arrived late 20% of the last 5 s",
    }


def test_the_signal_most_over_its_limit_is_named():
    f = Feeder()
    # the voice's limit is half the loop's: 0.2 s of voice gaps is further over it than 0.3 s of loop lag
    f.seconds(3, loop=0.3, voice=0.2)
    assert f.watch.overload is not None and f.watch.overload.signal == "voice"


def test_a_single_spike_does_not_trip():
    f = Feeder()
    f.seconds(10)
    f.seconds(1, loop=1.0)  # the loop stalled a whole second once (a long GC, a slow callback)
    assert f.seconds(20) == [None] * 20
    assert f.changes == []


def test_spikes_two_seconds_apart_do_not_trip_but_three_bad_seconds_in_five_do():
    f = Feeder()
    for _ in range(5):
        f.seconds(1, voice=0.2)
        f.seconds(3)
    assert f.changes == []  # never more than two bad seconds in a window
    f.seconds(1, voice=0.2)
    f.seconds(1)
    f.seconds(1, voice=0.2)
    assert f.watch.reason is None
    f.seconds(1, voice=0.2)
    assert f.watch.reason is not None


def test_sparse_bad_seconds_keep_tripping_off():
    """One bad second in two, forever: 2-3 bad seconds in any 5 s window; 3 trips, then it holds."""
    f = Feeder()
    for _ in range(10):
        f.seconds(1, mic=0.5)
        f.seconds(1)
    assert [type(c) for _, c in f.changes] == [Tripped]


def test_it_holds_while_still_bad_and_clears_after_ten_clean_seconds():
    f = Feeder()
    f.seconds(8, leg=0.5)
    ((_, tripped),) = f.changes
    assert isinstance(tripped, Tripped)
    reasons = f.seconds(9)
    assert all(r is not None for r in reasons)  # held for 9 clean seconds
    f.seconds(1)
    assert f.watch.reason is None
    at, cleared = f.changes[-1]
    assert isinstance(cleared, Cleared) and at == 1018.0
    assert cleared.lasted_s == pytest.approx(15.0)  # tripped at 1003, cleared at 1018


def test_a_bad_second_while_degraded_restarts_the_clean_count():
    f = Feeder()
    f.seconds(3, voice=0.2)
    f.seconds(8)
    f.seconds(1, voice=0.2)  # a relapse
    assert None not in f.seconds(9)
    f.seconds(1)
    assert f.watch.reason is None
    assert [type(c) for _, c in f.changes] == [Tripped, Cleared]


def test_the_reason_follows_what_is_wrong_now_while_degraded():
    f = Feeder()
    f.seconds(3, voice=0.3)
    assert f.watch.overload is not None and f.watch.overload.signal == "voice"
    f.seconds(6, loop=0.6)
    assert f.watch.overload is not None and f.watch.overload.signal == "loop"
    f.seconds(6)
    assert f.watch.overload is not None and f.watch.overload.signal == "loop"  # no bad second now: kept
    assert f.watch.overload.clean_s == pytest.approx(6.0)


def test_it_trips_again_after_clearing():
    f = Feeder()
    f.seconds(3, loop=0.5)
    f.seconds(10)
    f.seconds(3, loop=0.5)
    assert [type(c) for _, c in f.changes] == [Tripped, Cleared, Tripped]


def test_the_first_sample_is_a_baseline_whatever_the_counters_hold():
    """Setting a call up (and anything before it) is not judged: the counters start anywhere."""
    watch = OverloadWatch(OverloadPolicy(settle_s=0.0))
    assert watch.feed(LoadSample(50.0, loop=30.0, leg=12.0, voice=4.0, mic=9.0)) is None
    for t in range(51, 70):
        assert watch.feed(LoadSample(float(t), loop=30.0, leg=12.0, voice=4.0, mic=9.0)) is None
    assert watch.reason is None


def test_the_first_seconds_after_the_call_came_up_are_not_judged():
    watch = OverloadWatch()
    assert watch.feed(LoadSample(10.0)) is None  # the call is up
    for t, lag in ((11.0, 0.8), (11.5, 1.2)):  # the first moments: a blip (nothing is judged yet)
        assert watch.feed(LoadSample(t, loop=lag)) is None
    # the second from 11.5 to 12.5 began in them too; from 12.5 on, three bad seconds trip
    changes = [watch.feed(LoadSample(11.5 + n, loop=1.2 + 0.5 * n)) for n in range(1, 5)]
    assert changes[:3] == [None, None, None] and isinstance(changes[3], Tripped)


def test_while_clean_the_reason_says_for_how_long():
    f = Feeder()
    f.seconds(3, loop=0.5)
    assert f.watch.reason == "the server's media loop ran late 30% of the last 5 s"
    f.seconds(1)
    assert f.watch.reason == "the server's media loop ran late; fine again for 1 s"
    f.seconds(5)
    assert f.watch.reason == "the server's media loop ran late; fine again for 6 s"
    f.seconds(4)
    assert f.watch.reason is None


def test_a_long_freeze_counts_as_long_as_it_lasted():
    """The stats loop is on the frozen loop too: a 4 s freeze is one 4 s sample, all of it bad."""
    f = Feeder()
    f.seconds(5)
    change = f.feed(4.0, loop=3.9)
    assert isinstance(change, Tripped) and change.overload.signal == "loop"


def test_a_freeze_shorter_than_the_trip_time_does_not_trip():
    f = Feeder()
    f.seconds(5)
    assert f.feed(2.5, loop=2.4) is None
    assert f.seconds(20) == [None] * 20


def test_impairment_is_capped_at_the_interval():
    """A counter that jumps by more than the interval (a gap counted when it ended) is one bad interval."""
    f = Feeder()
    f.seconds(1, mic=30.0)
    assert f.watch.reason is None
    assert f.seconds(15) == [None] * 15


def test_not_live_resets_and_the_next_live_sample_is_a_baseline():
    f = Feeder()
    f.seconds(5, loop=0.5)
    assert f.watch.reason is not None
    change = f.not_live(1.0, loop=0.5)  # reconnecting: nothing to judge
    assert isinstance(change, Cleared) and f.watch.reason is None
    f.not_live(1.0, loop=0.5)
    # the first live sample is a baseline again, two seconds settle, then three bad ones trip
    assert f.seconds(5, loop=0.5) == [None] * 5
    assert f.seconds(1, loop=0.5) == ["the server's media loop ran late 30% of the last 5 s"]


def test_reset_of_a_fine_watch_says_nothing():
    f = Feeder()
    f.seconds(3)
    assert f.watch.reset() is None
    assert f.not_live(1.0) is None


@pytest.mark.parametrize("change", [{"at": -1.0}, {"at": 0.0}, {"loop": -0.5}])
def test_time_or_a_counter_going_backwards_starts_again_from_there(change):
    f = Feeder()
    f.seconds(2, loop=0.5)
    last = f.watch._last
    assert last is not None
    fields = {"at": last.at, "loop": last.loop, "leg": last.leg, "voice": last.voice, "mic": last.mic}
    for key, delta in change.items():
        fields[key] += delta
    assert f.watch.feed(LoadSample(**fields)) is None
    assert f.watch.reason is None


def test_uneven_intervals_are_judged_by_their_share():
    f = Feeder()
    # 0.5 s intervals: 0.06 s of loop lag in each is 12 %, over the 10 % limit
    reasons = [f.feed(0.5, loop=0.06) for _ in range(6)]
    assert reasons[:5] == [None] * 5 and isinstance(reasons[5], Tripped)  # 3 s of bad half-seconds


def test_a_custom_policy():
    policy = OverloadPolicy(window_s=2.0, trip_s=1.0, clear_s=3.0, voice=0.5)
    f = Feeder(OverloadWatch(policy))
    f.seconds(1, voice=0.4)  # under its 50 % limit
    assert f.watch.reason is None
    f.seconds(1, voice=0.6)
    assert f.watch.reason == "the assistant's voice ran out mid-reply 50% of the last 2 s"
    f.seconds(3)
    assert f.watch.reason is None


@pytest.mark.parametrize(
    "bad",
    [{"trip_s": 6.0}, {"trip_s": 0.0}, {"clear_s": 0.0}, {"settle_s": -1.0}, {"loop": 0.0}, {"voice": 1.5}],
)
def test_a_policy_that_makes_no_sense_is_refused(bad):
    with pytest.raises(ValueError):
        OverloadPolicy(**bad)
