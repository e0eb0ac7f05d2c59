"""The app's default assistant as a scenario: today's instructions and the three demo tools.

The tools are the functions of ``realtime/tools.py`` wrapped with ``function_tool``, so the model
sees exactly the names and parameter schemas it saw before scenarios existed.
"""

from __future__ import annotations

from agents import function_tool
from agents.realtime import RealtimeAgent

from realtime.settings import DEFAULT_INSTRUCTIONS
from realtime.tools import delayed_add, echo_upper, get_datetime
from scenarios import ScenarioContext

agent: RealtimeAgent[ScenarioContext] = RealtimeAgent(
    name="assistant",
    instructions=DEFAULT_INSTRUCTIONS,
    tools=[function_tool(get_datetime), function_tool(delayed_add), function_tool(echo_upper)],
)
