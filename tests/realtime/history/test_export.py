"""Exports: a readable Markdown transcript and the whole record as JSON."""

from __future__ import annotations

import base64
import json

from realtime.history import export_json, export_markdown
from tests.realtime.history.samples import JPEG, record_sample


def test_markdown_export_has_every_turn_tool_call_and_image(store):
    record = store.load(record_sample(store))
    md = export_markdown(record)
    for text in ("What time is it in Paris?", "It is noon in Paris.", "What colour is this?", "It looks red."):
        assert text in md
    assert md.index("What time is it in Paris?") < md.index("It is noon in Paris.") < md.index("It looks red.")
    assert "get_datetime" in md and '"timezone": "Europe/Paris"' in md and "2025-01-01T12:00:00+01:00" in md
    assert "data:image/jpeg;base64," in md
    assert "Be brief." in md
    assert "| 412 |" in md and f"${record.summary.cost_usd:.4f}" in md


def test_json_export_round_trips_the_record(store):
    record = store.load(record_sample(store))
    doc = json.loads(export_json(record))
    assert doc["id"] == record.id
    assert [i["text"] for i in doc["items"]] == [i.text for i in record.items]
    images = [i for i in doc["items"] if i["image_jpeg_base64"]]
    assert base64.b64decode(images[0]["image_jpeg_base64"]) == JPEG
    assert [t["input_tokens"] for t in doc["turns"]] == [120, 900]
    assert doc["settings"]["instructions"] == "Be brief."
