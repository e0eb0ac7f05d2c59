"""load_scenario: built-in names, files by path, modules by name, and every way a spec can be wrong."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from agents.handoffs import Handoff
from agents.realtime import RealtimeAgent, realtime_handoff

from scenarios import (
    BUILT_IN_SCENARIOS,
    DEFAULT_SCENARIO,
    ScenarioContext,
    ScenarioError,
    agent_label,
    load_scenario,
    reachable_agents,
)

USER_FILE = """
from agents import GuardrailFunctionOutput, function_tool, output_guardrail
from agents.realtime import RealtimeAgent, realtime_handoff

@function_tool(needs_approval=True)
def cancel_order(order_id: str) -> str:
    \"\"\"Cancel an order.\"\"\"
    return f"cancelled {order_id}"

@output_guardrail
def no_shouting(ctx, agent, output):
    return GuardrailFunctionOutput(output_info=None, tripwire_triggered=str(output).isupper())

orders = RealtimeAgent(name="orders", instructions="Say: Orders here.", tools=[cancel_order])
returns = RealtimeAgent(name="returns", instructions="Say: Returns here.")
agent = RealtimeAgent(
    name="greeter",
    instructions="Say: Hello.",
    handoffs=[orders, realtime_handoff(returns, tool_name_override="to_returns")],
    output_guardrails=[no_shouting],
)
not_an_agent = 42
"""


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def names(agent: RealtimeAgent) -> list[str]:
    return [a.name for a in reachable_agents(agent)]


def message_of(spec: str) -> str:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(spec)
    return str(caught.value)


# --- built-ins ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BUILT_IN_SCENARIOS))
def test_every_built_in_loads_as_a_realtime_agent(name: str) -> None:
    agent = load_scenario(name)
    assert isinstance(agent, RealtimeAgent)
    assert load_scenario(f"  {name} ") is agent  # built-ins are the app's code: imported once


def test_the_default_is_the_assistant() -> None:
    assert DEFAULT_SCENARIO == "assistant"
    assert load_scenario(DEFAULT_SCENARIO).name == "assistant"


def test_front_desk_reaches_both_specialists_once() -> None:
    assert names(load_scenario("front_desk")) == ["front_desk", "billing", "tech_support"]


def test_a_built_in_by_its_module_spec() -> None:
    assert load_scenario("scenarios.front_desk:agent") is load_scenario("front_desk")
    assert load_scenario("scenarios.front_desk:billing").name == "billing"


# --- user files --------------------------------------------------------------------------------


def test_a_user_file_by_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "my_agents.py", USER_FILE)
    monkeypatch.chdir(tmp_path)
    agent = load_scenario("my_agents.py:agent")
    assert agent.name == "greeter"
    assert names(agent) == ["greeter", "orders", "returns"]
    assert isinstance(agent.handoffs[1], Handoff)
    assert len(agent.output_guardrails) == 1
    orders = reachable_agents(agent)[1]
    assert [t.name for t in orders.tools] == ["cancel_order"]
    assert orders.tools[0].needs_approval is True  # type: ignore[union-attr]


def test_a_user_file_by_absolute_path_and_a_dotted_attribute(tmp_path: Path) -> None:
    path = write(tmp_path / "my_agents.py", USER_FILE)
    assert load_scenario(f"{path}:agent").name == "greeter"
    write(
        tmp_path / "nested.py",
        "from types import SimpleNamespace\nimport my_agents\nteam = SimpleNamespace(lead=my_agents.agent)\n",
    )
    assert load_scenario(f"{tmp_path / 'nested.py'}:team.lead").name == "greeter"


def test_a_file_may_import_its_neighbours_without_staying_on_sys_path(tmp_path: Path) -> None:
    write(tmp_path / "helpers_for_scenario_test.py", "GREETING = 'Say: Hi from a helper.'\n")
    path = write(
        tmp_path / "uses_helper.py",
        """
        from agents.realtime import RealtimeAgent
        from helpers_for_scenario_test import GREETING
        agent = RealtimeAgent(name="helped", instructions=GREETING)
        """,
    )
    try:
        assert load_scenario(f"{path}:agent").instructions == "Say: Hi from a helper."
        assert str(tmp_path) not in sys.path
    finally:
        sys.modules.pop("helpers_for_scenario_test", None)


def test_an_edited_file_is_read_again(tmp_path: Path) -> None:
    path = write(
        tmp_path / "edited.py", "from agents.realtime import RealtimeAgent\nagent = RealtimeAgent(name='one')\n"
    )
    assert load_scenario(f"{path}:agent").name == "one"
    path.write_text("this is not python(\n")
    with pytest.raises(ScenarioError):
        load_scenario(f"{path}:agent")
    path.write_text("from agents.realtime import RealtimeAgent\nagent = RealtimeAgent(name='two')\n")
    assert load_scenario(f"{path}:agent").name == "two"


def test_a_package_module_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "team_pkg_for_scenario_test"
    package.mkdir()
    (package / "__init__.py").write_text("")
    write(package / "desk.py", "from agents.realtime import RealtimeAgent\ndesk = RealtimeAgent(name='desk')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert load_scenario("team_pkg_for_scenario_test.desk:desk").name == "desk"
        write(package / "desk.py", "from agents.realtime import RealtimeAgent\ndesk = RealtimeAgent(name='desk2')\n")
        assert load_scenario("team_pkg_for_scenario_test.desk:desk").name == "desk2"  # reloaded
    finally:
        for name in [n for n in sys.modules if n.startswith("team_pkg_for_scenario_test")]:
            del sys.modules[name]


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["", "   "])
def test_an_empty_spec(spec: str) -> None:
    message = message_of(spec)
    assert message.startswith("No scenario given")
    assert "assistant, front_desk, supervisor, guarded" in message


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("nonsense", "is not one of"),
        ("my_agents.py", "add ':attr'"),
        (":agent", "both sides"),
        ("my_agents.py:", "both sides"),
        ("my_agents.py:not-a-name", "is not a Python name"),
        ("not a module:agent", "neither a .py file nor a module name"),
    ],
)
def test_a_malformed_spec(spec: str, expected: str) -> None:
    assert expected in message_of(spec)


def test_a_missing_file(tmp_path: Path) -> None:
    message = message_of(f"{tmp_path / 'gone.py'}:agent")
    assert "gone.py" in message and "was not found" in message


def test_a_directory_is_not_a_file(tmp_path: Path) -> None:
    (tmp_path / "folder.py").mkdir()
    assert "is a directory" in message_of(f"{tmp_path / 'folder.py'}:agent")


def test_a_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "broken.py", "from agents.realtime import RealtimeAgent\n\nagent = RealtimeAgent(name='x'\n"
    )
    message = message_of(f"{path}:agent")
    assert str(path) in message and "syntax error on line 3" in message


def test_a_file_that_raises_while_imported(tmp_path: Path) -> None:
    path = write(tmp_path / "raises.py", "import os\n\nraise RuntimeError('no database')\n")
    message = message_of(f"{path}:agent")
    assert str(path) in message
    assert "RuntimeError: no database on line 3" in message


def test_a_file_that_exits_while_imported(tmp_path: Path) -> None:
    path = write(tmp_path / "exits.py", "import sys\nsys.exit(2)\n")
    assert "raised SystemExit: 2 on line 2" in message_of(f"{path}:agent")


def test_a_missing_attribute(tmp_path: Path) -> None:
    path = write(tmp_path / "my_agents.py", USER_FILE)
    message = message_of(f"{path}:nobody")
    assert str(path) in message and "has no attribute 'nobody'" in message


def test_an_attribute_that_is_not_an_agent(tmp_path: Path) -> None:
    path = write(tmp_path / "my_agents.py", USER_FILE)
    message = message_of(f"{path}:not_an_agent")
    assert str(path) in message and "'not_an_agent' is an int, not a RealtimeAgent" in message


def test_a_text_agent_gets_a_hint(tmp_path: Path) -> None:
    path = write(tmp_path / "text_agent.py", "from agents import Agent\nagent = Agent(name='text')\n")
    assert "use agents.realtime.RealtimeAgent instead of agents.Agent" in message_of(f"{path}:agent")


def test_a_missing_module() -> None:
    message = message_of("no_such_pkg_for_scenarios.agents:agent")
    assert "no_such_pkg_for_scenarios.agents was not found" in message


def test_a_module_whose_import_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "imports_missing_for_scenario_test.py", "import surely_not_installed_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    message = message_of("imports_missing_for_scenario_test:agent")
    assert "Scenario module imports_missing_for_scenario_test raised ModuleNotFoundError" in message
    assert "surely_not_installed_xyz" in message


def test_errors_are_value_errors() -> None:
    assert issubclass(ScenarioError, ValueError)


# --- reachable_agents, labels, context ---------------------------------------------------------


def test_reachable_agents_handles_cycles_and_handoff_objects() -> None:
    a = RealtimeAgent(name="a")
    b = RealtimeAgent(name="b")
    c = RealtimeAgent(name="c")
    d = RealtimeAgent(name="d")
    a.handoffs.extend([b, realtime_handoff(c)])
    b.handoffs.extend([a, c])
    c.handoffs.append(realtime_handoff(d, on_handoff=lambda ctx: None))
    d.handoffs.append(a)
    assert names(a) == ["a", "b", "c", "d"]
    assert names(d) == ["d", "a", "b", "c"]


def test_reachable_agents_of_a_lone_agent() -> None:
    lone = RealtimeAgent(name="lone")
    assert reachable_agents(lone) == (lone,)


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("billing", "Billing"),
        ("tech_support", "Tech support"),
        ("front-desk", "Front desk"),
        ("", ""),
        ("VIP_desk", "VIP desk"),
    ],
)
def test_agent_label(name: str, label: str) -> None:
    assert agent_label(name) == label


def test_the_context_never_shows_its_key() -> None:
    context = ScenarioContext(backend="openai", base_url=None, api_key="sk-secret-123")
    assert "sk-secret-123" not in repr(context)
    with pytest.raises(AttributeError):
        context.api_key = "other"  # type: ignore[misc]


def test_the_readme_example_loads(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Your own agents", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    path = write(tmp_path / "my_agents.py", code)
    agent = load_scenario(f"{path}:agent")
    assert names(agent) == ["greeter", "orders"]
    assert agent.output_guardrails and reachable_agents(agent)[1].tools[0].needs_approval is True  # type: ignore[union-attr]
