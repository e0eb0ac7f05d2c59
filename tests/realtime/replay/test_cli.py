"""``python -m realtime.replay`` against the local engine: a conversation saved in History, replayed
with two presets whose instructions start with different ``Say:`` sentences and whose voices differ."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from realtime.history import HistoryStore
from realtime.metrics import TurnMetrics
from realtime.presets import PresetStore, presets_path
from realtime.replay.__main__ import main
from realtime.replay.report import from_json
from realtime.settings import Settings
from realtime.transcript import TranscriptItem


def jpeg(rgb) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), rgb).save(buf, format="JPEG")
    return buf.getvalue()


@pytest.fixture
def saved(tmp_path, engine, monkeypatch):
    """A History file with a 4-turn conversation (spoken, typed, an image with a question, a tool call),
    two presets beside it, and the environment pointing the CLI at them and at the test engine."""
    db = tmp_path / "history.db"
    monkeypatch.setenv("REALTIME_HISTORY_DB", str(db))
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setenv("OPENAI_BASE_URL", engine.base_url)
    store = HistoryStore(db)
    recorder = store.recorder
    cid = recorder.start_conversation(Settings(api_key="test-key", base_url=engine.base_url))
    put = recorder.listener(cid)
    items = [
        TranscriptItem("u1", "user", "audio", "hello there", final=True),
        TranscriptItem("a1", "assistant", "audio", "Hi! How can I help?", final=True),
        TranscriptItem("u2", "user", "text", "what is two plus two", final=True),
        TranscriptItem("a2", "assistant", "audio", "Four.", final=True),
        TranscriptItem("i3", "user", "image", "", final=True, image_thumb=jpeg((20, 200, 30))),
        TranscriptItem("u3", "user", "text", "what do you see?", final=True),
        TranscriptItem("a3", "assistant", "audio", "A green picture.", final=True),
        TranscriptItem("u4", "user", "text", "echo upper banana", final=True),
        TranscriptItem(
            "t4", "tool", "tool_call", "", True, None, "echo_upper", '{"text":"banana"}', '{"text":"BANANA"}'
        ),
        TranscriptItem("a4", "assistant", "audio", "BANANA", final=True),
    ]
    for item in items:
        put(item)
    put(TurnMetrics("turn-1", 0.0, 420.0, 380.0))
    recorder.end_conversation(cid)
    recorder.flush()
    presets = PresetStore(presets_path(db))
    base = Settings()
    presets.save("Alpha", base.replace(instructions="Say: Alpha here.", voice="marin"))
    presets.save("Beta", base.replace(instructions="Say: Beta here.", voice="cedar"))
    yield cid, tmp_path
    store.close()


def test_the_cli_writes_the_comparison_and_checks_expectations(saved, capsys):
    cid, tmp = saved
    out = tmp / "report.html"
    expect = tmp / "expect.json"
    expect.write_text(json.dumps({"turns": {"1": {"contains": "here."}, "3": {"contains": ["green"]}}}))
    code = main([cid, "--setup", "preset:Alpha", "--setup", "preset:Beta", "--out", str(out), "--expect", str(expect)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    comparison = from_json(json.loads(out.with_suffix(".json").read_text()))
    assert [r.label for r in comparison.runs] == ["Original conversation", "Preset “Alpha”", "Preset “Beta”"]
    assert len(comparison.turns) == 4 and len(comparison.turns[2].images) == 1
    for run, say in ((comparison.runs[1], "Alpha here."), (comparison.runs[2], "Beta here.")):
        assert [r.text.startswith(say) for r in run.results] == [True] * 4, [r.text for r in run.results]
        assert all(r.audio_wav for r in run.results)
    assert comparison.runs[1].results[3].tool_calls[0].startswith("echo_upper(")
    html = out.read_text()
    assert html.count("<audio") == 8 and "Alpha here." in html and "Beta here." in html
    assert "Preset “Alpha”: 4/4 turns in" in captured.out

    expect.write_text(json.dumps({"turns": {"2": {"not_contains": ["Alpha"]}}}))
    code = main([cid, "--setup", "preset:Alpha", "--out", str(out), "--expect", str(expect)])
    assert code == 1
    assert "FAILED Preset “Alpha”, turn 2: the reply contains 'Alpha'." in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["no-such-conversation", "--setup", "current"], "There is no conversation 'no-such-conversation' in History"),
        (["{cid}", "--setup", "preset:Gone"], "There is no preset named 'Gone'"),
        (["{cid}", "--setup", "yesterday"], "Unknown setup 'yesterday'"),
        (["{cid}"], "Give at least one setup"),
    ],
)
def test_a_replay_that_cannot_start_says_why(saved, capsys, args, says):
    cid, tmp = saved
    code = main([a.replace("{cid}", cid) for a in args] + ["--out", str(tmp / "r.html")])
    assert code == 2
    assert says in capsys.readouterr().err
    assert not (tmp / "r.html").exists()
