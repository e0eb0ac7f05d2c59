"""SQLite connections to the history file, its write transactions, and what its errors mean.

Every connection waits out a briefly busy file (``busy_timeout``) instead of failing, and runs
with ``synchronous=NORMAL``: with WAL, a killed process loses no committed transaction (a power
cut may lose the last few), and a commit needs no fsync.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["DEFAULT_BUSY_TIMEOUT_MS", "connect", "is_busy", "is_corrupt", "write_transaction"]

DEFAULT_BUSY_TIMEOUT_MS = 2000

# SQLite result codes (primary code = extended & 0xFF).
_BUSY_CODES = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED
_CORRUPT_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB


def connect(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    """An autocommit connection (transactions are explicit) usable from any thread."""
    conn = sqlite3.connect(str(path), timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")  # per connection: WAL + NORMAL, no fsync per commit
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` (the write lock up front, so a busy file fails here, not mid-way),
    then ``COMMIT``, or ``ROLLBACK`` if anything in the block (or the commit) raised."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _code(exc: BaseException) -> int:
    # Only errors raised by SQLite itself carry a code; ones raised in Python do not.
    return int(getattr(exc, "sqlite_errorcode", -1)) & 0xFF


def is_busy(exc: BaseException) -> bool:
    """The file is locked by someone else (worth waiting for, not damage)."""
    return _code(exc) in _BUSY_CODES or "locked" in str(exc).lower()


def is_corrupt(exc: BaseException) -> bool:
    """The file is not a (sound) SQLite database."""
    text = str(exc).lower()
    return _code(exc) in _CORRUPT_CODES or "not a database" in text or "malformed" in text
