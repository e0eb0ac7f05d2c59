"""The server's conversation limit: read from the environment, counted over live calls only."""

from __future__ import annotations

import gc
from dataclasses import dataclass

import pytest

from realtime.admission import Admission, busy_message, default_max, max_from_env


@dataclass(eq=False)
class Call:
    state: str = "connected"

    @property
    def running(self) -> bool:
        return self.state != "closed"


def test_the_limit_comes_from_the_environment_else_two_per_core():
    assert max_from_env({"REALTIME_MAX_CONVERSATIONS": "3"}) == 3
    assert max_from_env({}) == default_max() >= 2
    assert default_max(cores=4) == 8 and default_max(cores=1) == 2
    for bad in ("0", "-2", "many", "1.5"):
        with pytest.raises(ValueError, match="REALTIME_MAX_CONVERSATIONS"):
            max_from_env({"REALTIME_MAX_CONVERSATIONS": bad})


def test_calls_past_the_limit_are_turned_away_until_one_ends():
    gate = Admission(2)
    first, second, third = Call(), Call(), Call()
    assert gate.admit(first) is None and gate.admit(second) is None
    assert gate.full() and gate.admit(third) == busy_message(2)
    assert busy_message(2) == "The studio is busy: 2 conversations are running on this server. Try again in a minute."
    first.state = "closed"  # hung up
    assert not gate.full() and gate.admit(third) is None
    del second, third
    gc.collect()  # a call nobody holds any more does not count
    assert gate.running() == 0
