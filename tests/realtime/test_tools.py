"""Tools: derived schemas valid as GA function tools, results and errors as JSON, concurrency."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import datetime

import pytest
from openai.types.realtime import RealtimeFunctionTool

from realtime import tools as tools_mod
from realtime.tools import DEFAULT_TOOLS, ToolRegistry


def test_default_tools_and_session_dicts_validate_against_sdk():
    assert DEFAULT_TOOLS.names == ("get_datetime", "delayed_add", "echo_upper")
    dicts = DEFAULT_TOOLS.session_tools({"echo_upper", "delayed_add"})
    assert [d["name"] for d in dicts] == ["delayed_add", "echo_upper"]  # registry order
    for d in dicts:
        tool = RealtimeFunctionTool.model_validate(d)
        assert not tool.model_extra
        assert tool.type == "function" and tool.description
        assert d["parameters"]["type"] == "object"
    assert DEFAULT_TOOLS.session_tools(set()) == []
    assert len(DEFAULT_TOOLS.session_tools()) == 3
    # callers may mutate what they get without touching the registry
    dicts[0]["parameters"]["properties"].clear()
    assert DEFAULT_TOOLS.session_tools({"delayed_add"})[0]["parameters"]["properties"]


async def test_echo_upper():
    assert json.loads(await DEFAULT_TOOLS.run("echo_upper", '{"text": "hello there"}')) == {"text": "HELLO THERE"}


async def test_get_datetime_is_local_iso_with_timezone():
    out = json.loads(await DEFAULT_TOOLS.run("get_datetime", "{}"))
    parsed = datetime.fromisoformat(out["datetime"])
    assert parsed.tzinfo is not None
    assert abs((parsed - datetime.now().astimezone()).total_seconds()) < 5
    assert isinstance(out["timezone"], str)
    # no arguments at all is fine too
    assert "datetime" in json.loads(await DEFAULT_TOOLS.run("get_datetime", ""))


@pytest.fixture
def fast_add(monkeypatch):
    monkeypatch.setattr(tools_mod, "DELAYED_ADD_SECONDS", 0.2)


async def test_delayed_add_waits_and_shows_integers_as_integers(fast_add):
    start = time.monotonic()
    out = await DEFAULT_TOOLS.run("delayed_add", '{"a": 2, "b": 5}')
    assert time.monotonic() - start >= 0.2
    assert out == '{"sum": 7}'
    assert json.loads(await DEFAULT_TOOLS.run("delayed_add", '{"a": 2.5, "b": 0.25}')) == {"sum": 2.75}
    assert json.loads(await DEFAULT_TOOLS.run("delayed_add", '{"a": "3", "b": 4}')) == {"sum": 7}


async def test_delayed_add_really_waits_about_a_second():
    start = time.monotonic()
    assert json.loads(await DEFAULT_TOOLS.run("delayed_add", '{"a": 1, "b": 1}')) == {"sum": 2}
    assert 0.9 <= time.monotonic() - start < 2.0


async def test_calls_run_concurrently(fast_add):
    start = time.monotonic()
    outs = await asyncio.gather(*(DEFAULT_TOOLS.run("delayed_add", json.dumps({"a": i, "b": 1})) for i in range(5)))
    assert [json.loads(o)["sum"] for o in outs] == [1, 2, 3, 4, 5]
    assert time.monotonic() - start < 0.2 * 3  # not 5 x 0.2 s


@pytest.mark.parametrize(
    "name, args, fragment",
    [
        ("nope", "{}", "Unknown tool 'nope'. Available tools: get_datetime, delayed_add, echo_upper."),
        ("delayed_add", "{not json", "not valid JSON"),
        ("delayed_add", "[1, 2]", "must be a JSON object, got list"),
        ("delayed_add", '{"a": 1}', "Bad arguments for delayed_add: b: Field required"),
        ("delayed_add", '{"a": "x", "b": 1}', "Bad arguments for delayed_add: a:"),
    ],
)
async def test_bad_calls_return_json_error(name, args, fragment):
    out = json.loads(await DEFAULT_TOOLS.run(name, args))
    assert set(out) == {"error"}
    assert fragment in out["error"]


async def test_extra_arguments_are_ignored_not_fatal():
    assert json.loads(await DEFAULT_TOOLS.run("echo_upper", '{"text": "a", "extra": 1}')) == {"text": "A"}


async def test_a_tool_that_raises_returns_error_and_registry_keeps_working():
    def divide(a: float, b: float) -> float:
        """Divide a by b."""
        return a / b

    reg = ToolRegistry([divide])
    out = json.loads(await reg.run("divide", '{"a": 1, "b": 0}'))
    assert out == {"error": "divide failed: ZeroDivisionError: float division by zero"}
    assert json.loads(await reg.run("divide", '{"a": 1, "b": 4}')) == 0.25


async def test_sync_tools_run_off_the_event_loop():
    loop_thread = threading.get_ident()
    seen = []

    def where() -> str:
        """Report the thread."""
        seen.append(threading.get_ident())
        return "ok"

    assert json.loads(await ToolRegistry([where]).run("where", "{}")) == "ok"
    assert seen and seen[0] != loop_thread


async def test_cancellation_propagates():
    task = asyncio.ensure_future(DEFAULT_TOOLS.run("delayed_add", '{"a": 1, "b": 2}'))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_duplicate_names_rejected():
    with pytest.raises(ValueError, match="unique"):
        ToolRegistry([tools_mod.echo_upper, tools_mod.echo_upper])
