"""Which history file this server process uses, opened once and shared by every session.

``process_store()`` gives every Streamlit session the same ``HistoryStore`` (so one writer thread
per file), opened on first use and flushed at exit; a file that cannot be opened is reported as a
sentence and retried after a while, never raised to the page.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from .connection import DEFAULT_BUSY_TIMEOUT_MS
from .store import HistoryStore, HistoryUnavailable

__all__ = [
    "DEFAULT_DB_PATH",
    "ENV_DB_PATH",
    "close_process_stores",
    "default_db_path",
    "open_history",
    "process_store",
]

log = logging.getLogger(__name__)

DEFAULT_DB_PATH = "./data/realtime-studio.db"
ENV_DB_PATH = "REALTIME_HISTORY_DB"
_RETRY_UNAVAILABLE_S = 10.0

_process_lock = threading.Lock()
_process_stores: dict[Path, HistoryStore] = {}
_process_failures: dict[Path, tuple[float, str]] = {}  # path -> (when it failed, why)


def default_db_path(env: Mapping[str, str] | None = None) -> Path:
    """The database path: ``REALTIME_HISTORY_DB``, else ``./data/realtime-studio.db``."""
    env = os.environ if env is None else env
    return Path(env.get(ENV_DB_PATH) or DEFAULT_DB_PATH)


def open_history(
    path: str | os.PathLike[str] | None = None, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS
) -> tuple[HistoryStore | None, str | None]:
    """For the app: ``(store, notice)``; ``(None, message)`` when history is unavailable."""
    try:
        store = HistoryStore(default_db_path() if path is None else path, busy_timeout_ms=busy_timeout_ms)
    except HistoryUnavailable as exc:
        log.warning("%s", exc.message)
        return None, exc.message
    return store, store.notice


def process_store() -> tuple[HistoryStore | None, str | None]:
    """The history store of this server process for the configured path (``REALTIME_HISTORY_DB``,
    default ``./data/realtime-studio.db``), opened on first use and flushed at exit.

    Returns ``(store, notice)``: ``notice`` is a sentence for the page when the file was damaged
    and replaced, when writes are waiting on a lock, or why history is off (then ``store`` is None;
    opening is retried after 10 s).
    """
    path = default_db_path().resolve()
    with _process_lock:
        store = _process_stores.get(path)
        if store is not None:
            return store, store.current_notice()
        failed = _process_failures.get(path)
        if failed is not None and time.monotonic() - failed[0] < _RETRY_UNAVAILABLE_S:
            return None, failed[1]
        store, notice = open_history(path)
        if store is None:
            _process_failures[path] = (time.monotonic(), notice or "History is off.")
            return None, notice
        _process_failures.pop(path, None)
        _process_stores[path] = store
        atexit.register(store.close)
        return store, notice


def close_process_stores(timeout: float = 5.0) -> None:
    """Flush and close every store ``process_store`` opened (server shutdown, tests)."""
    with _process_lock:
        stores = list(_process_stores.values())
        _process_stores.clear()
        _process_failures.clear()
    for store in stores:
        store.close(timeout)
