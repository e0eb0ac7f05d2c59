"""Presets: save/load/delete round-trip, read-only built-ins, hand-broken files and entries."""

from __future__ import annotations

import json
import threading

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings

from realtime.presets import BUILTIN_PRESETS, PresetError, PresetStore, presets_path
from realtime.settings import Settings
from tests.realtime.settings_strategy import settings_strategy

KEY = "sk-test-PRESETS-MUST-NOT-KEEP-THIS-0123456789"


@pytest.fixture
def presets(tmp_path):
    return PresetStore(tmp_path / "presets.json")


def custom() -> Settings:
    return Settings(api_key=KEY).replace(
        model="gpt-realtime-mini",
        voice="cedar",
        instructions="Speak like a pirate.\nKeep it short.",
        turn_detection={"mode": "semantic_vad", "eagerness": "high"},
        transcription_model="whisper-1",
        output_modalities="text",
        camera={"enabled": False, "interval_s": 5.0, "detail": "low"},
        tools=("echo_upper",),
        scenario="guarded",
    )


def comparable(s: Settings) -> Settings:
    return s.replace(api_key="", base_url=None, ice_servers=())


def test_a_saved_preset_loads_back_exactly_and_survives_a_new_store(presets, tmp_path):
    presets.save("Pirate", custom())
    again = PresetStore(tmp_path / "presets.json")
    loaded, warnings = again.load("pirate", Settings())  # names are case-insensitive
    assert warnings == ()
    assert comparable(loaded) == comparable(custom())
    assert "Pirate" in again.names()


def test_loading_keeps_the_current_key_and_never_stores_one(presets, tmp_path):
    presets.save("Pirate", custom())
    raw = (tmp_path / "presets.json").read_bytes()
    assert KEY.encode() not in raw and b"api_key" not in raw
    mine = Settings(api_key="sk-mine-abcdefghijkl")
    loaded, _ = presets.load("Pirate", mine)
    assert loaded.api_key == "sk-mine-abcdefghijkl"


def test_the_model_is_optional(presets):
    presets.save("No model", custom(), include_model=False)
    loaded, warnings = presets.load("No model", Settings(model="gpt-realtime"))
    assert warnings == () and loaded.model == "gpt-realtime" and loaded.voice == "cedar"


def test_builtins_are_listed_first_load_cleanly_and_cannot_be_changed(presets):
    names = presets.names()
    assert names[:3] == ("Concise assistant", "Describe what you see", "Tool demo")
    for preset in BUILTIN_PRESETS:
        loaded, warnings = presets.load(preset.name, Settings())
        assert warnings == (), (preset.name, warnings)
        assert loaded != Settings()
    seeing, _ = presets.load("Describe what you see", Settings().replace(camera={"enabled": False}))
    assert seeing.camera.enabled and seeing.camera.detail == "high" and seeing.tools == ()
    tools, _ = presets.load("Tool demo", Settings().replace(tools=()))
    assert set(tools.tools) == {"get_datetime", "delayed_add", "echo_upper"}
    with pytest.raises(PresetError, match="built-in"):
        presets.delete("Tool demo")
    with pytest.raises(PresetError, match="built-in"):
        presets.save("tool DEMO", custom())
    assert presets.names() == names


def test_save_overwrites_by_name_and_delete_removes(presets):
    presets.save("Mine", custom())
    presets.save("mine", Settings().replace(voice="ash"))
    assert [n for n in presets.names() if n.casefold() == "mine"] == ["mine"]
    loaded, _ = presets.load("Mine", Settings())
    assert loaded.voice == "ash"
    assert presets.delete("MINE") is True
    assert presets.delete("MINE") is False
    with pytest.raises(PresetError, match="no preset named"):
        presets.load("Mine", Settings())


@pytest.mark.parametrize("name", ["", "   ", "x" * 61, None])
def test_bad_names_are_refused_with_a_message(presets, name):
    with pytest.raises(PresetError):
        presets.save(name, custom())
    assert not presets.path.exists()


def test_a_preset_with_wrong_and_missing_fields_loads_what_is_valid(presets, tmp_path):
    (tmp_path / "presets.json").write_text(
        json.dumps(
            {
                "version": 1,
                "presets": [
                    {
                        "name": "Half broken",
                        "settings": {
                            "voice": "sage",
                            "threshold": "banana",
                            "camera": True,
                            "tools": ["get_datetime", "format_disk"],
                            "turn": 7,
                            "api_key": "sk-smuggled",
                            "colour": "red",
                            "camera_interval": 4,
                        },
                    },
                    {"name": "Empty"},
                ],
            }
        )
    )
    base = Settings().replace(camera={"enabled": False})
    loaded, warnings = presets.load("Half broken", base)
    assert loaded.voice == "sage" and loaded.camera.enabled is True and loaded.camera.interval_s == 4.0
    assert loaded.tools == ("get_datetime",)
    assert loaded.turn_detection == base.turn_detection and loaded.api_key == ""
    text = "\n".join(warnings)
    for word in ("threshold", "format_disk", "turn", "api_key", "colour"):
        assert word in text, word
    empty, warnings = presets.load("Empty", base)
    assert empty == base and "holds no settings" in warnings[0]


def test_broken_entries_are_skipped_and_named_the_rest_still_list(presets, tmp_path):
    (tmp_path / "presets.json").write_text(
        json.dumps(
            {
                "presets": [
                    "not an object",
                    {"name": ""},
                    {"name": "Concise assistant", "settings": {"voice": "ash"}},
                    {"name": "Good", "settings": {"voice": "ash"}},
                    {"name": "good", "settings": {}},
                    {"settings": {}},
                ]
            }
        )
    )
    assert presets.names()[3:] == ("Good",)
    assert presets.notice and "entry 1" in presets.notice and "already taken" in presets.notice
    loaded, _ = presets.load("Concise assistant", Settings())
    assert loaded.voice == "marin"  # the built-in, not the impostor


def test_a_corrupt_file_is_moved_aside_and_builtins_keep_working(presets, tmp_path):
    junk = '{"presets": [ {"name": "half-writ'
    (tmp_path / "presets.json").write_text(junk)
    assert presets.names() == tuple(p.name for p in BUILTIN_PRESETS)
    asides = list(tmp_path.glob("presets.json.corrupt-*"))
    assert len(asides) == 1 and asides[0].read_text() == junk
    assert "moved aside" in presets.notice and asides[0].name in presets.notice
    presets.save("Fresh", custom())  # and saving works again
    assert "Fresh" in presets.names()
    assert asides[0].read_text() == junk


def test_a_file_with_the_wrong_shape_is_kept_not_overwritten(presets, tmp_path):
    (tmp_path / "presets.json").write_text('{"hello": "world"}')
    presets.save("Fresh", custom())
    asides = list(tmp_path.glob("presets.json.corrupt-*"))
    assert len(asides) == 1 and json.loads(asides[0].read_text()) == {"hello": "world"}
    assert presets.names()[3:] == ("Fresh",)


def test_concurrent_saves_keep_every_preset(presets):
    errors: list[BaseException] = []

    def save(n: int) -> None:
        try:
            presets.save(f"P{n}", Settings().replace(voice="echo"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert set(presets.names()[3:]) == {f"P{n}" for n in range(16)}


def test_the_file_lives_next_to_the_history_database(tmp_path):
    assert presets_path(tmp_path / "data" / "realtime-studio.db") == tmp_path / "data" / "presets.json"


def test_an_unwritable_location_is_a_message(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = PresetStore(blocker / "presets.json")
    assert store.names()[:3] == tuple(p.name for p in BUILTIN_PRESETS)
    with pytest.raises(PresetError, match="could not be saved"):
        store.save("X", custom())


# ---- the sidebar panel, run by Streamlit's own script runner (AppTest) ------------------------


def _panel_app():
    import streamlit as st

    from realtime.settings import Settings
    from ui import presets_panel

    current = st.session_state.setdefault("current", Settings())
    with st.sidebar:
        chosen = presets_panel.render(current)
    if chosen is not None:
        st.session_state["current"] = chosen
    now = st.session_state["current"]
    st.write(
        f"voice={now.voice} camera={now.camera.enabled} tools={','.join(now.tools) or 'none'} "
        f"key={'yes' if now.api_key else 'no'} scenario={now.scenario}"
    )


@pytest.fixture
def panel(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from realtime.history import close_process_stores

    monkeypatch.setenv("REALTIME_HISTORY_DB", str(tmp_path / "data" / "h.db"))
    yield AppTest.from_function(_panel_app, default_timeout=30)
    close_process_stores()


def _state(at) -> str:
    return at.markdown[-1].value


def test_panel_a_share_link_sets_up_the_session_and_names_what_it_ignored(panel):
    panel.query_params.update({"voice": "ash", "camera": "off", "key": "sk-evil-123", "threshold": "loud"})
    panel.run()
    assert not panel.exception
    assert _state(panel).startswith("voice=ash camera=False")
    warning = panel.sidebar.warning[0].value
    assert "'key'" in warning and "threshold" in warning and "sk-evil" not in warning
    (link,) = panel.sidebar.code
    assert "voice=ash" in link.value and "camera=off" in link.value and "key=" not in link.value.replace("_key", "")
    panel.run()  # applied once, not on every rerun
    assert _state(panel).startswith("voice=ash")


def test_panel_load_save_and_delete_with_confirmation(panel, tmp_path):
    panel.run()
    panel.sidebar.selectbox(key="presets.selected").select("Tool demo").run()
    panel.sidebar.button(key="presets.load").click().run()
    assert "voice=verse" in _state(panel) and "delayed_add" in _state(panel)
    assert panel.sidebar.button(key="presets.delete").disabled  # built-ins cannot be deleted
    panel.sidebar.text_input(key="presets.new_name").input("My demo")
    panel.sidebar.button[-1].click().run()  # "Save preset"
    assert any("Saved preset “My demo”" in s.value for s in panel.sidebar.success)
    assert panel.sidebar.selectbox(key="presets.selected").value == "My demo"
    assert "My demo" in PresetStore(tmp_path / "data" / "presets.json").names()
    panel.sidebar.button(key="presets.delete").click().run()
    assert any("Delete the preset “My demo”" in w.value for w in panel.sidebar.warning)
    panel.sidebar.button(key="presets.confirm_no").click().run()  # cancel keeps it
    assert "My demo" in PresetStore(tmp_path / "data" / "presets.json").names()
    panel.sidebar.button(key="presets.delete").click().run()
    panel.sidebar.button(key="presets.confirm_yes").click().run()
    assert "My demo" not in PresetStore(tmp_path / "data" / "presets.json").names()
    assert not panel.exception


def test_panel_saving_without_a_name_says_so(panel):
    panel.run()
    panel.sidebar.button[-1].click().run()
    assert any("Give the preset a name" in e.value for e in panel.sidebar.error)
    assert not panel.exception


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(settings_strategy)
def test_every_setting_round_trips_through_a_saved_preset(tmp_path, s):
    store = PresetStore(tmp_path / "every-field.json")
    store.save("Every field", s)
    raw = (tmp_path / "every-field.json").read_text(encoding="utf-8")
    assert s.api_key not in raw
    loaded, warnings = PresetStore(tmp_path / "every-field.json").load("Every field", Settings())
    assert warnings == ()
    assert comparable(loaded) == comparable(s)


EVIL = "/tmp/evil_agents.py:agent"


def test_panel_a_link_may_choose_a_built_in_scenario(panel, monkeypatch):
    monkeypatch.delenv("REALTIME_SCENARIO", raising=False)
    panel.query_params.update({"voice": "ash", "scenario": "front_desk"})
    panel.run()
    assert not panel.exception and _state(panel).endswith("scenario=front_desk")
    assert not panel.sidebar.warning and "scenario=front_desk" in panel.sidebar.code[0].value


def test_panel_a_link_naming_a_file_this_server_does_not_run_falls_back(panel, monkeypatch):
    monkeypatch.setenv("REALTIME_SCENARIO", "/srv/ours.py:agent")
    panel.query_params.update({"voice": "ash", "scenario": EVIL})
    panel.run()
    assert not panel.exception
    assert _state(panel).startswith("voice=ash") and _state(panel).endswith("scenario=assistant")
    (warning,) = panel.sidebar.warning
    assert "names the scenario “/tmp/evil\\_agents.py:agent”" in warning.value
    assert "neither built in nor configured on this server" in warning.value
    assert "Assistant (default)" in warning.value


def test_panel_the_servers_own_scenario_comes_through_a_link(panel, monkeypatch):
    monkeypatch.setenv("REALTIME_SCENARIO", "/srv/ours.py:agent")
    panel.query_params.update({"scenario": "/srv/ours.py:agent"})
    panel.run()
    assert not panel.exception and _state(panel).endswith("scenario=/srv/ours.py:agent")
    assert not panel.sidebar.warning


def test_panel_a_preset_with_a_foreign_scenario_loads_the_rest(panel, tmp_path, monkeypatch):
    monkeypatch.delenv("REALTIME_SCENARIO", raising=False)
    PresetStore(tmp_path / "data" / "presets.json").save("Elsewhere", Settings().replace(voice="sage", scenario=EVIL))
    PresetStore(tmp_path / "data" / "presets.json").save("Guarded", Settings().replace(scenario="guarded"))
    panel.run()
    panel.sidebar.selectbox(key="presets.selected").select("Elsewhere").run()
    panel.sidebar.button(key="presets.load").click().run()
    assert _state(panel).startswith("voice=sage") and _state(panel).endswith("scenario=assistant")
    assert any("The preset names the scenario" in w.value for w in panel.sidebar.warning)
    panel.sidebar.selectbox(key="presets.selected").select("Guarded").run()
    panel.sidebar.button(key="presets.load").click().run()
    assert _state(panel).endswith("scenario=guarded") and not panel.sidebar.warning
    assert not panel.exception
