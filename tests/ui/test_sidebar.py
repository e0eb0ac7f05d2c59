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


def test_every_new_session_setting_has_a_widget(history_dir):
    at = _run(AppTest.from_function(sidebar_script))
    s = at.session_state[CONV_KEY].settings
    assert s.model == "gpt-realtime-2.1"  # the newest flagship the SDK lists
    model_options = at.selectbox(key="sb.model").options
    assert "gpt-realtime-2.1-mini" in model_options and not [m for m in model_options if "preview" in m]

    at.select_slider(key="sb.reasoning_effort").set_value("high")
    at.radio(key="sb.audio_codec").set_value("pcmu")
    at.slider(key="sb.voice_speed").set_value(1.25)
    at.number_input(key="sb.vad_idle_ms").set_value(8000)
    at.radio(key="sb.noise_reduction").set_value("near_field")
    at.text_input(key="sb.transcription_language").input("fr")
    at.text_input(key="sb.transcription_prompt").input("Metro stations")
    at.radio(key="sb.tool_choice").set_value("required")
    at.toggle(key="sb.parallel_tool_calls").set_value(False)
    at.toggle(key="sb.max_tokens_limited").set_value(True)
    _run(at)
    at.number_input(key="sb.max_tokens").set_value(256)
    at.radio(key="sb.truncation").set_value("retention_ratio")
    _run(at)
    at.slider(key="sb.truncation_ratio").set_value(0.5)
    at.text_input(key="sb.prompt_id").input("pmpt_abc")
    at.text_input(key="sb.prompt_version").input("2")
    at.text_area(key="sb.prompt_variables").input('{"city": "Paris"}')
    _run(at)

    s = at.session_state[CONV_KEY].settings
    assert (s.reasoning_effort, s.audio_codec, s.voice_speed) == ("high", "pcmu", 1.25)
    assert s.turn_detection.idle_timeout_ms == 8000 and s.noise_reduction == "near_field"
    assert (s.transcription_language, s.transcription_prompt) == ("fr", "Metro stations")
    assert (s.tool_choice, s.parallel_tool_calls, s.max_output_tokens) == ("required", False, 256)
    assert (s.truncation, s.truncation_retention_ratio) == ("retention_ratio", 0.5)
    assert (s.prompt_id, s.prompt_version, s.prompt_variables) == ("pmpt_abc", "2", (("city", "Paris"),))

    # a model that does not reason hides the effort (and keeps it out of the session)
    at.selectbox(key="sb.model").select("gpt-realtime-mini")
    _run(at)
    s = at.session_state[CONV_KEY].settings
    assert s.model == "gpt-realtime-mini" and "reasoning" not in s.session_payload()
    assert not [w for w in at.select_slider if w.key == "sb.reasoning_effort"]


def test_bad_prompt_variables_are_named_and_not_applied(history_dir):
    at = _run(AppTest.from_function(sidebar_script))
    at.text_area(key="sb.prompt_variables").input("[1, 2]")
    _run(at)
    assert at.session_state[CONV_KEY].settings.prompt_variables == ()
    assert any("Prompt variables must be a JSON object" in e.value for e in at.sidebar.error)


def test_the_scenario_is_chosen_from_the_built_ins_and_the_configured_one(history_dir, monkeypatch):
    monkeypatch.delenv("REALTIME_SCENARIO", raising=False)
    at = _run(AppTest.from_function(sidebar_script))
    select = at.selectbox(key="sb.scenario")
    assert select.options == [
        "Assistant (default)",
        "Front desk (handoffs)",
        "Supervisor",
        "Guarded (guardrail, approval)",
    ]
    assert select.value == "assistant" and "next call" in (select.help or "")
    select.select("front_desk")
    _run(at)
    assert at.session_state[CONV_KEY].settings.scenario == "front_desk"
    # no text box: a spec typed into the page never reaches the loader
    assert not [w for w in at.sidebar.text_input if "scenario" in (w.key or "")]

    monkeypatch.setenv("REALTIME_SCENARIO", "/x/my_agents.py:agent")
    at = _run(AppTest.from_function(sidebar_script))
    assert at.selectbox(key="sb.scenario").options[-1] == "/x/my_agents.py:agent"
    at.selectbox(key="sb.scenario").select("/x/my_agents.py:agent")
    _run(at)
    assert at.session_state[CONV_KEY].settings.scenario == "/x/my_agents.py:agent"


def test_the_frame_policy_sits_with_the_camera_settings_and_applies_live(history_dir):
    at = _run(AppTest.from_function(sidebar_script))
    policy = at.radio(key="sb.camera_policy")
    assert policy.value == "turn" and at.session_state[CONV_KEY].settings.camera.policy == "turn"
    assert policy.options == ["Every N seconds", "At each turn (default)", "Only when I press Send frame"]
    assert "start speaking" in (policy.help or "") and "Send frame" in (policy.help or "")
    interval = at.slider(key="sb.camera_interval")
    assert not interval.disabled

    policy.set_value("manual")
    _run(at)
    camera = at.session_state[CONV_KEY].settings.camera
    assert camera.policy == "manual" and camera.interval_s == 2.0
    assert at.slider(key="sb.camera_interval").disabled  # no interval without automatic frames

    at.radio(key="sb.camera_policy").set_value("interval")
    _run(at)
    at.slider(key="sb.camera_interval").set_value(4.0)
    at.toggle(key="sb.camera_on").set_value(False)
    _run(at)
    camera = at.session_state[CONV_KEY].settings.camera
    assert (camera.policy, camera.interval_s, camera.enabled) == ("interval", 4.0, False)
