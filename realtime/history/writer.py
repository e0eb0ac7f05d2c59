"""Recording calls as they happen: one writer thread per history file, fed by a queue.

The bridge hands its typed updates (``realtime.updates``) to ``Recorder.listener(...)``, which
only puts them on a queue, so it is safe on the bridge loop. The writer thread does every write
(never on the media/bridge loop) and commits what is queued at once (one update at a
conversational pace, up to 256 in a burst), so a crash loses at most the update being written (in
a burst: that batch and whatever is still queued).

The recorder is the one owner of "this call is being recorded": ``attach`` starts a call's record
once however often it is called, and the record ends once: when the bridge says ``CallEnded``
(closed or failed, from whatever path), or at ``end_conversation`` if that comes first.
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from realtime.audio_tape import VoiceClip
from realtime.metrics import TurnMetrics
from realtime.transcript import TranscriptItem
from realtime.updates import BridgeUpdate, CallEnded, Listener

from .connection import DEFAULT_BUSY_TIMEOUT_MS, connect, is_busy, write_transaction
from .scrub import secret_values, settings_record
from .tables import End, Start, TableWriter, Update, Write

if TYPE_CHECKING:
    from realtime.settings import Settings

__all__ = ["BridgeView", "RecordableBridge", "Recorder"]

log = logging.getLogger(__name__)

_ENDED_STATES = frozenset({"closed", "failed"})


class BridgeView(Protocol):
    """What the recorder reads from a bridge snapshot when it attaches."""

    @property
    def state(self) -> str: ...
    @property
    def transcript(self) -> Sequence[TranscriptItem]: ...
    @property
    def turns(self) -> Sequence[TurnMetrics]: ...


class RecordableBridge(Protocol):
    """What ``Recorder.attach`` needs of a bridge (``realtime.bridge.Bridge`` is one)."""

    def snapshot(self) -> BridgeView: ...
    def add_listener(self, fn: Listener) -> None: ...


# --------------------------------------------- the queue's other ops (the writes are in ``tables``)


@dataclass(frozen=True)
class _Flush:
    done: threading.Event


@dataclass(frozen=True)
class _Stop:
    pass


_Op = Write | _Flush | _Stop
_STOP = _Stop()


class Recorder:
    """Records conversations through one writer thread fed by a queue.

    ``listener(...)`` callables only enqueue, so they are safe on the bridge loop. If the file is
    briefly locked, the writer retries (holding the update, losing nothing) and says so in
    ``notice``; ``close()`` flushes what is queued and joins the thread.
    """

    _BATCH = 256

    def __init__(
        self, path: Path, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS, retry_delay_s: float = 0.2
    ) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._queue: queue.SimpleQueue[_Op] = queue.SimpleQueue()
        self._retry_delay_s = retry_delay_s
        self._lock = threading.Lock()  # the conversation ids' bookkeeping, and closing
        self._attach_lock = threading.Lock()  # one attach at a time: a bridge is started once
        self._closed = False
        self._closing_since: float | None = None
        self._close_grace_s = 3.0
        self._open_ids: set[str] = set()
        self._ended_ids: set[str] = set()
        self._attached: weakref.WeakKeyDictionary[RecordableBridge, str] = weakref.WeakKeyDictionary()
        self._tables = TableWriter()
        self._conn: sqlite3.Connection | None = None
        self.notice: str | None = None
        self.written = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="history-writer", daemon=True)
        self._thread.start()

    # -- producer side (any thread; cheap) ---------------------------------------------------
    def start_conversation(
        self,
        settings: Settings,
        *,
        conversation_id: str | None = None,
        started_at: float | None = None,
        source: str = "studio",
    ) -> str:
        """Start a conversation's record (its settings, without secrets); returns its id."""
        cid = conversation_id or uuid.uuid4().hex
        record = json.dumps(settings_record(settings), ensure_ascii=False)
        audio_cap = int(settings.audio_cap_mb * 1_000_000) if settings.keep_audio else 0
        self._tables.remember(cid, secret_values(settings), settings.model, audio_cap)
        with self._lock:
            self._open_ids.add(cid)
        at = time.time() if started_at is None else started_at
        self._put(Start(cid, at, record, settings.backend, settings.model, source))
        return cid

    def listener(self, conversation_id: str) -> Listener:
        """The callable for ``bridge.add_listener``: enqueues each update, never blocks. A
        ``CallEnded`` ends the conversation's record."""
        put = self._queue.put

        def on_update(update: BridgeUpdate) -> None:
            if isinstance(update, CallEnded):
                if self._mark_ended(conversation_id):
                    put(End(conversation_id, time.time()))
            elif isinstance(update, (TranscriptItem, TurnMetrics, VoiceClip)):
                put(Update(conversation_id, time.time(), update))

        return on_update

    def attach(self, bridge: RecordableBridge, settings: Settings, *, source: str = "studio") -> str:
        """Record ``bridge``'s conversation: start it, add the listener, and replay what the bridge
        already holds (final items, completed turns, and its end if it is over), so attaching a
        moment late loses nothing. Items are keyed by id and turns by turn id, so a replayed update
        is never stored twice. Idempotent per bridge: attaching the same bridge again returns its
        conversation id."""
        with self._attach_lock:
            known = self._attached.get(bridge)
            if known is not None:
                return known
            cid = self.start_conversation(settings, source=source)
            self._attached[bridge] = cid
        on_update = self.listener(cid)
        self._replay(bridge, cid, on_update)  # what is there now, in order
        bridge.add_listener(on_update)
        self._replay(bridge, cid, on_update)  # what became final between the first look and the listener
        return cid

    def _replay(self, bridge: RecordableBridge, cid: str, on_update: Listener) -> None:
        snap = bridge.snapshot()
        for item in snap.transcript:
            if item.final:
                on_update(item)
        for turn in snap.turns:
            on_update(turn)
        if snap.state in _ENDED_STATES:  # it said CallEnded before the listener was there
            self.end_conversation(cid)

    def is_recording(self, bridge: RecordableBridge) -> bool:
        """True while ``bridge``'s call is attached and its record not yet ended."""
        cid = self._attached.get(bridge)
        with self._lock:
            return cid is not None and cid in self._open_ids

    @property
    def open_conversations(self) -> frozenset[str]:
        """Conversations started by this recorder and not yet ended (calls in progress)."""
        with self._lock:
            return frozenset(self._open_ids)

    def end_conversation(self, conversation_id: str, *, ended_at: float | None = None) -> None:
        """End a conversation's record. Idempotent: the first end counts (a later one, e.g. a
        fallback after the bridge said ``CallEnded``, changes nothing)."""
        if self._mark_ended(conversation_id):
            self._put(End(conversation_id, time.time() if ended_at is None else ended_at))

    def _mark_ended(self, conversation_id: str) -> bool:
        """True the first time only."""
        with self._lock:
            if conversation_id in self._ended_ids:
                return False
            self._ended_ids.add(conversation_id)
            self._open_ids.discard(conversation_id)
            return True

    def flush(self, timeout: float = 5.0) -> bool:
        """Block until everything queued so far is written (for shutdown and tests)."""
        if not self._thread.is_alive():
            return self._queue.empty()
        done = threading.Event()
        self._queue.put(_Flush(done))
        return done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        with self._lock:
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

    def _put(self, op: Write) -> None:
        if self._closed:
            raise RuntimeError("the history recorder is closed")
        self._queue.put(op)

    # -- the writer thread --------------------------------------------------------------------
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
                work = [op for op in batch if isinstance(op, (Start, Update, End))]
                if work and not self._write(work):
                    return  # closing while the file stayed locked
                for op in batch:
                    if isinstance(op, _Flush):
                        op.done.set()
                if any(isinstance(op, _Stop) for op in batch):
                    return
        finally:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _write(self, ops: list[Write]) -> bool:
        """Commit ``ops`` in one transaction, waiting out locks. False: gave up while closing."""
        while True:
            try:
                if self._conn is None:
                    self._conn = connect(self._path, self._busy_timeout_ms)
                with write_transaction(self._conn) as conn:
                    for op in ops:
                        self._tables.apply(conn, op)
                self.written += len(ops)
                if self.notice and self.notice.startswith("History is waiting"):
                    self.notice = None
                return True
            except sqlite3.Error as exc:
                if is_busy(exc) or "disk" in str(exc).lower() or "unable to open" in str(exc):
                    self.notice = (
                        f"History is waiting: {self._path} is locked or "
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
            elif not isinstance(op, _Stop):
                n += 1
