"""Conversation history in SQLite: what was said, shown and spent, kept across restarts.

One job: persist final transcript items, image thumbnails, tool calls and per-turn metrics, and
read them back. The bridge hands updates to ``Recorder.listener(...)``, which only puts them on a
queue; one writer thread per store does every write (never on the media/bridge loop) and commits
what is queued at once (one update at a conversational pace, up to 256 in a burst), so a crash
loses at most the update being written (in a burst: that batch and whatever is still queued).

Storage facts:
- WAL mode, ``synchronous=NORMAL`` (a killed process loses no committed transaction; a power cut may
  lose the last few), ``busy_timeout`` so a briefly busy file waits instead of failing.
- Schema version in ``PRAGMA user_version``; a newer file than this code knows is left untouched.
- A damaged file is moved aside (never deleted) and a fresh one started; a locked file disables
  recording. Both are reported as a plain sentence, never a traceback.
- The API key never reaches the database: settings are stored without secret fields.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import json
import logging
import os
import queue
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_DB_PATH = "./data/realtime-studio.db"
ENV_DB_PATH = "REALTIME_HISTORY_DB"
SCHEMA_VERSION = 1
DEFAULT_BUSY_TIMEOUT_MS = 2000

_SECRET_WORDS = ("key", "secret", "token", "password")

_SCHEMA = """
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

# SQLite result codes (primary code = extended & 0xFF).
_BUSY_CODES = {5, 6}  # SQLITE_BUSY, SQLITE_LOCKED
_CORRUPT_CODES = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB


class HistoryUnavailable(Exception):
    """History cannot be used right now; ``message`` says why and what happened to the file."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# ---------------------------------------------------------------------------------------- values


@dataclass(frozen=True)
class ConversationSummary:
    id: str
    started_at: float
    ended_at: float | None
    duration_s: float
    turns: int
    cost_usd: float
    first_user_line: str
    backend: str
    model: str


@dataclass(frozen=True)
class StoredItem:
    seq: int
    item_id: str
    role: str
    kind: str
    text: str
    tool_name: str | None
    tool_args: str | None
    tool_result: str | None
    created_at: float
    image_jpeg: bytes | None = None


@dataclass(frozen=True)
class StoredTurn:
    seq: int
    turn_id: str | None
    latency_ms: float | None
    input_tokens: int | None
    output_tokens: int | None
    total_tokens: int | None
    cost_usd: float | None
    details: Mapping[str, Any]
    created_at: float


@dataclass(frozen=True)
class ConversationRecord:
    summary: ConversationSummary
    settings: Mapping[str, Any]
    items: tuple[StoredItem, ...]
    turns: tuple[StoredTurn, ...]

    @property
    def id(self) -> str:
        return self.summary.id

    @property
    def images(self) -> tuple[StoredItem, ...]:
        return tuple(i for i in self.items if i.image_jpeg is not None)

    @property
    def tool_calls(self) -> tuple[StoredItem, ...]:
        return tuple(i for i in self.items if i.kind == "tool_call")


# ------------------------------------------------------------------------------- settings -> JSON


def _is_secret_name(name: str) -> bool:
    low = name.lower()
    return any(word in low for word in _SECRET_WORDS)


def _plain(value: Any) -> Any:
    """A JSON-able copy of ``value``: dataclasses become dicts, secret-named fields are dropped."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            if not f.repr or _is_secret_name(f.name):
                continue
            out[f.name] = _plain(getattr(value, f.name))
        return out
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items() if not _is_secret_name(str(k))}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _secret_values(value: Any) -> tuple[str, ...]:
    """Every non-empty string held in a secret field of ``value`` (to scrub it from text)."""
    found: list[str] = []
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if (not f.repr or _is_secret_name(f.name)) and isinstance(v, str) and len(v) >= 8:
                found.append(v)
            elif dataclasses.is_dataclass(v):
                found.extend(_secret_values(v))
    return tuple(found)


def settings_record(settings: Any) -> dict[str, Any]:
    """The settings as a JSON-able dict without the API key (or any other secret field)."""
    plain = _plain(settings)
    if not isinstance(plain, dict):
        return {"value": plain}
    secrets = _secret_values(settings)
    text = json.dumps(plain)
    if any(s in text for s in secrets):  # e.g. a key pasted into the instructions
        for s in secrets:
            text = text.replace(s, "[redacted]")
        plain = json.loads(text)
    for attr in ("backend", "model"):
        if attr not in plain:
            v = getattr(settings, attr, None)
            if isinstance(v, str):
                plain[attr] = v
    return plain


# ---------------------------------------------------------------------------- connection helpers


def default_db_path(settings: Any = None, env: Mapping[str, str] | None = None) -> Path:
    """The database path: a ``history_db`` setting, else ``REALTIME_HISTORY_DB``, else the default."""
    env = os.environ if env is None else env
    configured = getattr(settings, "history_db", None) if settings is not None else None
    return Path(configured or env.get(ENV_DB_PATH) or DEFAULT_DB_PATH)


def _code(exc: BaseException) -> int:
    return int(getattr(exc, "sqlite_errorcode", -1)) & 0xFF


def _is_busy(exc: BaseException) -> bool:
    return _code(exc) in _BUSY_CODES or "locked" in str(exc).lower()


def _is_corrupt(exc: BaseException) -> bool:
    text = str(exc).lower()
    return _code(exc) in _CORRUPT_CODES or "not a database" in text or "malformed" in text


def _connect(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")  # per connection: WAL + NORMAL, no fsync per commit
    except BaseException:
        conn.close()
        raise
    return conn


def _fmt_time(ts: float | None) -> str:
    if ts is None:
        return "?"
    return _dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    if h:
        return f"{h}h {m:02d}m {s:02d}s"
    if m:
        return f"{m}m {s:02d}s"
    return f"{s}s"


# ------------------------------------------------------------------------------------ the store


class HistoryStore:
    """One SQLite history file. Reads open a short-lived connection each (any thread)."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS):
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self.notice: str | None = None
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
            if _is_corrupt(exc):
                try:
                    aside = self._move_aside()
                except OSError as move_exc:
                    raise HistoryUnavailable(
                        f"History is off: {self.path} is damaged ({exc}) and could not be moved aside "
                        f"({move_exc.strerror or move_exc}); it was left untouched and recording is "
                        "disabled. Move or delete it to start a fresh history."
                    ) from None
                try:
                    self._init_schema()
                except sqlite3.Error as exc2:
                    raise HistoryUnavailable(
                        f"History is off: {self.path} was damaged ({exc}); it was moved aside to "
                        f"{aside} (not deleted), but a fresh database could not be started ({exc2})."
                    ) from None
                self.notice = (
                    f"The history database {self.path} was damaged ({exc}). It was moved aside to "
                    f"{aside} (not deleted) and a fresh, empty history was started; recording is on."
                )
                log.warning("%s", self.notice)
            elif _is_busy(exc):
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

    def _init_schema(self) -> None:
        conn = _connect(self.path, self.busy_timeout_ms)
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
                conn.execute("BEGIN IMMEDIATE")
                try:
                    if version == 0:
                        for stmt in _SCHEMA.split(";"):
                            if stmt.strip():
                                conn.execute(stmt)
                    # Future migrations: `if version < 2: ...` here, one step at a time.
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            else:
                # A write-lock probe: a file someone holds exclusively fails here, not mid-call.
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("COMMIT")
        finally:
            conn.close()

    def _move_aside(self) -> Path:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while aside.exists():
            n += 1
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
        os.replace(self.path, aside)
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                os.replace(side, aside.with_name(aside.name + suffix))
        return aside

    # -- reading ------------------------------------------------------------------------------
    def _read(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        try:
            conn = _connect(self.path, self.busy_timeout_ms)
        except sqlite3.Error as exc:
            raise HistoryUnavailable(f"History cannot be read from {self.path}: {exc}.") from None
        try:
            return fn(conn)
        except sqlite3.Error as exc:
            if _is_busy(exc):
                raise HistoryUnavailable(
                    f"History is busy: {self.path} is locked by another program ({exc}). Try again in a moment."
                ) from None
            raise HistoryUnavailable(f"History cannot be read from {self.path}: {exc}.") from None
        finally:
            conn.close()

    _SUMMARY_SQL = """
        SELECT c.id, c.started_at, c.ended_at, c.last_at, c.backend, c.model,
               (SELECT COUNT(*) FROM turns t WHERE t.conversation_id = c.id),
               (SELECT COUNT(*) FROM items i WHERE i.conversation_id = c.id AND i.role = 'assistant'
                                                  AND i.kind IN ('text', 'audio')),
               (SELECT COALESCE(SUM(t.cost_usd), 0) FROM turns t WHERE t.conversation_id = c.id),
               (SELECT i.text FROM items i WHERE i.conversation_id = c.id AND i.role = 'user'
                   AND i.kind IN ('text', 'audio') AND TRIM(i.text) != '' ORDER BY i.seq LIMIT 1)
        FROM conversations c
    """

    @staticmethod
    def _summary(row: tuple[Any, ...]) -> ConversationSummary:
        cid, started, ended, last_at, backend, model, n_turns, n_assistant, cost, first = row
        end = ended if ended is not None else last_at
        first_line = (first or "").strip().splitlines()[0] if (first or "").strip() else ""
        if len(first_line) > 120:
            first_line = first_line[:119] + "…"
        return ConversationSummary(
            id=cid,
            started_at=started,
            ended_at=ended,
            duration_s=max(0.0, end - started),
            turns=int(n_turns or n_assistant or 0),
            cost_usd=float(cost or 0.0),
            first_user_line=first_line,
            backend=backend,
            model=model,
        )

    def list_conversations(self, search: str | None = None) -> tuple[ConversationSummary, ...]:
        """Newest first. ``search`` matches (case-insensitively) any item text or tool call."""

        def run(conn: sqlite3.Connection) -> tuple[ConversationSummary, ...]:
            sql, args = self._SUMMARY_SQL, ()
            term = (search or "").strip()
            if term:
                pattern = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
                sql += """ WHERE EXISTS (SELECT 1 FROM items i WHERE i.conversation_id = c.id AND (
                              i.text LIKE ?1 ESCAPE '\\' OR i.tool_name LIKE ?1 ESCAPE '\\'
                              OR i.tool_args LIKE ?1 ESCAPE '\\' OR i.tool_result LIKE ?1 ESCAPE '\\'))"""
                args = (pattern,)
            sql += " ORDER BY c.started_at DESC, c.rowid DESC"
            return tuple(self._summary(r) for r in conn.execute(sql, args))

        return self._read(run)

    def load(self, conversation_id: str) -> ConversationRecord:
        def run(conn: sqlite3.Connection) -> ConversationRecord:
            row = conn.execute(self._SUMMARY_SQL + " WHERE c.id = ?", (conversation_id,)).fetchone()
            if row is None:
                raise KeyError(conversation_id)
            settings_json = conn.execute(
                "SELECT settings FROM conversations WHERE id = ?", (conversation_id,)
            ).fetchone()[0]
            try:
                settings = json.loads(settings_json)
            except ValueError:
                settings = {}
            images = dict(
                conn.execute("SELECT seq, jpeg FROM images WHERE conversation_id = ?", (conversation_id,)).fetchall()
            )
            items = tuple(
                StoredItem(
                    seq=r[0],
                    item_id=r[1],
                    role=r[2],
                    kind=r[3],
                    text=r[4],
                    tool_name=r[5],
                    tool_args=r[6],
                    tool_result=r[7],
                    created_at=r[8],
                    image_jpeg=bytes(images[r[0]]) if r[0] in images else None,
                )
                for r in conn.execute(
                    "SELECT seq, item_id, role, kind, text, tool_name, tool_args, tool_result, created_at"
                    " FROM items WHERE conversation_id = ? ORDER BY seq",
                    (conversation_id,),
                )
            )
            turns = []
            for r in conn.execute(
                "SELECT seq, turn_id, latency_ms, input_tokens, output_tokens, total_tokens,"
                " cost_usd, details, created_at FROM turns WHERE conversation_id = ? ORDER BY seq",
                (conversation_id,),
            ):
                try:
                    details = json.loads(r[7])
                except ValueError:
                    details = {}
                turns.append(
                    StoredTurn(
                        seq=r[0],
                        turn_id=r[1],
                        latency_ms=r[2],
                        input_tokens=r[3],
                        output_tokens=r[4],
                        total_tokens=r[5],
                        cost_usd=r[6],
                        details=details,
                        created_at=r[8],
                    )
                )
            return ConversationRecord(summary=self._summary(row), settings=settings, items=items, turns=tuple(turns))

        return self._read(run)

    def _write(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        def run(conn: sqlite3.Connection) -> Any:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
                conn.execute("COMMIT")
                return result
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        return self._read(run)

    def delete(self, conversation_id: str) -> bool:
        """Delete one conversation (items, images, turns). True if it existed."""
        return bool(
            self._write(lambda c: c.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,)).rowcount)
        )

    def delete_all(self) -> int:
        """Delete every conversation; returns how many there were."""
        return int(self._write(lambda c: c.execute("DELETE FROM conversations").rowcount))

    # -- recording ----------------------------------------------------------------------------
    @property
    def recorder(self) -> Recorder:
        """The store's one recorder (and one writer thread), started on first use."""
        with self._lock:
            if self._recorder is None:
                self._recorder = Recorder(self)
            return self._recorder

    def close(self, timeout: float = 5.0) -> None:
        """Flush queued writes and join the writer thread. Idempotent."""
        with self._lock:
            rec, self._recorder = self._recorder, None
        if rec is not None:
            rec.close(timeout)


# ---------------------------------------------------------------------------------- the recorder


@dataclass(frozen=True)
class _Start:
    conversation_id: str
    at: float
    settings_json: str
    backend: str
    model: str


@dataclass(frozen=True)
class _Update:
    conversation_id: str
    at: float
    update: Any


@dataclass(frozen=True)
class _End:
    conversation_id: str
    at: float


@dataclass(frozen=True)
class _Flush:
    done: threading.Event


_STOP = object()


def _getattr_first(obj: Any, names: Iterable[str]) -> Any:
    for name in names:
        value = getattr(obj, name, None)
        if value is not None:
            return value
    return None


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    try:
        return json.dumps(_plain(value), ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


class Recorder:
    """Records conversations through one writer thread fed by a queue.

    ``listener(...)`` callables only enqueue, so they are safe on the bridge loop. If the file is
    briefly locked, the writer retries (holding the update, losing nothing) and says so in
    ``notice``; ``close()`` flushes what is queued and joins the thread.
    """

    def __init__(self, store: HistoryStore, *, retry_delay_s: float = 0.2):
        self._store = store
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._retry_delay_s = retry_delay_s
        self._closed = False
        self._closing_since: float | None = None
        self._close_grace_s = 3.0
        self._close_lock = threading.Lock()
        self._seq: dict[str, int] = {}
        self._turn_seq: dict[str, int] = {}
        self._secrets: dict[str, tuple[str, ...]] = {}
        self._models: dict[str, str] = {}
        self._attached: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
        self._conn: sqlite3.Connection | None = None
        self._open_ids: set[str] = set()
        self.notice: str | None = None
        self.written = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="history-writer", daemon=True)
        self._thread.start()

    # -- producer side (any thread; cheap) ---------------------------------------------------
    def start_conversation(
        self, settings: Any, *, conversation_id: str | None = None, started_at: float | None = None
    ) -> str:
        cid = conversation_id or uuid.uuid4().hex
        record = settings_record(settings)
        backend = str(getattr(settings, "backend", None) or record.get("backend") or "")
        model = str(getattr(settings, "model", None) or record.get("model") or "")
        self._secrets[cid] = _secret_values(settings)
        self._models[cid] = model
        self._open_ids.add(cid)
        self._put(
            _Start(
                cid,
                time.time() if started_at is None else started_at,
                json.dumps(record, ensure_ascii=False),
                backend,
                model,
            )
        )
        return cid

    def listener(self, conversation_id: str) -> Callable[[Any], None]:
        """The callable for ``bridge.add_listener``: enqueues each update, never blocks."""
        put = self._queue.put

        def on_update(update: Any) -> None:
            put(_Update(conversation_id, time.time(), update))

        return on_update

    def attach(self, bridge: Any, settings: Any) -> str:
        """Record ``bridge``'s conversation: start it, add the listener, and replay what the bridge
        already holds (final items and completed turns), so attaching a moment late loses nothing.
        Items are keyed by id and turns by turn id, so a replayed update is never stored twice.
        Idempotent per bridge: attaching the same bridge again returns its conversation id."""
        with self._close_lock:
            try:
                known = self._attached.get(bridge)
            except TypeError:  # not weak-referenceable: fall back to identity
                known = None
            if known is not None:
                return known
            cid = self.start_conversation(settings)
            try:
                self._attached[bridge] = cid
            except TypeError:
                pass
        on_update = self.listener(cid)

        def replay() -> None:
            snap = bridge.snapshot()
            for item in getattr(snap, "transcript", ()):
                if getattr(item, "final", False):
                    on_update(item)
            for turn in getattr(snap, "turns", ()):
                on_update(turn)

        replay()  # what is there now, in order
        bridge.add_listener(on_update)
        replay()  # what became final between the first look and the listener
        return cid

    @property
    def open_conversations(self) -> frozenset[str]:
        """Conversations started by this recorder and not yet ended (calls in progress)."""
        return frozenset(self._open_ids)

    def end_conversation(self, conversation_id: str, *, ended_at: float | None = None) -> None:
        self._open_ids.discard(conversation_id)
        self._put(_End(conversation_id, time.time() if ended_at is None else ended_at))

    def flush(self, timeout: float = 5.0) -> bool:
        """Block until everything queued so far is written (for shutdown and tests)."""
        if not self._thread.is_alive():
            return self._queue.empty()
        done = threading.Event()
        self._queue.put(_Flush(done))
        return done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self._closing_since = time.monotonic()
            self._close_grace_s = max(0.0, timeout - 0.5)
        self._queue.put(_STOP)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("history writer did not finish within %.1fs; some updates may be unsaved", timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _put(self, op: Any) -> None:
        if self._closed:
            raise RuntimeError("the history recorder is closed")
        self._queue.put(op)

    # -- the writer thread --------------------------------------------------------------------
    _BATCH = 256

    def _run(self) -> None:
        """Take what is queued (one update at a conversational pace, up to 256 in a burst) and
        commit it in one transaction, then the next. A crash loses only what is in that batch or
        still queued: at a conversational pace, the one update being written."""
        try:
            while True:
                batch = [self._queue.get()]
                while len(batch) < self._BATCH:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                stop = any(op is _STOP for op in batch)
                work = [op for op in batch if isinstance(op, (_Start, _Update, _End))]
                if work and not self._write(work):
                    return  # closing while the file stayed locked
                for op in batch:
                    if isinstance(op, _Flush):
                        op.done.set()
                if stop:
                    return
        finally:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _write(self, ops: list[Any]) -> bool:
        """Commit ``ops`` in one transaction, waiting out locks. False: gave up while closing."""
        while True:
            try:
                if self._conn is None:
                    self._conn = _connect(self._store.path, self._store.busy_timeout_ms)
                self._apply(self._conn, ops)
                self.written += len(ops)
                if self.notice and self.notice.startswith("History is waiting"):
                    self.notice = None
                return True
            except sqlite3.Error as exc:
                if _is_busy(exc) or "disk" in str(exc).lower() or "unable to open" in str(exc):
                    self.notice = (
                        f"History is waiting: {self._store.path} is locked or "
                        f"unwritable ({exc}); updates are held and retried."
                    )
                    log.warning("%s", self.notice)
                    if self._conn is not None:
                        self._conn.close()
                        self._conn = None
                    if self._stop_requested_while_waiting():
                        self.dropped += len(ops) + self._drain_count()
                        log.error("history: gave up %d unsaved updates at shutdown", self.dropped)
                        return False
                    continue
                error: Exception = exc
            except Exception as exc:  # a malformed update must not stop recording
                error = exc
            if len(ops) > 1:  # find the bad one: the others are written one by one
                return all(self._write([op]) for op in ops)
            self.dropped += 1
            self.notice = f"History could not save an update ({type(error).__name__}: {error}); recording continues."
            log.error("%s", self.notice)
            return True

    def _stop_requested_while_waiting(self) -> bool:
        """Sleep before a retry; True once close() was called and the file stayed locked past
        the grace period (the held updates are then given up and counted in ``dropped``)."""
        time.sleep(self._retry_delay_s)
        since = self._closing_since
        return since is not None and time.monotonic() - since > self._close_grace_s

    def _drain_count(self) -> int:
        n = 0
        while True:
            try:
                op = self._queue.get_nowait()
            except queue.Empty:
                return n
            if isinstance(op, _Flush):
                op.done.set()
            elif op is not _STOP:
                n += 1

    def _apply(self, conn: sqlite3.Connection, ops: list[Any]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for op in ops:
                self._apply_one(conn, op)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _apply_one(self, conn: sqlite3.Connection, op: Any) -> None:
        if isinstance(op, _Start):
            conn.execute(
                "INSERT OR IGNORE INTO conversations (id, started_at, last_at, settings, backend, model)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (op.conversation_id, op.at, op.at, op.settings_json, op.backend, op.model),
            )
        elif isinstance(op, _End):
            conn.execute(
                "UPDATE conversations SET ended_at = ?, last_at = MAX(last_at, ?) WHERE id = ?",
                (op.at, op.at, op.conversation_id),
            )
        elif isinstance(op, _Update):
            self._apply_update(conn, op)

    def _scrub(self, cid: str, text: str | None) -> str | None:
        if text is None:
            return None
        for secret in self._secrets.get(cid, ()):
            text = text.replace(secret, "[redacted]")
        return text

    def _apply_update(self, conn: sqlite3.Connection, op: _Update) -> None:
        cid, update = op.conversation_id, op.update
        exists = conn.execute("SELECT 1 FROM conversations WHERE id = ?", (cid,)).fetchone()
        if exists is None:  # an update for a conversation never started: keep it anyway
            conn.execute(
                "INSERT INTO conversations (id, started_at, last_at, settings, backend, model)"
                " VALUES (?, ?, ?, '{}', '', '')",
                (cid, op.at, op.at),
            )
        conn.execute("UPDATE conversations SET last_at = MAX(last_at, ?) WHERE id = ?", (op.at, cid))
        if hasattr(update, "role") and hasattr(update, "kind"):
            if getattr(update, "final", True) is not False:  # only final items are history
                self._write_item(conn, cid, op.at, update)
        elif hasattr(update, "turn_id") or hasattr(update, "usage"):
            self._write_turn(conn, cid, op.at, update)
        else:
            log.debug("history: ignored an update of type %s", type(update).__name__)

    def _next(self, counters: dict[str, int], conn: sqlite3.Connection, table: str, cid: str) -> int:
        if cid not in counters:
            row = conn.execute(
                f"SELECT COALESCE(MAX(seq), -1) FROM {table} WHERE conversation_id = ?", (cid,)
            ).fetchone()
            counters[cid] = int(row[0])
        counters[cid] += 1
        return counters[cid]

    def _write_item(self, conn: sqlite3.Connection, cid: str, at: float, item: Any) -> None:
        item_id = str(getattr(item, "id", None) or getattr(item, "item_id", None) or uuid.uuid4().hex)
        existing = conn.execute(
            "SELECT seq FROM items WHERE conversation_id = ? AND item_id = ?", (cid, item_id)
        ).fetchone()
        values = (
            str(item.role),
            str(item.kind),
            self._scrub(cid, str(getattr(item, "text", "") or "")),
            self._scrub(cid, _as_text(getattr(item, "tool_name", None))),
            self._scrub(cid, _as_text(getattr(item, "tool_args", None))),
            self._scrub(cid, _as_text(getattr(item, "tool_result", None))),
        )
        if existing is not None:  # the same item finalised again (e.g. a late transcript): update it
            seq = existing[0]
            conn.execute(
                "UPDATE items SET role = ?, kind = ?, text = ?, tool_name = ?, tool_args = ?,"
                " tool_result = ? WHERE conversation_id = ? AND seq = ?",
                (*values, cid, seq),
            )
        else:
            seq = self._next(self._seq, conn, "items", cid)
            conn.execute(
                "INSERT INTO items (conversation_id, seq, item_id, role, kind, text, tool_name,"
                " tool_args, tool_result, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (cid, seq, item_id, *values, at),
            )
        thumb = getattr(item, "image_thumb", None)
        if isinstance(thumb, (bytes, bytearray, memoryview)) and len(thumb):
            conn.execute(
                "INSERT OR REPLACE INTO images (conversation_id, seq, jpeg) VALUES (?, ?, ?)", (cid, seq, bytes(thumb))
            )

    def _model_of(self, conn: sqlite3.Connection, cid: str) -> str:
        if cid not in self._models:
            row = conn.execute("SELECT model FROM conversations WHERE id = ?", (cid,)).fetchone()
            self._models[cid] = row[0] if row else ""
        return self._models[cid]

    def _write_turn(self, conn: sqlite3.Connection, cid: str, at: float, turn: Any) -> None:
        """A completed ``TurnMetrics``: latency to first audio (else first text), tokens, and the
        cost estimated the way the bridge does (``estimate_cost(usage, model)``)."""
        from .pricing import estimate_cost

        details = _plain(turn)
        if not isinstance(details, dict):
            details = {"value": details}
        usage = getattr(turn, "usage", None)
        latency = _getattr_first(turn, ("first_audio_ms", "first_text_ms"))
        in_tok = getattr(usage, "input_tokens", None)
        out_tok = getattr(usage, "output_tokens", None)
        total = getattr(usage, "total_tokens", None)
        cost = None
        if usage is not None:
            try:
                cost = float(estimate_cost(usage, self._model_of(conn, cid)))
            except (TypeError, AttributeError, ValueError):
                cost = None
        turn_id = getattr(turn, "turn_id", None)
        if turn_id is not None:
            existing = conn.execute(
                "SELECT seq FROM turns WHERE conversation_id = ? AND turn_id = ?", (cid, str(turn_id))
            ).fetchone()
            if existing is not None:  # seen already (e.g. replayed at attach): keep the first
                return
        seq = self._next(self._turn_seq, conn, "turns", cid)
        conn.execute(
            "INSERT INTO turns (conversation_id, seq, turn_id, latency_ms, input_tokens,"
            " output_tokens, total_tokens, cost_usd, details, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                cid,
                seq,
                None if turn_id is None else str(turn_id),
                latency,
                in_tok,
                out_tok,
                total,
                cost,
                json.dumps(details, ensure_ascii=False),
                at,
            ),
        )


# -------------------------------------------------------------------------------------- exports

_ROLE_LABEL = {"user": "User", "assistant": "Assistant", "tool": "Tool", "error": "Error", "system": "System"}


def _fence(text: str, lang: str = "") -> str:
    fence = "```"
    while fence in text:
        fence += "`"
    return f"{fence}{lang}\n{text}\n{fence}"


def _pretty_json(text: str | None) -> tuple[str, str]:
    if text is None:
        return "", ""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False), "json"
    except ValueError:
        return text, ""


def export_markdown(record: ConversationRecord) -> str:
    """A readable Markdown transcript: every item in order, tool calls with arguments and results,
    images embedded as JPEG data URLs, then the per-turn figures."""
    s = record.summary
    lines = [f"# Conversation {_fmt_time(s.started_at)}", ""]
    lines.append(f"- Started: {_fmt_time(s.started_at)}")
    lines.append(
        f"- Duration: {format_duration(s.duration_s)}" + ("" if s.ended_at is not None else " (not ended cleanly)")
    )
    engine = {"openai": "OpenAI", "local": "Local (offline)"}.get(s.backend, s.backend or "unknown")
    lines.append(f"- Engine: {engine}" + (f", model `{s.model}`" if s.model else ""))
    lines.append(f"- Turns: {s.turns}")
    lines.append(f"- Estimated cost: ${s.cost_usd:.4f}")
    voice = record.settings.get("voice") if isinstance(record.settings, Mapping) else None
    if voice:
        lines.append(f"- Voice: {voice}")
    instructions = record.settings.get("instructions") if isinstance(record.settings, Mapping) else None
    if instructions:
        lines += ["", "## Instructions", "", _fence(str(instructions))]
    lines += ["", "## Transcript", ""]
    if not record.items:
        lines += ["_Nothing was said in this conversation._", ""]
    for item in record.items:
        label = _ROLE_LABEL.get(item.role, item.role.capitalize())
        stamp = _dt.datetime.fromtimestamp(item.created_at).strftime("%H:%M:%S")
        if item.kind == "tool_call":
            lines.append(f"**Tool call** `{item.tool_name or '?'}` ({stamp})")
            args, lang = _pretty_json(item.tool_args)
            lines += ["", "Arguments:", "", _fence(args or "{}", lang)]
            result, lang = _pretty_json(item.tool_result)
            lines += ["", "Result:", "", _fence(result if item.tool_result is not None else "(no result)", lang)]
        elif item.image_jpeg is not None or item.kind == "image":
            caption = item.text.strip() or "camera frame"
            lines.append(f"**{label}** ({stamp}) sent an image: {caption}")
            if item.image_jpeg is not None:
                data = base64.b64encode(item.image_jpeg).decode("ascii")
                lines += ["", f"![image {item.seq}: {caption}](data:image/jpeg;base64,{data})"]
        else:
            text = item.text.strip() or "_(no transcript)_"
            lines.append(f"**{label}** ({stamp}): {text}")
        lines.append("")
    if record.turns:
        lines += [
            "## Turns",
            "",
            "| # | Latency (ms) | Input tokens | Output tokens | Cost (USD) |",
            "|---|---|---|---|---|",
        ]

        def cell(v: Any, fmt: str = "{}") -> str:
            return "" if v is None else fmt.format(v)

        for i, t in enumerate(record.turns, 1):
            lines.append(
                f"| {i} | {cell(t.latency_ms, '{:.0f}')} | {cell(t.input_tokens)} | "
                f"{cell(t.output_tokens)} | {cell(t.cost_usd, '{:.5f}')} |"
            )
        lines.append("")
    return "\n".join(lines)


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return _dt.datetime.fromtimestamp(ts, _dt.UTC).isoformat()


def export_json(record: ConversationRecord) -> str:
    """The whole record as JSON (images as base64 JPEG); stable keys, UTC ISO-8601 times."""
    s = record.summary
    doc = {
        "format": "realtime-studio.conversation",
        "version": 1,
        "id": s.id,
        "started_at": _iso(s.started_at),
        "ended_at": _iso(s.ended_at),
        "duration_s": round(s.duration_s, 3),
        "backend": s.backend,
        "model": s.model,
        "turn_count": s.turns,
        "estimated_cost_usd": s.cost_usd,
        "settings": dict(record.settings),
        "items": [
            {
                "seq": i.seq,
                "item_id": i.item_id,
                "role": i.role,
                "kind": i.kind,
                "text": i.text,
                "tool_name": i.tool_name,
                "tool_args": i.tool_args,
                "tool_result": i.tool_result,
                "created_at": _iso(i.created_at),
                "image_jpeg_base64": None if i.image_jpeg is None else base64.b64encode(i.image_jpeg).decode(),
            }
            for i in record.items
        ],
        "turns": [
            {
                "seq": t.seq,
                "turn_id": t.turn_id,
                "latency_ms": t.latency_ms,
                "input_tokens": t.input_tokens,
                "output_tokens": t.output_tokens,
                "total_tokens": t.total_tokens,
                "cost_usd": t.cost_usd,
                "details": dict(t.details),
                "created_at": _iso(t.created_at),
            }
            for t in record.turns
        ],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)


def open_history(path: str | os.PathLike[str] | None = None, **kwargs: Any) -> tuple[HistoryStore | None, str | None]:
    """For the app: ``(store, notice)``; ``(None, message)`` when history is unavailable."""
    try:
        store = HistoryStore(default_db_path() if path is None else path, **kwargs)
    except HistoryUnavailable as exc:
        log.warning("%s", exc.message)
        return None, exc.message
    return store, store.notice


_process_lock = threading.Lock()
_process_stores: dict[Path, HistoryStore] = {}
_process_failures: dict[Path, tuple[float, str]] = {}
_RETRY_UNAVAILABLE_S = 10.0


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
            rec = store._recorder
            return store, (rec.notice if rec is not None and rec.notice else None) or store.notice
        failed = _process_failures.get(path)
        if failed is not None and time.monotonic() - failed[0] < _RETRY_UNAVAILABLE_S:
            return None, failed[1]
        store, notice = open_history(path)
        if store is None:
            _process_failures[path] = (time.monotonic(), notice or "History is off.")
            return None, notice
        _process_failures.pop(path, None)
        _process_stores[path] = store
        import atexit

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


class CallRecording:
    """Follows one browser session's calls: records each new bridge once, ends its record when the
    call closes. ``sync`` is cheap (a snapshot read) and may be called as often as a page polls."""

    def __init__(self, recorder: Recorder):
        self._recorder = recorder
        self._bridge: Any = None
        self.conversation_id: str | None = None
        self._ended = True

    @property
    def recording(self) -> bool:
        return self._bridge is not None and not self._ended

    def sync(self, bridge: Any, settings: Any) -> str | None:
        """``bridge``: the session's current or last bridge (or None). Returns the conversation id."""
        if bridge is not None and bridge is not self._bridge:
            self._end()
            self._bridge = bridge
            self.conversation_id = self._recorder.attach(bridge, settings)
            self._ended = False
        if self.recording:
            try:
                state = self._bridge.snapshot().state
            except Exception:
                state = "failed"
            if state in ("closed", "failed"):
                self._end()
        return self.conversation_id

    def _end(self) -> None:
        if self._bridge is not None and not self._ended and self.conversation_id is not None:
            self._recorder.end_conversation(self.conversation_id)
        self._ended = True
