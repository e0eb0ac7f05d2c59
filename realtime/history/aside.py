"""Where a damaged file goes: a free name beside it, so it is kept (never deleted) and a fresh
file can take its place. Shared by the history database and the presets file."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

__all__ = ["aside_path"]


def aside_path(path: Path) -> Path:
    """``<name>.corrupt-<YYYYmmdd-HHMMSS>`` beside ``path`` (``-2``, ``-3``... if that is taken)."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    return aside
