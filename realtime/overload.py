"""Is a running call's audio breaking up because the server is overloaded? A sans-IO detector.

`OverloadWatch` is fed a `LoadSample` from the bridge's stats loop (about once a second): cumulative
counters of what the server can see go wrong with the media, stamped with a time the caller reads
(it reads no clock). From the deltas between samples it decides, with hysteresis, whether the audio
is degraded and says why. The four signals, each "seconds impaired" so far:

- ``loop``: how long the bridge loop ran late (``realtime.loop``'s heartbeat; it carries the mic to
  the provider and the provider's voice back);
- ``leg``: how long the browser leg's voice track read its frames late (``realtime.voice_source``;
  it runs on the Streamlit server's loop, where streamlit-webrtc sends the voice to the browser);
- ``voice``: how long the assistant's voice ran out mid-utterance (``realtime.voice_out``: the
  underruns the user hears as gaps in a reply);
- ``mic``: how late the browser's mic frames arrived, counting gaps long enough that the provider
  is sent silence in their place (``realtime.mic_track``).

Each interval between two samples is *bad* when any signal was impaired for at least its limit's
share of it (10 % of the time for the loops and the mic, 5 % for the voice: a gap every other
second). The watch trips when bad intervals cover ``trip_s`` (3 s) of the last ``window_s`` (5 s),
and clears after ``clear_s`` (10 s) with no bad interval. Why these figures: on an idle machine all
four read zero (the loops are late by a millisecond or two, far under the 20 ms that counts, and a
paced stream has no gaps), so only real trouble adds up; a single hiccup (a garbage collection, a
burst of packets, one slow callback) makes at most one or two bad seconds, under the 3 s needed;
and a call that recovers keeps the warning for 10 s, so the call bar does not flicker.

The first sample after the call comes up (or after it was not live) is a baseline only, and the
``settle_s`` (2 s) after it are not judged either: setting the call up, and its first moments (a
one-off blip of a few hundred ms about 2 s in was measured on the test rig), never count.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace
from typing import Literal

__all__ = [
    "DEFAULT_POLICY",
    "SIGNALS",
    "Change",
    "Cleared",
    "LoadSample",
    "Overload",
    "OverloadPolicy",
    "OverloadWatch",
    "Signal",
    "Tripped",
]

Signal = Literal["loop", "leg", "voice", "mic"]
SIGNALS: tuple[Signal, ...] = ("loop", "leg", "voice", "mic")


@dataclass(frozen=True)
class LoadSample:
    """Cumulative seconds each signal was impaired, as of ``at`` (monotonic seconds)."""

    at: float
    loop: float = 0.0  # the bridge loop ran late
    leg: float = 0.0  # the browser leg's voice frames were read late
    voice: float = 0.0  # the assistant's voice ran out mid-utterance
    mic: float = 0.0  # mic frames arrived late enough to leave a hole upstream

    def get(self, signal: Signal) -> float:
        return float(getattr(self, signal))


@dataclass(frozen=True)
class OverloadPolicy:
    window_s: float = 5.0
    trip_s: float = 3.0  # bad seconds within the window that make it degraded
    clear_s: float = 10.0  # clean seconds that make it fine again
    settle_s: float = 2.0  # after the baseline: not judged (the call's first moments)
    # the share of an interval a signal may be impaired before the interval counts as bad
    loop: float = 0.10
    leg: float = 0.10
    voice: float = 0.05
    mic: float = 0.10

    def __post_init__(self) -> None:
        if not 0 < self.trip_s <= self.window_s:
            raise ValueError(f"need 0 < trip_s <= window_s, got {self.trip_s!r}, {self.window_s!r}")
        if not self.clear_s > 0 or not self.settle_s >= 0:
            raise ValueError(f"need clear_s > 0 and settle_s >= 0, got {self.clear_s!r}, {self.settle_s!r}")
        for signal in SIGNALS:
            if not 0 < self.limit(signal) <= 1:
                raise ValueError(f"the {signal} limit must be within (0, 1], got {self.limit(signal)!r}")

    def limit(self, signal: Signal) -> float:
        return float(getattr(self, signal))


DEFAULT_POLICY = OverloadPolicy()

_WHAT: dict[Signal, str] = {
    "loop": "the server's media loop ran late",
    "leg": "the voice to the browser was sent late",
    "voice": "the assistant's voice ran out mid-reply",
    "mic": "the microphone audio arrived late",
}


@dataclass(frozen=True)
class Overload:
    """Why the audio is degraded: the signal most over its limit, and for how long it was impaired
    within ``window_s`` seconds; ``clean_s``: how long nothing has been wrong (it clears at
    ``clear_s``)."""

    signal: Signal
    impaired_s: float
    window_s: float
    clean_s: float = 0.0

    @property
    def reason(self) -> str:
        if self.clean_s >= 1.0:
            return f"{_WHAT[self.signal]}; fine again for {self.clean_s:.0f} s"
        share = min(1.0, self.impaired_s / self.window_s) if self.window_s > 0 else 0.0
        return f"{_WHAT[self.signal]} {share:.0%} of the last {self.window_s:g} s"


@dataclass(frozen=True)
class Tripped:
    overload: Overload
    at: float


@dataclass(frozen=True)
class Cleared:
    at: float
    lasted_s: float  # how long the audio was degraded


Change = Tripped | Cleared


@dataclass(frozen=True)
class _Interval:
    start: float
    end: float
    impaired: tuple[float, ...]  # seconds, per signal in SIGNALS order
    bad: bool


class OverloadWatch:
    """The detector (see module docstring). Not thread-safe: one caller feeds it."""

    def __init__(self, policy: OverloadPolicy = DEFAULT_POLICY) -> None:
        self.policy = policy
        self._last: LoadSample | None = None
        self._settled_at = 0.0  # intervals ending before then are not judged
        self._intervals: deque[_Interval] = deque()
        self._overload: Overload | None = None
        self._since: float | None = None  # when it tripped
        self._last_bad: float | None = None  # the end of the latest bad interval

    @property
    def overload(self) -> Overload | None:
        """Why the audio is degraded now, or None while it is fine."""
        return self._overload

    @property
    def reason(self) -> str | None:
        return self._overload.reason if self._overload is not None else None

    def reset(self) -> Cleared | None:
        """The call is not running (not connected yet, reconnecting, paused, closed): forget it all."""
        was, since, last = self._overload, self._since, self._last
        self._last, self._overload, self._since, self._last_bad = None, None, None, None
        self._intervals.clear()
        if was is None or since is None or last is None:
            return None
        return Cleared(last.at, last.at - since)

    def feed(self, sample: LoadSample, *, live: bool = True) -> Change | None:
        """Judge the interval since the previous sample; returns what changed, if anything.
        ``live`` False: the call is not up, so there is nothing to judge (see `reset`)."""
        if not live:
            return self.reset()
        last, self._last = self._last, sample
        policy = self.policy
        if last is None:
            self._settled_at = sample.at + policy.settle_s
            return None  # a baseline
        dt = sample.at - last.at
        deltas = tuple(sample.get(s) - last.get(s) for s in SIGNALS)
        if dt <= 0 or any(d < 0 for d in deltas):
            return None  # time or a counter went backwards (a new counter): start again from here
        if last.at < self._settled_at - 1e-9:
            return None
        impaired = tuple(min(d, dt) for d in deltas)
        bad = any(i >= policy.limit(s) * dt for s, i in zip(SIGNALS, impaired, strict=True))
        self._intervals.append(_Interval(last.at, sample.at, impaired, bad))
        if bad:
            self._last_bad = sample.at
        self._forget_before(sample.at - max(policy.window_s, policy.clear_s))
        return self._decide(sample.at)

    def _forget_before(self, t: float) -> None:
        while self._intervals and self._intervals[0].end <= t:
            self._intervals.popleft()

    def _in_window(self, now: float) -> list[tuple[_Interval, float]]:
        """Intervals overlapping the window, each with the share of it inside the window."""
        start = now - self.policy.window_s
        out = []
        for iv in self._intervals:
            if iv.end <= start:
                continue
            length = iv.end - iv.start
            out.append((iv, (iv.end - max(iv.start, start)) / length if length > 0 else 0.0))
        return out

    def _worst(self, window: list[tuple[_Interval, float]]) -> Overload | None:
        """The signal most over its limit in the window (None when nothing was impaired)."""
        policy = self.policy
        best: Overload | None = None
        best_ratio = 0.0
        for index, signal in enumerate(SIGNALS):
            impaired = sum(iv.impaired[index] * part for iv, part in window)
            ratio = impaired / policy.limit(signal)
            if ratio > best_ratio:
                best, best_ratio = Overload(signal, impaired, policy.window_s), ratio
        return best

    def _decide(self, now: float) -> Change | None:
        policy = self.policy
        window = self._in_window(now)
        if self._overload is None:
            bad_s = sum((iv.end - iv.start) * part for iv, part in window if iv.bad)
            if bad_s < policy.trip_s - 1e-9:  # (sums of float seconds)
                return None
            worst = self._worst(window)
            assert worst is not None  # a bad interval has an impaired signal
            self._overload, self._since = worst, now
            return Tripped(worst, now)
        if self._last_bad is not None and now - self._last_bad >= policy.clear_s - 1e-9:
            since = self._since if self._since is not None else now
            self._overload, self._since = None, None
            return Cleared(now, now - since)
        overload = self._overload
        if any(iv.bad for iv, _ in window):  # still degraded: say what is wrong now
            overload = self._worst(window) or overload
        if self._last_bad is not None:
            overload = replace(overload, clean_s=now - self._last_bad)
        self._overload = overload
        return None
