"""openai-agents' RealtimeRunner/RealtimeAgent with a function_tool, against the local engine.

Over WebSocket by ``model`` and by ``call_id`` (a sideband to a live WebRTC call). The agent's
tool must run and its result must be in the reply. Every raw server event is validated.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agents import function_tool
from agents.realtime import RealtimeAgent, RealtimeModelConfig, RealtimeRunner

from tests.localengine.helpers import API_KEY, text_call, validated, wait_until

CALLS: list[tuple[int, int]] = []


@function_tool
def multiply_numbers(a: int, b: int) -> str:
    """Multiply two whole numbers."""
    CALLS.append((a, b))
    return f"The product is {a * b}."


def _runner() -> RealtimeRunner:
    agent = RealtimeAgent(name="calculator", instructions="Use your tools.", tools=[multiply_numbers])
    return RealtimeRunner(agent, config={"model_settings": {"modalities": ["text"]}})


async def _tool_turn(session: Any, text: str) -> tuple[list[Any], str]:
    """Send ``text``; collect session events until the tool ran and a text reply followed it."""
    seen: list[Any] = []
    replies: list[str] = []
    tool_done = False
    await session.send_message(text)

    async def consume() -> None:
        nonlocal tool_done
        async for event in session:
            seen.append(event)
            if event.type == "raw_model_event" and event.data.type == "raw_server_event":
                raw = validated(event.data.data)
                if tool_done and raw["type"] == "response.output_text.done":
                    replies.append(raw["text"])
                    return
            if event.type == "tool_end":
                tool_done = True
            if event.type == "error":
                raise AssertionError(f"session error: {event.error}")

    await asyncio.wait_for(consume(), 30)
    return seen, replies[0]


async def test_agent_over_websocket_by_model(engine):
    CALLS.clear()
    url = f"{engine.ws_url}?model=gpt-realtime"
    async with await _runner().run(model_config={"url": url, "api_key": API_KEY}) as session:
        seen, reply = await _tool_turn(session, "please multiply numbers 6 and 7")
    assert CALLS == [(6, 7)]
    ends = [e for e in seen if e.type == "tool_end"]
    assert ends and ends[0].tool.name == "multiply_numbers" and ends[0].output == "The product is 42."
    assert "The product is 42." in reply


async def test_agent_over_sideband_to_a_webrtc_call(engine):
    CALLS.clear()
    async with text_call(engine.base_url) as (_, peer):
        url = f"{engine.ws_url}?call_id={peer.call_id}"
        config: RealtimeModelConfig = {"url": url, "api_key": API_KEY, "call_id": peer.call_id}
        async with await _runner().run(model_config=config) as session:
            _, reply = await _tool_turn(session, "multiply numbers 12 and 11 for me")
            assert CALLS == [(12, 11)]
            assert "The product is 132." in reply
            # The browser side of the call saw the same reply on its data channel.
            await wait_until(
                lambda: any(e["type"] == "response.output_text.done" and "132" in e["text"] for e in peer.events),
                10,
                "the reply on the call's data channel",
            )
    await wait_until(lambda: engine.stats().calls == 0, 10, "the call to end")
