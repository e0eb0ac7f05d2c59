"""What each queued write does to the history tables: a conversation started or ended, a final
transcript item (and its thumbnail), a completed turn (with its estimated cost), a clip of voice
(compressed here, off the bridge loop, and kept while the conversation's audio is under its cap).

Runs on the writer thread only, inside the transaction the recorder opened. Items are keyed by
item id and turns by turn id, so an update written twice (e.g. replayed at attach) is stored once.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass

from realtime.audio_tape import CLIP_RATE, VoiceClip
from realtime.metrics import TurnMetrics
from realtime.pricing import estimate_cost
from realtime.transcript import TranscriptItem
from realtime.voice_codec import encode_voice

from .scrub import plain, scrub

__all__ = ["End", "Start", "TableWriter", "Update", "Write"]


@dataclass(frozen=True)
class Start:
    conversation_id: str
    at: float
    settings_json: str
    backend: str
    model: str
    source: str = "studio"


@dataclass(frozen=True)
class Update:
    conversation_id: str
    at: float
    update: TranscriptItem | TurnMetrics | VoiceClip


@dataclass(frozen=True)
class End:
    conversation_id: str
    at: float


Write = Start | Update | End


class TableWriter:
    """Applies writes; keeps, per conversation, the next item and turn numbers, the secrets to
    scrub from its text, and its model (for the cost)."""

    def __init__(self) -> None:
        self._seq: dict[str, int] = {}
        self._turn_seq: dict[str, int] = {}
        self._clip_seq: dict[str, int] = {}
        self._secrets: dict[str, tuple[str, ...]] = {}
        self._models: dict[str, str] = {}
        self._audio_caps: dict[str, int] = {}  # bytes of voice a conversation may keep
        self._audio_bytes: dict[str, int] = {}  # ... and keeps now

    def remember(self, conversation_id: str, secrets: tuple[str, ...], model: str, audio_cap_bytes: int = 0) -> None:
        """Before a conversation's first write is queued (any thread): what its writes need."""
        self._secrets[conversation_id] = secrets
        self._models[conversation_id] = model
        self._audio_caps[conversation_id] = audio_cap_bytes

    def apply(self, conn: sqlite3.Connection, op: Write) -> None:
        if isinstance(op, Start):
            conn.execute(
                "INSERT OR IGNORE INTO conversations (id, started_at, last_at, settings, backend, model, source)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (op.conversation_id, op.at, op.at, op.settings_json, op.backend, op.model, op.source),
            )
        elif isinstance(op, End):
            conn.execute(
                "UPDATE conversations SET ended_at = ?, last_at = MAX(last_at, ?) WHERE id = ?",
                (op.at, op.at, op.conversation_id),
            )
        else:
            self._apply_update(conn, op)

    def _apply_update(self, conn: sqlite3.Connection, op: Update) -> None:
        cid, update = op.conversation_id, op.update
        exists = conn.execute("SELECT 1 FROM conversations WHERE id = ?", (cid,)).fetchone()
        if exists is None:  # an update for a conversation never started: keep it anyway
            conn.execute(
                "INSERT INTO conversations (id, started_at, last_at, settings, backend, model)"
                " VALUES (?, ?, ?, '{}', '', '')",
                (cid, op.at, op.at),
            )
        conn.execute("UPDATE conversations SET last_at = MAX(last_at, ?) WHERE id = ?", (op.at, cid))
        if isinstance(update, TurnMetrics):
            self._write_turn(conn, cid, op.at, update)
        elif isinstance(update, VoiceClip):
            self._write_clip(conn, cid, update)
        elif update.final:  # only final items are history
            self._write_item(conn, cid, op.at, update)

    def _next(self, counters: dict[str, int], conn: sqlite3.Connection, table: str, cid: str) -> int:
        if cid not in counters:
            row = conn.execute(
                f"SELECT COALESCE(MAX(seq), -1) FROM {table} WHERE conversation_id = ?", (cid,)
            ).fetchone()
            counters[cid] = int(row[0])
        counters[cid] += 1
        return counters[cid]

    def _scrub(self, cid: str, text: str | None) -> str | None:
        return None if text is None else scrub(text, self._secrets.get(cid, ()))

    def _write_item(self, conn: sqlite3.Connection, cid: str, at: float, item: TranscriptItem) -> None:
        item_id = item.id or uuid.uuid4().hex
        existing = conn.execute(
            "SELECT seq FROM items WHERE conversation_id = ? AND item_id = ?", (cid, item_id)
        ).fetchone()
        values = (
            item.role,
            item.kind,
            self._scrub(cid, item.text),
            self._scrub(cid, item.tool_name),
            self._scrub(cid, item.tool_args),
            self._scrub(cid, item.tool_result),
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
        if item.image_thumb:  # the image as sent, for replays, when this update carries it
            conn.execute(
                "INSERT INTO images (conversation_id, seq, jpeg, sent) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (conversation_id, seq) DO UPDATE SET jpeg = excluded.jpeg,"
                " sent = COALESCE(excluded.sent, images.sent)",
                (cid, seq, item.image_thumb, item.image_sent),
            )

    def _write_clip(self, conn: sqlite3.Connection, cid: str, clip: VoiceClip) -> None:
        """Kept while the conversation's voice fits its cap; the first clip that does not marks
        the conversation cut from then on (and nothing later is kept, so what is kept has no holes)."""
        if cid not in self._audio_bytes:
            row = conn.execute(
                "SELECT COALESCE(SUM(LENGTH(data)), 0), (SELECT audio_cut_at FROM conversations WHERE id = ?)"
                " FROM audio WHERE conversation_id = ?",
                (cid, cid),
            ).fetchone()
            self._audio_bytes[cid] = int(row[0]) if row[1] is None else -1  # -1: cut already
        kept = self._audio_bytes[cid]
        if kept < 0:
            return
        data = encode_voice(clip.pcm, CLIP_RATE)
        if kept + len(data) > self._audio_caps.get(cid, 0):
            self._audio_bytes[cid] = -1
            conn.execute("UPDATE conversations SET audio_cut_at = ? WHERE id = ?", (clip.started_at, cid))
            return
        self._audio_bytes[cid] = kept + len(data)
        seq = self._next(self._clip_seq, conn, "audio", cid)
        conn.execute(
            "INSERT INTO audio (conversation_id, seq, role, item_id, started_at, seconds, codec, data)"
            " VALUES (?, ?, ?, ?, ?, ?, 'opus', ?)",
            (cid, seq, clip.role, clip.item_id, clip.started_at, clip.seconds, data),
        )

    def _model_of(self, conn: sqlite3.Connection, cid: str) -> str:
        if cid not in self._models:  # started by another recorder (another process)
            row = conn.execute("SELECT model FROM conversations WHERE id = ?", (cid,)).fetchone()
            self._models[cid] = row[0] if row else ""
        return self._models[cid]

    def _write_turn(self, conn: sqlite3.Connection, cid: str, at: float, turn: TurnMetrics) -> None:
        """A completed turn: latency to first audio (else first text), tokens, and the cost
        estimated the way the bridge does (``estimate_cost(usage, model)``)."""
        existing = conn.execute(
            "SELECT seq FROM turns WHERE conversation_id = ? AND turn_id = ?", (cid, turn.turn_id)
        ).fetchone()
        if existing is not None:  # seen already (e.g. replayed at attach): keep the first
            return
        usage = turn.usage
        latency = turn.first_audio_ms if turn.first_audio_ms is not None else turn.first_text_ms
        seq = self._next(self._turn_seq, conn, "turns", cid)
        conn.execute(
            "INSERT INTO turns (conversation_id, seq, turn_id, latency_ms, input_tokens,"
            " output_tokens, total_tokens, cost_usd, details, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                cid,
                seq,
                turn.turn_id,
                latency,
                usage.input_tokens,
                usage.output_tokens,
                usage.total_tokens,
                estimate_cost(usage, self._model_of(conn, cid)),
                json.dumps(plain(turn), ensure_ascii=False),
                at,
            ),
        )
