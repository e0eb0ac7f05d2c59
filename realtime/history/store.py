"""One SQLite history file: open it (repairing or refusing a bad file), list, load and delete.

Storage facts:
- WAL mode, ``synchronous=NORMAL``, ``busy_timeout`` (see ``connection``).
- Schema version in ``PRAGMA user_version``; a newer file than this code knows is left untouched.
- A damaged file is moved aside (never deleted) and a fresh one started; a locked file disables
  recording. Both are reported as a plain sentence (``HistoryUnavailable``, ``notice``), never a
  traceback.
Writing a call as it happens is the recorder's job (``writer``); the store owns its one recorder.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from realtime.errors import UserFacingError

from .aside import aside_path
from .connection import DEFAULT_BUSY_TIMEOUT_MS, connect, is_busy, is_corrupt, write_transaction
from .records import ConversationRecord, ConversationSummary, StoredClip, StoredItem, StoredTurn
from .schema import SCHEMA_VERSION, migrate
from .scrub import JsonObject
from .writer import Recorder

__all__ = ["HistoryStore", "HistoryUnavailable"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")


class HistoryUnavailable(UserFacingError):
    """History cannot be used right now; ``message`` says why and what happened to the file."""


_SUMMARY_SQL = """
    SELECT c.id, c.started_at, c.ended_at, c.last_at, c.backend, c.model, c.source,
           (SELECT COUNT(*) FROM turns t WHERE t.conversation_id = c.id),
           (SELECT COUNT(*) FROM items i WHERE i.conversation_id = c.id AND i.role = 'assistant'
                                              AND i.kind IN ('text', 'audio')),
           (SELECT COALESCE(SUM(t.cost_usd), 0) FROM turns t WHERE t.conversation_id = c.id),
           (SELECT i.text FROM items i WHERE i.conversation_id = c.id AND i.role = 'user'
               AND i.kind IN ('text', 'audio') AND TRIM(i.text) != '' ORDER BY i.seq LIMIT 1)
    FROM conversations c
"""
_SEARCH_SQL = """ WHERE EXISTS (SELECT 1 FROM items i WHERE i.conversation_id = c.id AND (
                      i.text LIKE ?1 ESCAPE '\\' OR i.tool_name LIKE ?1 ESCAPE '\\'
                      OR i.tool_args LIKE ?1 ESCAPE '\\' OR i.tool_result LIKE ?1 ESCAPE '\\'))"""
_ITEM_COLUMNS = "seq, item_id, role, kind, text, tool_name, tool_args, tool_result, created_at"
_TURN_COLUMNS = "seq, turn_id, latency_ms, input_tokens, output_tokens, total_tokens, cost_usd, details, created_at"


def _summary(row: tuple[Any, ...]) -> ConversationSummary:
    cid, started, ended, last_at, backend, model, source, n_turns, n_assistant, cost, first = row
    end = ended if ended is not None else last_at
    first_line = (first or "").strip().splitlines()[0] if (first or "").strip() else ""
    if len(first_line) > 120:
        first_line = first_line[:119] + "…"
    return ConversationSummary(
        id=cid,
        started_at=started,
        ended_at=ended,
        duration_s=max(0.0, end - started),
        turns=int(n_turns or n_assistant or 0),  # no metrics (e.g. text mode): count the replies
        cost_usd=float(cost or 0.0),
        first_user_line=first_line,
        backend=backend,
        model=model,
        source=source,
    )


def _json_object(text: str) -> JsonObject:
    """A JSON object stored by this app; ``{}`` if the text was damaged."""
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _item(row: tuple[Any, ...], images: Mapping[int, tuple[bytes, bytes | None]]) -> StoredItem:
    seq, item_id, role, kind, text, tool_name, tool_args, tool_result, created_at = row
    thumb, sent = images.get(seq, (None, None))
    return StoredItem(seq, item_id, role, kind, text, tool_name, tool_args, tool_result, created_at, thumb, sent)


def _turn(row: tuple[Any, ...]) -> StoredTurn:
    seq, turn_id, latency, in_tokens, out_tokens, total_tokens, cost, details, created_at = row
    return StoredTurn(
        seq, turn_id, latency, in_tokens, out_tokens, total_tokens, cost, _json_object(details), created_at
    )


def _load(conn: sqlite3.Connection, conversation_id: str) -> ConversationRecord:
    row = conn.execute(_SUMMARY_SQL + " WHERE c.id = ?", (conversation_id,)).fetchone()
    if row is None:
        raise KeyError(conversation_id)
    (settings_json,) = conn.execute("SELECT settings FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
    images = {
        seq: (jpeg, sent)
        for seq, jpeg, sent in conn.execute(
            "SELECT seq, jpeg, sent FROM images WHERE conversation_id = ?", (conversation_id,)
        )
    }
    items = tuple(
        _item(r, images)
        for r in conn.execute(
            f"SELECT {_ITEM_COLUMNS} FROM items WHERE conversation_id = ? ORDER BY seq", (conversation_id,)
        )
    )
    turns = tuple(
        _turn(r)
        for r in conn.execute(
            f"SELECT {_TURN_COLUMNS} FROM turns WHERE conversation_id = ? ORDER BY seq",
            (conversation_id,),
        )
    )
    audio = tuple(
        StoredClip(*r)
        for r in conn.execute(
            "SELECT seq, role, item_id, started_at, seconds, codec, data FROM audio"
            " WHERE conversation_id = ? ORDER BY started_at, seq",
            (conversation_id,),
        )
    )
    (cut_at,) = conn.execute("SELECT audio_cut_at FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
    return ConversationRecord(_summary(row), _json_object(settings_json), items, turns, audio, cut_at)


class HistoryStore:
    """One SQLite history file. Reads open a short-lived connection each (any thread)."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS):
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self.notice: str | None = None  # set when a damaged file was replaced
        self._recorder: Recorder | None = None
        self._lock = threading.Lock()
        self._open()

    # -- opening ------------------------------------------------------------------------------
    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HistoryUnavailable(
                f"History is off: cannot create the folder for {self.path} ({exc.strerror or exc}). "
                "Conversations work but are not saved."
            ) from None
        try:
            self._init_schema()
        except sqlite3.DatabaseError as exc:
            if is_corrupt(exc):
                self._start_afresh(exc)
            elif is_busy(exc):
                raise HistoryUnavailable(
                    f"History is off: the database {self.path} is locked by another program ({exc}). "
                    "Recording is disabled for now; conversations still work. Close the other program "
                    "and restart the app to record again."
                ) from None
            else:
                raise HistoryUnavailable(
                    f"History is off: the database {self.path} cannot be used ({exc}). Recording is "
                    "disabled; conversations still work."
                ) from None

    def _start_afresh(self, damage: sqlite3.DatabaseError) -> None:
        """Move the damaged file aside and start an empty history in its place."""
        try:
            aside = self._move_aside()
        except OSError as move_exc:
            raise HistoryUnavailable(
                f"History is off: {self.path} is damaged ({damage}) and could not be moved aside "
                f"({move_exc.strerror or move_exc}); it was left untouched and recording is "
                "disabled. Move or delete it to start a fresh history."
            ) from None
        try:
            self._init_schema()
        except sqlite3.Error as exc:
            raise HistoryUnavailable(
                f"History is off: {self.path} was damaged ({damage}); it was moved aside to "
                f"{aside} (not deleted), but a fresh database could not be started ({exc})."
            ) from None
        self.notice = (
            f"The history database {self.path} was damaged ({damage}). It was moved aside to "
            f"{aside} (not deleted) and a fresh, empty history was started; recording is on."
        )
        log.warning("%s", self.notice)

    def _init_schema(self) -> None:
        conn = connect(self.path, self.busy_timeout_ms)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            check = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(f"database disk image is malformed: {check}")
            if version > SCHEMA_VERSION:
                raise HistoryUnavailable(
                    f"History is off: {self.path} was written by a newer version of the app (schema "
                    f"{version}, this one knows {SCHEMA_VERSION}). It was left untouched; recording is "
                    "disabled."
                )
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"database is locked (journal mode stayed {mode})")
            conn.execute("PRAGMA synchronous = NORMAL")
            if version < SCHEMA_VERSION:
                migrate(conn, version)
            else:
                with write_transaction(conn):  # a write-lock probe: a file held exclusively fails here, not mid-call
                    pass
        finally:
            conn.close()

    def _move_aside(self) -> Path:
        aside = aside_path(self.path)
        os.replace(self.path, aside)
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                os.replace(side, aside.with_name(aside.name + suffix))
        return aside

    # -- reading ------------------------------------------------------------------------------
    def _read(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        try:
            conn = connect(self.path, self.busy_timeout_ms)
        except sqlite3.Error as exc:
            raise HistoryUnavailable(f"History cannot be read from {self.path}: {exc}.") from None
        try:
            return fn(conn)
        except sqlite3.Error as exc:
            if is_busy(exc):
                raise HistoryUnavailable(
                    f"History is busy: {self.path} is locked by another program ({exc}). Try again in a moment."
                ) from None
            raise HistoryUnavailable(f"History cannot be read from {self.path}: {exc}.") from None
        finally:
            conn.close()

    def list_conversations(self, search: str | None = None) -> tuple[ConversationSummary, ...]:
        """Newest first. ``search`` matches (case-insensitively) any item text or tool call."""
        sql = _SUMMARY_SQL
        args: tuple[str, ...] = ()
        term = (search or "").strip()
        if term:
            sql += _SEARCH_SQL
            args = ("%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%",)
        sql += " ORDER BY c.started_at DESC, c.rowid DESC"
        return self._read(lambda conn: tuple(_summary(r) for r in conn.execute(sql, args)))

    def load(self, conversation_id: str) -> ConversationRecord:
        """The whole conversation; ``KeyError`` if there is none with this id (e.g. deleted)."""
        return self._read(lambda conn: _load(conn, conversation_id))

    def _write(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        def run(conn: sqlite3.Connection) -> _T:
            with write_transaction(conn):
                return fn(conn)

        return self._read(run)

    def delete(self, conversation_id: str) -> bool:
        """Delete one conversation (items, images, turns). True if it existed."""
        return bool(
            self._write(lambda c: c.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,)).rowcount)
        )

    def delete_all(self) -> int:
        """Delete every conversation; returns how many there were."""
        return self._write(lambda c: c.execute("DELETE FROM conversations").rowcount)

    # -- recording ----------------------------------------------------------------------------
    @property
    def recorder(self) -> Recorder:
        """The store's one recorder (and one writer thread), started on first use."""
        with self._lock:
            if self._recorder is None:
                self._recorder = Recorder(self.path, busy_timeout_ms=self.busy_timeout_ms)
            return self._recorder

    def current_notice(self) -> str | None:
        """What the page should say now: the recorder's problem if it has one (writes waiting on a
        lock, an update it could not save), else the store's (a damaged file was replaced)."""
        with self._lock:
            rec = self._recorder
        return (rec.notice if rec is not None else None) or self.notice

    def close(self, timeout: float = 5.0) -> None:
        """Flush queued writes and join the writer thread. Idempotent."""
        with self._lock:
            rec, self._recorder = self._recorder, None
        if rec is not None:
            rec.close(timeout)
