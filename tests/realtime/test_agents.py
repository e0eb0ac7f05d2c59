"""A user's own scenario through the Bridge: handoffs, output guardrails and approvals, run by
`openai-agents` over the call's sideband, against the local engine. Nothing runs a tool twice.

The scenario is a file written by the test outside the repository and loaded by path, as a user's
would be (``REALTIME_SCENARIO=/some/dir/my_agents.py:agent``).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from realtime.settings import CameraSettings, Settings
from tests.fakebrowser import BridgedCall, wait_until
from tests.realtime.test_reconnect import drop, reconnected

MY_AGENTS = '''
from pathlib import Path

from agents import GuardrailFunctionOutput, function_tool, output_guardrail
from agents.realtime import RealtimeAgent


@function_tool(needs_approval=True)
def issue_refund(amount: float) -> dict:
    """Refund the customer."""
    with open(Path(__file__).with_suffix(".runs"), "a") as runs:  # what the test counts
        runs.write(f"{amount}\\n")
    return {"refunded": amount, "currency": "USD"}


@output_guardrail
def no_bananas(context, agent, output: str) -> GuardrailFunctionOutput:
    hit = "banana" in output.lower()
    return GuardrailFunctionOutput(output_info={"rule": "blocked word", "match": "banana" if hit else ""},
                                   tripwire_triggered=hit)


billing = RealtimeAgent(
    name="billing", instructions="Say: Billing here.", tools=[issue_refund], output_guardrails=[no_bananas]
)
agent = RealtimeAgent(
    name="front_desk", instructions="Say: Front desk here.", handoffs=[billing], output_guardrails=[no_bananas]
)
'''


@pytest.fixture
def my_agents(tmp_path):
    path = tmp_path / "elsewhere" / "my_agents.py"
    path.parent.mkdir()
    path.write_text(textwrap.dedent(MY_AGENTS))
    return f"{path}:agent"


def runs_of(spec: str) -> list[float]:
    """The amounts the scenario's refund tool ran with."""
    runs = Path(spec.rsplit(":", 1)[0]).with_suffix(".runs")
    return [float(line) for line in runs.read_text().split()] if runs.exists() else []


def settings_for(engine, scenario: str) -> Settings:
    return Settings(
        api_key="test-key", base_url=engine.base_url, camera=CameraSettings(enabled=False), scenario=scenario
    )


def notes(call: BridgedCall) -> list[str]:
    return [i.text for i in call.bridge.snapshot().transcript if i.role in ("system", "error")]


async def agent_is(call: BridgedCall, name: str) -> None:
    await wait_until(lambda: call.bridge.snapshot().agent == name, 10, f"the {name} agent")


async def transfer_to_billing(call: BridgedCall) -> None:
    """Hand off, and wait for billing's first words: its tools are in the session from then on."""
    before = len(call.texts("assistant"))
    call.bridge.send_text("transfer to billing")
    await agent_is(call, "billing")
    await wait_until(
        lambda: any(t.startswith("Billing here.") for t in call.texts("assistant")[before:]),
        15,
        "billing's first words",
    )


async def test_a_handoff_changes_the_agent_and_its_instructions_show_in_the_next_reply(engine, my_agents):
    async with BridgedCall(settings_for(engine, my_agents), rgb=None) as call:
        await agent_is(call, "front_desk")
        call.bridge.send_text("hello")
        assert (await call.reply_after(0)).startswith("Front desk here.")
        call.bridge.send_text("transfer to billing")
        await agent_is(call, "billing")
        assert "front_desk \u2192 billing" in notes(call)
        before = len(call.texts("assistant"))
        call.bridge.send_text("what is my balance")
        await wait_until(
            lambda: any(t.startswith("Billing here.") for t in call.texts("assistant")[before:]), 15, "billing's reply"
        )
        assert call.bridge.snapshot().scenario == my_agents
        agent_events = {e.type for e in call.bridge.events.snapshot() if e.direction == "agent"}
        assert {"agent.AgentActive", "agent.HandedOff"} <= agent_events  # the Events page shows them


async def test_a_guardrail_cuts_the_reply_and_says_so(engine, my_agents):
    async with BridgedCall(settings_for(engine, my_agents), rgb=None) as call:
        await agent_is(call, "front_desk")
        call.bridge.send_text("I would like a banana please")
        await wait_until(
            lambda: any(n.startswith("Guardrail no_bananas stopped the reply") for n in notes(call)), 15, "the notice"
        )
        assert any("match: banana" in n for n in notes(call))
        await wait_until(
            lambda: [i for i in call.bridge.snapshot().transcript if i.role == "assistant" and i.final], 10, "the reply"
        )
        reply = next(i for i in call.bridge.snapshot().transcript if i.role == "assistant")
        assert reply.truncated  # cut (often before the blocked word reached the page), and shown so


async def test_a_tool_needing_approval_waits_and_runs_once_when_approved(engine, my_agents):
    async with BridgedCall(settings_for(engine, my_agents), rgb=None) as call:
        await agent_is(call, "front_desk")
        await transfer_to_billing(call)
        before = len(call.texts("assistant"))
        call.bridge.send_text("issue refund 20")
        (request,) = await wait_until(lambda: call.bridge.snapshot().approvals, 15, "the approval request")
        assert request.tool == "issue_refund" and request.agent == "billing" and '"amount": 20' in request.arguments
        call.bridge.approve(request.call_id)
        await wait_until(lambda: not call.bridge.snapshot().approvals, 5, "the approval to clear")
        await wait_until(
            lambda: any("refunded" in t for t in call.texts("assistant")[before:]), 15, "the reply with the result"
        )
        (tool,) = [
            i for i in call.bridge.snapshot().transcript if i.kind == "tool_call" and i.tool_name == "issue_refund"
        ]
        assert tool.tool_result is not None and '"refunded": 20' in tool.tool_result
        outputs = [
            e
            for e in call.bridge.events.snapshot()
            if e.type == "conversation.item.added" and e.payload.get("item", {}).get("call_id") == request.call_id
        ]
        assert [e.payload["item"]["type"] for e in outputs] == ["function_call", "function_call_output"]
        assert runs_of(my_agents) == [20]  # the tool ran once: the library ran it, the bridge did not
        assert any(n.startswith("Approved issue_refund(") for n in notes(call))


async def test_a_denied_tool_is_answered_as_a_refusal_and_never_runs(engine, my_agents):
    async with BridgedCall(settings_for(engine, my_agents), rgb=None) as call:
        await transfer_to_billing(call)
        call.bridge.send_text("issue refund 20")
        (request,) = await wait_until(lambda: call.bridge.snapshot().approvals, 15, "the approval request")
        call.bridge.deny(request.call_id)
        (tool,) = await wait_until(
            lambda: [i for i in call.bridge.snapshot().transcript if i.tool_name == "issue_refund" and i.tool_result],
            15,
            "the refusal",
        )
        assert tool.tool_result == "Tool execution was not approved."  # the library's refusal, to the model
        assert any(n.startswith("Denied issue_refund(") for n in notes(call))
        assert runs_of(my_agents) == []


async def test_after_a_reconnect_the_agent_that_was_speaking_goes_on(engine, my_agents):
    async with BridgedCall(settings_for(engine, my_agents), rgb=None) as call:
        await transfer_to_billing(call)
        drop(engine, call.bridge.call_id)
        await reconnected(call, 1)
        await agent_is(call, "billing")
        before = len(call.texts("assistant"))
        call.bridge.send_text("hello again")
        await wait_until(
            lambda: any(t.startswith("Billing here.") for t in call.texts("assistant")[before:]), 15, "billing's reply"
        )


async def test_a_scenario_that_cannot_load_says_why_and_the_assistant_speaks(engine, tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("agent = RealtimeAgent(\n")
    async with BridgedCall(settings_for(engine, f"{broken}:agent"), rgb=None) as call:
        (error,) = [n for n in notes(call) if "broken.py" in n]
        assert "assistant scenario runs instead" in error
        assert call.bridge.snapshot().agent is None and call.bridge.snapshot().scenario == ""
        call.bridge.send_text("hello")
        assert await call.reply_after(0)
