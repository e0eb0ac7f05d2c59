"""The built-in scenarios' own pieces: tools, the supervisor's answers, the guardrail's rules."""

from __future__ import annotations

import importlib
import json
from types import SimpleNamespace
from typing import Any

import pytest
from agents import FunctionTool
from agents.tool_context import ToolContext

from realtime.tools import DEFAULT_TOOLS
from scenarios import ScenarioContext, front_desk, guarded, load_scenario, supervisor

LOCAL = ScenarioContext(backend="local", base_url="http://127.0.0.1:1/v1", api_key="sk-local")
KEY = "sk-very-secret-key-0123456789"


def function_tools(name: str) -> dict[str, FunctionTool]:
    tools = load_scenario(name).tools
    assert all(isinstance(t, FunctionTool) for t in tools)
    return {t.name: t for t in tools if isinstance(t, FunctionTool)}


async def call(tool: FunctionTool, arguments: dict[str, Any], context: ScenarioContext = LOCAL) -> Any:
    args = json.dumps(arguments)
    ctx = ToolContext(context=context, tool_name=tool.name, tool_call_id="call_1", tool_arguments=args)
    return await tool.on_invoke_tool(ctx, args)


# --- assistant ---------------------------------------------------------------------------------


def test_assistant_tools_are_the_apps_tools_unchanged() -> None:
    tools = function_tools("assistant")
    as_session = [
        {"type": "function", "name": t.name, "description": t.description, "parameters": t.params_json_schema}
        for t in tools.values()
    ]
    assert as_session == DEFAULT_TOOLS.session_tools()


def test_assistant_instructions_are_the_apps_default() -> None:
    from realtime.settings import DEFAULT_INSTRUCTIONS

    assert load_scenario("assistant").instructions == DEFAULT_INSTRUCTIONS


async def test_assistant_tools_still_run() -> None:
    tools = function_tools("assistant")
    assert await call(tools["echo_upper"], {"text": "hi"}) == {"text": "HI"}


# --- front desk --------------------------------------------------------------------------------


async def test_billing_looks_up_invoices() -> None:
    found = await call(front_desk.look_up_invoice, {"invoice_id": "INV-1002"})
    assert found["found"] is True and found["amount"] == 129.5 and found["status"] == "due"
    assert await call(front_desk.look_up_invoice, {"invoice_id": "77"}) == {"invoice_id": "77", "found": False}


async def test_tech_support_checks_services() -> None:
    assert (await call(front_desk.check_service_status, {"service": "Email."}))["status"] == "operational"
    assert "unknown service" in (await call(front_desk.check_service_status, {"service": "fax"}))["status"]


def test_each_front_desk_agent_opens_with_its_own_sentence() -> None:
    openings = {
        a.name: str(a.instructions).splitlines()[0]
        for a in (front_desk.agent, front_desk.billing, front_desk.tech_support)
    }
    assert openings == {
        "front_desk": "Say: Front desk here.",
        "billing": "Say: Billing here.",
        "tech_support": "Say: Tech support here.",
    }


# --- supervisor --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Can I get a refund on my kettle?", "30 days"),
        ("When are you open on Monday?", "9 to 5"),
        ("How long does shipping take?", "3 to 5 working days"),
        ("My phone is broken", "two-year warranty"),
        ("Can I park my car there?", supervisor.LOCAL_DEFAULT),
    ],
)
def test_local_supervisor_answers(question: str, expected: str) -> None:
    assert expected in supervisor.local_answer(question)


async def test_local_backend_uses_the_canned_answers() -> None:
    assert await call(supervisor.ask_supervisor, {"question": "refund please"}) == supervisor.local_answer("refund")


def test_supervisor_model_is_one_the_sdk_knows() -> None:
    from typing import get_args

    from openai.types.shared import ChatModel

    assert supervisor.SUPERVISOR_MODEL in get_args(ChatModel)


async def test_openai_backend_asks_the_responses_api(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    class FakeResponses:
        async def create(self, **kwargs: Any) -> Any:
            seen["request"] = kwargs
            return SimpleNamespace(output_text=" Yes, within 30 days. ")

    class FakeClient:
        def __init__(self, **kwargs: Any) -> None:
            seen["client"] = kwargs
            self.responses = FakeResponses()

        async def __aenter__(self) -> FakeClient:
            return self

        async def __aexit__(self, *exc: object) -> None:
            seen["closed"] = True

    monkeypatch.setattr(supervisor.openai, "AsyncOpenAI", FakeClient)
    context = ScenarioContext(backend="openai", base_url="https://example.test/v1", api_key=KEY)
    answer = await call(supervisor.ask_supervisor, {"question": "Refund?"}, context)
    assert answer == "Yes, within 30 days."
    assert seen["client"]["api_key"] == KEY and seen["client"]["base_url"] == "https://example.test/v1"
    assert seen["request"]["model"] == supervisor.SUPERVISOR_MODEL and seen["request"]["input"] == "Refund?"
    assert seen["closed"]


async def test_openai_backend_failure_is_a_short_answer_without_the_key(caplog: pytest.LogCaptureFixture) -> None:
    context = ScenarioContext(backend="openai", base_url="http://127.0.0.1:9/v1", api_key=KEY)
    answer = await call(supervisor.ask_supervisor, {"question": "Refund?"}, context)
    assert answer.startswith("The supervisor could not be reached (APIConnectionError)")
    assert KEY not in answer and KEY not in caplog.text


# --- guarded -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "violation"),
    [
        ("I like Banana bread", {"rule": "blocked word", "match": "Banana"}),
        ("the PASSWORD is hunter2", {"rule": "blocked word", "match": "PASSWORD"}),
        ("card 4111 1111 1111 1111 thanks", {"rule": "card number", "match": "card ending 1111"}),
        ("card 4242-4242-4242-4242", {"rule": "card number", "match": "card ending 4242"}),
        ("amex 378282246310005.", {"rule": "card number", "match": "card ending 0005"}),
        ("card 4111 1111 1111 1111 expires 2029", {"rule": "card number", "match": "card ending 1111"}),
    ],
)
def test_guardrail_trips(text: str, violation: dict[str, str]) -> None:
    assert guarded.find_violation(text) == violation


@pytest.mark.parametrize(
    "text",
    [
        "Refund 20 dollars",
        "Call me on +1 555-123-4567",
        "Order 1234567890123",  # 13 digits, not Luhn-valid
        "4111 1111 1111 1112",  # a card's shape with a bad checksum
        "bananas are fine",  # a whole word only
        "",
    ],
)
def test_guardrail_lets_ordinary_text_through(text: str) -> None:
    assert guarded.find_violation(text) is None


async def test_guardrail_object_reports_its_rule() -> None:
    agent = load_scenario("guarded")
    assert agent.output_guardrails == [guarded.no_blocked_content]
    result = await guarded.no_blocked_content.run(None, agent, "You said: banana")  # type: ignore[arg-type]
    assert result.output.tripwire_triggered
    assert result.output.output_info == {"rule": "blocked word", "match": "banana"}
    calm = await guarded.no_blocked_content.run(None, agent, "You said: hello")  # type: ignore[arg-type]
    assert not calm.output.tripwire_triggered


def test_blocked_words_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert guarded.blocked_words(None) == guarded.DEFAULT_BLOCKED_WORDS
    assert guarded.blocked_words(" , ") == guarded.DEFAULT_BLOCKED_WORDS
    assert guarded.blocked_words("Kiwi, dragon fruit ,") == ("kiwi", "dragon fruit")
    monkeypatch.setenv(guarded.WORDS_ENV, "kiwi,dragon fruit")
    try:
        module = importlib.reload(guarded)
        assert module.BLOCKED_WORDS == ("kiwi", "dragon fruit")
        assert module.find_violation("a Dragon Fruit smoothie") == {"rule": "blocked word", "match": "Dragon Fruit"}
        assert module.find_violation("a banana") is None
    finally:
        monkeypatch.delenv(guarded.WORDS_ENV)
        importlib.reload(guarded)


async def test_refunds_need_approval_and_answer_with_a_reference() -> None:
    tools = function_tools("guarded")
    refund = tools["issue_refund"]
    assert refund.needs_approval is True
    assert refund.params_json_schema["properties"]["amount"]["type"] == "number"
    assert await call(refund, {"amount": 20}) == {"refunded": 20, "currency": "USD", "reference": "RF-00002000"}
    assert "error" in await call(refund, {"amount": 0})
