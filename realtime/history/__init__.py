"""Conversation history in SQLite: what was said, shown and spent, kept across restarts.

The package's one job is to persist final transcript items, image thumbnails, tool calls and
per-turn metrics of each call, and read them back. One module per part of that job:

| module | job |
|---|---|
| ``connection`` | SQLite connections, write transactions, what an error means (busy, damaged) |
| ``schema`` | the tables, ``SCHEMA_VERSION``, migrations |
| ``records`` | the values a saved conversation reads back as |
| ``store`` | ``HistoryStore``: open (repair or refuse a bad file), list, load, delete |
| ``writer`` | ``Recorder``: the one writer thread, and the one owner of a call's record |
| ``tables`` | what each queued write does to the tables |
| ``scrub`` | settings as JSON without secrets |
| ``export`` | Markdown and JSON exports |
| ``registry`` | the server process's store, at ``REALTIME_HISTORY_DB`` |
| ``aside`` | where a damaged file is moved |

The API key never reaches the database: settings are stored without secret fields, and secret
strings are scrubbed from the text stored beside them.
"""

from __future__ import annotations

from .connection import DEFAULT_BUSY_TIMEOUT_MS
from .export import export_json, export_markdown, format_duration
from .records import ConversationRecord, ConversationSummary, StoredClip, StoredItem, StoredTurn
from .registry import (
    DEFAULT_DB_PATH,
    ENV_DB_PATH,
    close_process_stores,
    default_db_path,
    open_history,
    process_store,
)
from .schema import SCHEMA_VERSION
from .scrub import settings_record
from .store import HistoryStore, HistoryUnavailable
from .writer import RecordableBridge, Recorder

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_MS",
    "DEFAULT_DB_PATH",
    "ENV_DB_PATH",
    "SCHEMA_VERSION",
    "ConversationRecord",
    "ConversationSummary",
    "HistoryStore",
    "HistoryUnavailable",
    "RecordableBridge",
    "Recorder",
    "StoredClip",
    "StoredItem",
    "StoredTurn",
    "close_process_stores",
    "default_db_path",
    "export_json",
    "export_markdown",
    "format_duration",
    "open_history",
    "process_store",
    "settings_record",
]
