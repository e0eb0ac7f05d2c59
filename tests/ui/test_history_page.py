"""The History page (AppTest) with an empty history: it loads and says what it will hold."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]


def test_history_page_loads_with_an_empty_history(tmp_path, monkeypatch):
    monkeypatch.setenv("REALTIME_HISTORY_DB", str(tmp_path / "history.db"))
    at = AppTest.from_file(str(ROOT / "pages" / "3_History.py"), default_timeout=30)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert [t.value for t in at.title] == ["History"]
    assert any(i.value.startswith("No conversations yet.") for i in at.info)
