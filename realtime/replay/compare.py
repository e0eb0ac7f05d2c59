"""A comparison: which conversation, which setups, the replays run side by side (bounded), one result.

``load_conversation`` reads a History conversation by id, or a conversation exported from History as
JSON. ``resolve_setups`` turns ``current`` and ``preset:NAME`` into settings. ``compare`` runs the
replays concurrently (at most ``concurrency`` at a time); one failing setup does not stop the others,
and whatever each got is kept. Problems the user can fix raise ``ReplayError`` with one sentence.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from realtime.history.records import ConversationRecord, ConversationSummary, StoredItem, StoredTurn
from realtime.history.store import HistoryStore, HistoryUnavailable
from realtime.presets import PresetError, PresetStore
from realtime.replay.model import Comparison, SetupRun
from realtime.replay.plan import original_run, plan_turns
from realtime.replay.runner import replay_setup
from realtime.settings import Settings
from realtime.tools import DEFAULT_TOOLS, ToolRegistry

__all__ = ["DEFAULT_CONCURRENCY", "ReplayError", "Setup", "compare", "load_conversation", "resolve_setups"]

DEFAULT_CONCURRENCY = 2


class ReplayError(ValueError):
    """A replay that cannot start: an unknown conversation, a deleted preset, a bad file."""


@dataclass(frozen=True)
class Setup:
    name: str  # "current", "preset:Brief"
    label: str
    settings: Settings


def _time(value: object) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return 0.0


def record_from_export(doc: Mapping[str, Any]) -> ConversationRecord:
    """A conversation exported by History (``realtime.history.export.export_json``)."""
    if doc.get("format") != "realtime-studio.conversation":
        raise ReplayError("The file is not a conversation exported from History (format realtime-studio.conversation).")
    try:
        items = tuple(
            StoredItem(
                seq=int(i["seq"]),
                item_id=str(i["item_id"]),
                role=i["role"],
                kind=i["kind"],
                text=str(i.get("text") or ""),
                tool_name=i.get("tool_name"),
                tool_args=i.get("tool_args"),
                tool_result=i.get("tool_result"),
                created_at=_time(i.get("created_at")),
                image_jpeg=base64.b64decode(i["image_jpeg_base64"]) if i.get("image_jpeg_base64") else None,
            )
            for i in doc["items"]
        )
        turns = tuple(
            StoredTurn(
                seq=int(t["seq"]),
                turn_id=t.get("turn_id"),
                latency_ms=t.get("latency_ms"),
                input_tokens=t.get("input_tokens"),
                output_tokens=t.get("output_tokens"),
                total_tokens=t.get("total_tokens"),
                cost_usd=t.get("cost_usd"),
                details=dict(t.get("details") or {}),
                created_at=_time(t.get("created_at")),
            )
            for t in doc.get("turns") or ()
        )
        first = next((i.text for i in items if i.role == "user" and i.text.strip()), "")
        summary = ConversationSummary(
            id=str(doc["id"]),
            started_at=_time(doc.get("started_at")),
            ended_at=_time(doc.get("ended_at")) or None,
            duration_s=float(doc.get("duration_s") or 0.0),
            turns=len(turns),
            cost_usd=float(doc.get("estimated_cost_usd") or 0.0),
            first_user_line=first.strip().splitlines()[0] if first.strip() else "",
            backend=str(doc.get("backend") or ""),
            model=str(doc.get("model") or ""),
        )
        return ConversationRecord(summary, dict(doc.get("settings") or {}), items, turns)
    except (KeyError, TypeError, ValueError) as exc:
        raise ReplayError(
            f"The exported conversation is incomplete or damaged ({type(exc).__name__}: {exc})."
        ) from None


def load_conversation(ref: str, history_db: Path) -> ConversationRecord:
    """``ref``: a History conversation id, or the path of a conversation exported as JSON."""
    path = Path(ref)
    if ref.endswith(".json") or path.is_file():
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ReplayError(f"Could not read {ref}: {exc.strerror or exc}.") from None
        except ValueError:
            raise ReplayError(f"{ref} is not valid JSON.") from None
        if not isinstance(doc, Mapping):
            raise ReplayError(f"{ref} does not hold a conversation.")
        return record_from_export(doc)
    try:
        store = HistoryStore(history_db)
    except HistoryUnavailable as exc:
        raise ReplayError(exc.message) from None
    try:
        return store.load(ref)
    except KeyError:
        raise ReplayError(f"There is no conversation {ref!r} in History ({history_db}).") from None
    finally:
        store.close()


def resolve_setups(specs: Sequence[str], base: Settings, presets: PresetStore) -> tuple[Setup, ...]:
    """``current`` (``base``), ``preset:NAME`` (that preset over ``base``) and ``scenario:NAME``
    (``base`` running that scenario's agents), in the order given."""
    from scenarios import ScenarioError, load_scenario

    if not specs:
        raise ReplayError("Give at least one setup: current, preset:NAME or scenario:NAME.")
    setups: list[Setup] = []
    for spec in specs:
        if spec == "current":
            setups.append(Setup("current", "Current setup", base))
        elif spec.startswith("preset:") and spec[7:].strip():
            name = spec[7:].strip()
            try:
                settings, _warnings = presets.load(name, base)
            except PresetError as exc:
                raise ReplayError(f"{exc} (setup {spec!r}; it may have been deleted).") from None
            setups.append(Setup(f"preset:{presets.get(name).name}", f"Preset “{presets.get(name).name}”", settings))
        elif spec.startswith("scenario:") and spec[9:].strip():
            name = spec[9:].strip()
            try:
                load_scenario(name)  # a broken one is said now, not as a run that never started
            except ScenarioError as exc:
                raise ReplayError(f"{exc} (setup {spec!r}).") from None
            setups.append(Setup(f"scenario:{name}", f"Scenario “{name}”", base.replace(scenario=name)))
        else:
            raise ReplayError(f"Unknown setup {spec!r}: use current, preset:NAME or scenario:NAME.")
    return tuple(setups)


async def compare(
    record: ConversationRecord,
    setups: Sequence[Setup],
    *,
    tools: ToolRegistry = DEFAULT_TOOLS,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_turn: Callable[[str, int], None] | None = None,
) -> Comparison:
    """Replay ``record`` against every setup, at most ``concurrency`` at a time."""
    turns = plan_turns(record)
    if not turns:
        raise ReplayError(f"The conversation {record.id!r} has no user turn to replay.")
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(setup: Setup) -> SetupRun:
        async with gate:
            report = (lambda i: on_turn(setup.name, i)) if on_turn is not None else None
            return await replay_setup(turns, setup.settings, tools, name=setup.name, label=setup.label, on_turn=report)

    runs = await asyncio.gather(*(one(s) for s in setups))
    return Comparison(
        conversation_id=record.id,
        title=record.summary.first_user_line or "(nothing said)",
        turns=turns,
        runs=(original_run(record), *runs),
        created_at=time.time(),
    )
