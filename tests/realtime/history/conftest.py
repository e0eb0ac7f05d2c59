"""``store``: a fresh history file per test, closed (writer joined) after it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from realtime.history import HistoryStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HistoryStore]:
    s = HistoryStore(tmp_path / "h.db")
    yield s
    s.close()
