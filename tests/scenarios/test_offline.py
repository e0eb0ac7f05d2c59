"""The built-in scenarios through openai-agents' RealtimeRunner against the local engine (text replies).

What a user sees offline: each agent's ``Say:`` sentence opens its replies, handoffs switch it, a
refund waits for approval, and the guardrail trips on a blocked word.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from agents.realtime import RealtimeRunner, RealtimeSession

from scenarios import ScenarioContext, load_scenario
from tests.localengine.helpers import API_KEY

# The library checks output guardrails each time the reply grows by this many characters (default
# 100, which a short offline reply never reaches).
RUN_CONFIG: Any = {"model_settings": {"modalities": ["text"]}, "guardrails_settings": {"debounce_text_length": 1}}


@asynccontextmanager
async def scenario_session(engine: Any, name: str) -> AsyncIterator[RealtimeSession]:
    runner = RealtimeRunner(load_scenario(name), config=RUN_CONFIG)
    context = ScenarioContext(backend="local", base_url=engine.base_url, api_key=API_KEY)
    config: Any = {"url": f"{engine.ws_url}?model=gpt-realtime", "api_key": API_KEY}
    async with await runner.run(context=context, model_config=config) as session:
        yield session


async def turn(session: RealtimeSession, text: str, *, replies: int = 1, approve: bool = True) -> list[tuple[str, Any]]:
    """Send ``text``; collect notable events until ``replies`` text replies arrived."""
    seen: list[tuple[str, Any]] = []
    await session.send_message(text)

    async def consume() -> None:
        async for event in session:
            if event.type == "raw_model_event" and event.data.type == "raw_server_event":
                raw = event.data.data
                if raw.get("type") == "response.output_text.done":
                    seen.append(("reply", raw["text"]))
                    if sum(kind == "reply" for kind, _ in seen) == replies:
                        return
            elif event.type == "handoff":
                seen.append(("handoff", (event.from_agent.name, event.to_agent.name)))
            elif event.type == "tool_approval_required":
                seen.append(("approval", (event.tool.name, event.arguments)))
                if approve:
                    await session.approve_tool_call(event.call_id)
                else:
                    await session.reject_tool_call(event.call_id)
            elif event.type == "guardrail_tripped":
                seen.append(("guardrail", [r.output.output_info for r in event.guardrail_results]))
            elif event.type == "error":
                raise AssertionError(f"session error: {event.error}")

    await asyncio.wait_for(consume(), 30)
    return seen


def replies(seen: list[tuple[str, Any]]) -> list[str]:
    return [value for kind, value in seen if kind == "reply"]


async def test_front_desk_hands_off_and_back(engine: Any) -> None:
    async with scenario_session(engine, "front_desk") as session:
        assert replies(await turn(session, "hello")) == ["Front desk here. You said: hello"]
        seen = await turn(session, "transfer to billing")
        assert ("handoff", ("front_desk", "billing")) in seen
        assert replies(seen) == ['Billing here. transfer_to_billing returned {"assistant": "billing"}.']
        (invoice,) = replies(await turn(session, "look up invoice 1002"))
        assert invoice.startswith("Billing here. look_up_invoice returned") and '"status": "due"' in invoice
        seen = await turn(session, "transfer to front desk")
        assert ("handoff", ("billing", "front_desk")) in seen
        seen = await turn(session, "transfer to tech support")
        assert ("handoff", ("front_desk", "tech_support")) in seen
        (status,) = replies(await turn(session, "check service status tv"))
        assert status.startswith("Tech support here. check_service_status returned") and "outage" in status


async def test_supervisor_answers_offline(engine: Any) -> None:
    async with scenario_session(engine, "supervisor") as session:
        (answer,) = replies(await turn(session, "ask supervisor about a refund"))
    assert answer == f"Let me check that for you. ask_supervisor returned {supervisor_refund()}."


def supervisor_refund() -> str:
    from scenarios.supervisor import local_answer

    return local_answer("refund")


async def test_guarded_asks_approval_and_trips_the_guardrail(engine: Any) -> None:
    async with scenario_session(engine, "guarded") as session:
        seen = await turn(session, "issue refund 20")
        assert ("approval", ("issue_refund", '{"amount": 20}')) in seen
        assert replies(seen) == [
            'Careful agent here. issue_refund returned {"refunded": 20, "currency": "USD", "reference": "RF-00002000"}.'
        ]
        seen = await turn(session, "issue refund 5", approve=False)
        assert ("approval", ("issue_refund", '{"amount": 5}')) in seen
        assert "RF-" not in replies(seen)[0]
        seen = await turn(session, "I like banana bread", replies=2)
        assert ("guardrail", [{"rule": "blocked word", "match": "banana"}]) in seen
        assert replies(seen)[-1] == "Careful agent here. You said: guardrail triggered: no_blocked_content"
        seen = await turn(session, "call me on 555 123 4567")
        assert not [kind for kind, _ in seen if kind == "guardrail"]
