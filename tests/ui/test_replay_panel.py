"""History's "Replay with…" (AppTest) against the local engine: two presets that answer differently,
the progress, then the comparison with each setup's replies, voices and totals."""

from __future__ import annotations

import threading
import time

from streamlit.testing.v1 import AppTest

from realtime.history import close_process_stores, process_store
from realtime.presets import PresetStore, presets_path
from realtime.settings import Settings
from tests.realtime.history.samples import item, settings
from tests.ui.test_history_page import PAGE


def test_replay_with_two_presets_compares_them_turn_by_turn(tmp_path, monkeypatch, engine):
    db = tmp_path / "h.db"
    monkeypatch.setenv("REALTIME_HISTORY_DB", str(db))
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.setenv("OPENAI_BASE_URL", engine.base_url)
    store, _ = process_store()
    assert store is not None
    rec = store.recorder
    cid = rec.start_conversation(settings())
    put = rec.listener(cid)
    for piece in (
        item("u1", "user", "hello there"),
        item("a1", "assistant", "Hi!"),
        item("u2", "user", "what is the weather like"),
        item("a2", "assistant", "Sunny."),
    ):
        put(piece)
    rec.end_conversation(cid)
    assert rec.flush(5)
    presets = PresetStore(presets_path(db))
    presets.save("Alpha", Settings().replace(instructions="Say: Alpha here.", voice="marin"))
    presets.save("Beta", Settings().replace(instructions="Say: Beta here.", voice="cedar"))
    try:
        at = AppTest.from_file(PAGE, default_timeout=30)
        at.session_state["history.open"] = cid
        at.run()
        assert not at.exception, [e.message for e in at.exception]
        at.multiselect(key="replay_setups").set_value(["preset:Alpha", "preset:Beta"]).run()
        at.button(key="replay_go").click().run()
        assert not at.exception, [e.message for e in at.exception]
        deadline = time.monotonic() + 60
        while not any(getattr(b, "label", None) == "Report (HTML)" for b in at.get("download_button")):
            assert time.monotonic() < deadline, "the replay did not finish within 60 s"
            time.sleep(0.5)
            at.run()
        assert not at.exception, [e.message for e in at.exception]
        (table,) = [d for d in at.dataframe if "Setup" in d.value.columns]
        assert list(table.value["Setup"]) == ["Original conversation", "Preset “Alpha”", "Preset “Beta”"]
        assert list(table.value["Failed turns"]) == [0, 0, 0]
        replies = [m.value for m in at.markdown]
        assert sum(r.startswith("Alpha here.") for r in replies) == 2
        assert sum(r.startswith("Beta here.") for r in replies) == 2
        assert len(at.get("audio")) == 4  # every replayed reply has its voice
    finally:
        close_process_stores()
    assert not [t for t in threading.enumerate() if t.name == "history-writer"]
