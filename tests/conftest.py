"""Shared fixtures. ``engine``: one local engine per test module (any non-empty key accepted)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def engine() -> Iterator[localengine.runner.RunningEngine]:  # noqa: F821
    from localengine.runner import start_engine

    with start_engine() as running:
        yield running
