"""When camera frames go to the model: the frame policy (sans-IO, pure).

`FrameThrottle` (``frames.py``) decides whether the latest frame is worth sending (interval and
change); this module decides *when* to ask it, from the camera settings and the user's speech:

- ``interval``: a frame every ``interval_s`` seconds if it changed (the original behaviour);
- ``turn`` (default): the latest frame when the user starts speaking and when they stop, if it
  changed since the last frame sent; every ``interval_s`` while they speak; and only every
  ``quiet_interval_s`` while nobody speaks. The model sees what was on screen when the question
  was asked, and a quiet conversation costs a few images a minute instead of one every 2 s;
- ``manual``: only the "Send frame" button (``FrameThrottle.force()``).

`FramePolicy` is a frozen value built from the camera settings, so a live settings change is a
new value and needs no bookkeeping. "Speaking" means the user, as the provider's voice activity
detection reports it (``Speech`` events); the assistant's reply counts as quiet, since a frame sent
while it answers cannot change that answer. The caller (the bridge) does the IO:

    # on a Speech event
    if FramePolicy(cam.policy, cam.interval_s).on_speech(event.phase):
        throttle.nudge()  # and wake the camera loop
    # on each camera tick, before throttle.due()
    throttle.interval_s = FramePolicy(cam.policy, cam.interval_s).interval(speaking)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

__all__ = [
    "DEFAULT_FRAME_POLICY",
    "FRAME_POLICIES",
    "QUIET_FACTOR",
    "QUIET_MIN_S",
    "FrameMode",
    "FramePolicy",
    "default_quiet_interval",
]

FrameMode = Literal["interval", "turn", "manual"]
FRAME_POLICIES: tuple[FrameMode, ...] = get_args(FrameMode)
DEFAULT_FRAME_POLICY: FrameMode = "turn"

# Turn mode's slow interval while nobody speaks: 10x the camera interval, and at least 20 s.
# 20 s is about one exchange of a conversation: the model's picture of the scene is never much older
# than that for what does not come through speech (typed messages, push to talk, tools, a VAD idle
# answer), while a quiet minute costs at most 3 frames instead of 30 at the default 2 s. Scaling
# with the interval keeps the user's choice meaningful (a 6 s interval gives a 60 s quiet one).
QUIET_FACTOR = 10.0
QUIET_MIN_S = 20.0


def default_quiet_interval(interval_s: float) -> float:
    """Turn mode's interval while nobody speaks, for a camera interval of ``interval_s``."""
    return max(interval_s * QUIET_FACTOR, QUIET_MIN_S)


@dataclass(frozen=True)
class FramePolicy:
    """When to send camera frames (see the module docstring). Pure: no clock, no state."""

    mode: FrameMode = DEFAULT_FRAME_POLICY
    interval_s: float = 2.0
    quiet_interval_s: float | None = None  # None: default_quiet_interval(interval_s)

    def __post_init__(self) -> None:
        if self.mode not in FRAME_POLICIES:
            raise ValueError(f"frame policy must be one of {', '.join(FRAME_POLICIES)}, not {self.mode!r}")
        if not (math.isfinite(self.interval_s) and self.interval_s > 0):
            raise ValueError(f"interval_s must be a finite number > 0, got {self.interval_s!r}")
        if self.quiet_interval_s is None:
            object.__setattr__(self, "quiet_interval_s", default_quiet_interval(self.interval_s))
        elif not (math.isfinite(self.quiet_interval_s) and self.quiet_interval_s >= self.interval_s):
            raise ValueError(
                f"quiet_interval_s must be finite and >= interval_s ({self.interval_s}), got {self.quiet_interval_s!r}"
            )

    @property
    def quiet_s(self) -> float:
        """``quiet_interval_s``, resolved (never None after construction)."""
        assert self.quiet_interval_s is not None
        return self.quiet_interval_s

    def on_speech(self, phase: Literal["started", "stopped"]) -> bool:
        """Whether the user starting/stopping to speak should send the latest frame now (if it
        changed since the last frame sent: ``FrameThrottle.nudge()``). Only in ``turn`` mode."""
        if phase not in ("started", "stopped"):
            raise ValueError(f"phase must be 'started' or 'stopped', not {phase!r}")
        return self.mode == "turn"

    def interval(self, speaking: bool) -> float | None:
        """The throttle interval to apply now (``FrameThrottle.interval_s``); None: no automatic
        frames (``manual``: only the "Send frame" button). ``speaking``: the user is speaking."""
        if self.mode == "manual":
            return None
        if self.mode == "interval" or speaking:
            return self.interval_s
        return self.quiet_s
