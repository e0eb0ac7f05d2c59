"""ui/scenario_choice.py: only the built-ins and the server's own scenario may run; anything else falls back."""

from __future__ import annotations

from realtime.settings import Settings
from scenarios import BUILT_IN_SCENARIOS, DEFAULT_SCENARIO
from ui.scenario_choice import checked_scenario, is_allowed, scenario_label, scenario_options

CUSTOM = "/x/my_agents.py:agent"


def test_options_are_the_built_ins_and_the_configured_one():
    assert scenario_options("assistant") == tuple(BUILT_IN_SCENARIOS)
    assert scenario_options("guarded") == tuple(BUILT_IN_SCENARIOS)
    assert scenario_options(CUSTOM) == (*BUILT_IN_SCENARIOS, CUSTOM)
    assert scenario_options("") == tuple(BUILT_IN_SCENARIOS)
    assert is_allowed(CUSTOM, CUSTOM) and not is_allowed(CUSTOM, "assistant")
    assert not is_allowed("/tmp/evil.py:agent", CUSTOM)


def test_labels_read_like_a_person_wrote_them():
    assert [scenario_label(s) for s in BUILT_IN_SCENARIOS] == [
        "Assistant (default)",
        "Front desk (handoffs)",
        "Supervisor",
        "Guarded (guardrail, approval)",
    ]
    assert scenario_label(CUSTOM) == CUSTOM


def test_a_scenario_from_elsewhere_falls_back_to_the_default_and_says_so():
    ok = Settings().replace(scenario="front_desk")
    assert checked_scenario(ok, "assistant") == (ok, None)
    mine = Settings().replace(scenario=CUSTOM)
    assert checked_scenario(mine, CUSTOM) == (mine, None)
    checked, note = checked_scenario(Settings().replace(scenario="/tmp/evil_*.py:agent"), CUSTOM, what="preset")
    assert checked.scenario == DEFAULT_SCENARIO
    assert note is not None and note.startswith("The preset names the scenario “/tmp/evil\\_\\*.py:agent”")
    assert "neither built in nor configured on this server" in note and "Assistant (default)" in note
    long_spec = "/tmp/" + "a" * 300 + ".py:agent"
    _, note = checked_scenario(Settings().replace(scenario=long_spec), "assistant")
    assert note is not None and len(note) < 300
