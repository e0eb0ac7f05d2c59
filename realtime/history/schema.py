"""The history file's tables, their version (``PRAGMA user_version``), and the steps up to it."""

from __future__ import annotations

import sqlite3

from .connection import write_transaction

__all__ = ["SCHEMA_VERSION", "migrate"]

SCHEMA_VERSION = 3

_VERSION_3 = """
CREATE TABLE audio (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    role        TEXT NOT NULL,
    item_id     TEXT,
    started_at  REAL NOT NULL,
    seconds     REAL NOT NULL,
    codec       TEXT NOT NULL,
    data        BLOB NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);
ALTER TABLE conversations ADD COLUMN audio_cut_at REAL;
ALTER TABLE images ADD COLUMN sent BLOB
"""

_VERSION_1 = """
CREATE TABLE conversations (
    id          TEXT PRIMARY KEY,
    started_at  REAL NOT NULL,
    ended_at    REAL,
    last_at     REAL NOT NULL,
    settings    TEXT NOT NULL,
    backend     TEXT NOT NULL,
    model       TEXT NOT NULL
);
CREATE TABLE items (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    item_id     TEXT NOT NULL,
    role        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    text        TEXT NOT NULL DEFAULT '',
    tool_name   TEXT,
    tool_args   TEXT,
    tool_result TEXT,
    created_at  REAL NOT NULL,
    PRIMARY KEY (conversation_id, seq),
    UNIQUE (conversation_id, item_id)
);
CREATE TABLE images (
    conversation_id TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    jpeg        BLOB NOT NULL,
    PRIMARY KEY (conversation_id, seq),
    FOREIGN KEY (conversation_id, seq) REFERENCES items(conversation_id, seq) ON DELETE CASCADE
);
CREATE TABLE turns (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    seq           INTEGER NOT NULL,
    turn_id       TEXT,
    latency_ms    REAL,
    input_tokens  INTEGER,
    output_tokens INTEGER,
    total_tokens  INTEGER,
    cost_usd      REAL,
    details       TEXT NOT NULL,
    created_at    REAL NOT NULL,
    PRIMARY KEY (conversation_id, seq),
    UNIQUE (conversation_id, turn_id)
);
CREATE INDEX conversations_started ON conversations(started_at DESC);
"""


def migrate(conn: sqlite3.Connection, version: int) -> None:
    """Bring a file at schema ``version`` (0: a new, empty file) up to ``SCHEMA_VERSION``, in one
    transaction: a file is either fully upgraded or left as it was."""
    with write_transaction(conn):
        if version < 1:
            for statement in _VERSION_1.split(";"):
                if statement.strip():
                    conn.execute(statement)
        if version < 2:  # who placed the call: "studio" (a tab of this app) or "api" (another client)
            conn.execute("ALTER TABLE conversations ADD COLUMN source TEXT NOT NULL DEFAULT 'studio'")
        if version < 3:  # both sides' voice as clips (Ogg Opus); when the per-conversation cap cut it
            for statement in _VERSION_3.split(";"):
                if statement.strip():
                    conn.execute(statement)
        # Future migrations: `if version < 4: ...` here, one step at a time.
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
