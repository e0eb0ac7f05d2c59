"""Shared fixtures. ``engine``: one local engine per test module (any non-empty key accepted).

Hypothesis runs without its timing checks (per-example deadline, "too slow" data generation): on a
2-core machine that also runs the engine and a browser, they fail on load, not on a property."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("loaded-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("loaded-machine")

if TYPE_CHECKING:
    from localengine.runner import RunningEngine


@pytest.fixture(scope="module")
def engine() -> Iterator[RunningEngine]:
    from localengine.runner import start_engine

    with start_engine() as running:
        yield running
