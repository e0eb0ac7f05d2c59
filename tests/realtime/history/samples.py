"""What the history tests record: typed updates, settings holding a key, a sample conversation."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

from PIL import Image

from realtime.history import HistoryStore
from realtime.metrics import TurnMetrics, UsageTotals
from realtime.settings import Settings
from realtime.transcript import Kind, Role, TranscriptItem

ROOT = Path(__file__).resolve().parents[3]
KEY = "sk-" + "test-DO-NOT-STORE-0123456789abcdef"  # built, so no key-shaped literal sits in the source


def _jpeg(rgb: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), rgb).save(buf, "JPEG", quality=80)
    return buf.getvalue()


JPEG = _jpeg((200, 30, 30))


def item(item_id: str, role: Role, text: str = "", kind: Kind = "text", **extra: Any) -> TranscriptItem:
    return TranscriptItem(id=item_id, role=role, kind=kind, text=text, final=True, **extra)


def settings(**changes: Any) -> Settings:
    base = Settings.from_env(env={"OPENAI_API_KEY": KEY})
    return base.replace(**changes) if changes else base


def turn(turn_id: str, first_audio_ms: float | None, **usage: int) -> TurnMetrics:
    return TurnMetrics(
        turn_id=turn_id,
        started_at=time.monotonic(),
        first_audio_ms=first_audio_ms,
        first_text_ms=None if first_audio_ms is None else first_audio_ms - 50,
        usage=UsageTotals(responses=1, **usage),
    )


USAGE_1 = dict(input_text=100, input_audio=20, output_audio=30)
USAGE_2 = dict(input_text=100, input_image=800, output_text=12)


def record_sample(store: HistoryStore, instructions: str = "Be brief.") -> str:
    rec = store.recorder
    cid = rec.start_conversation(settings(instructions=instructions))
    on_update = rec.listener(cid)
    on_update(item("u1", "user", "What time is it in Paris?", kind="audio"))
    on_update(
        item(
            "t1",
            "tool",
            kind="tool_call",
            tool_name="get_datetime",
            tool_args='{"timezone": "Europe/Paris"}',
            tool_result='{"iso": "2025-01-01T12:00:00+01:00"}',
        )
    )
    on_update(item("a1", "assistant", "It is noon in Paris.", kind="audio"))
    on_update(turn("turn-1", 412.0, **USAGE_1))
    on_update(item("img1", "user", kind="image", image_thumb=JPEG))
    on_update(item("u2", "user", "What colour is this?"))
    on_update(item("a2", "assistant", "It looks red."))
    on_update(turn("turn-2", 388.0, **USAGE_2))
    rec.end_conversation(cid)
    assert rec.flush(5)
    return cid
