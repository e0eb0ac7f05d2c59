"""Shared fixtures. ``engine``: one local engine per test module (any non-empty key accepted)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from localengine.runner import RunningEngine


@pytest.fixture(scope="module")
def engine() -> Iterator[RunningEngine]:
    from localengine.runner import start_engine

    with start_engine() as running:
        yield running
