"""The sidebar (AppTest): loading a preset keeps the fields that have no widget."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from realtime.presets import PresetStore, presets_path
from realtime.settings import Settings

CONV_KEY = "realtime_studio.conversation"


def sidebar_script() -> None:
    from realtime.settings import Settings
    from ui import sidebar
    from ui.conversation import get_conversation

    sidebar.render(get_conversation(lambda: Settings()))


@pytest.fixture
def history_dir(tmp_path, monkeypatch):
    db = tmp_path / "history.db"
    monkeypatch.setenv("REALTIME_HISTORY_DB", str(db))
    return db


def _run(at: AppTest) -> AppTest:
    at.run(timeout=30)
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_loading_a_preset_keeps_padding_and_max_images(history_dir):
    saved = Settings().replace(
        voice="coral",
        instructions="Talk like a tour guide.",
        turn_detection={"prefix_padding_ms": 120, "silence_ms": 800},
        camera={"max_images": 7, "interval_s": 4.0},
    )
    PresetStore(presets_path(history_dir)).save("Guide", saved)

    at = _run(AppTest.from_function(sidebar_script))
    before = at.session_state[CONV_KEY].settings
    assert before.turn_detection.prefix_padding_ms == 300 and before.camera.max_images == 3

    at.selectbox(key="presets.selected").select("Guide")
    _run(at)
    at.button(key="presets.load").click()
    _run(at)

    after = at.session_state[CONV_KEY].settings
    assert after.voice == "coral" and after.instructions == "Talk like a tour guide."
    assert after.turn_detection.silence_ms == 800 and after.camera.interval_s == 4.0
    assert after.turn_detection.prefix_padding_ms == 120
    assert after.camera.max_images == 7
    assert any("Loaded preset" in s.value for s in at.sidebar.success)

    # A later widget change (voice) builds on the loaded preset: the hidden fields stay.
    at.selectbox(key="sb.voice").select("sage")
    _run(at)
    later = at.session_state[CONV_KEY].settings
    assert later.voice == "sage"
    assert later.turn_detection.prefix_padding_ms == 120 and later.camera.max_images == 7


def test_push_to_talk_says_how_to_end_a_turn(history_dir):
    at = _run(AppTest.from_function(sidebar_script))
    at.radio(key="sb.turn_mode").set_value("none")
    _run(at)
    assert at.session_state[CONV_KEY].settings.turn_detection.mode == "none"
    assert any("Send what I said" in c.value for c in at.sidebar.caption)
    assert not any("Push to talk" in w.value for w in at.sidebar.warning)
