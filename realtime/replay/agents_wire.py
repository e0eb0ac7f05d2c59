"""A replay's connection for a setup that runs a scenario: openai-agents' ``RealtimeSession`` over a
WebSocket by model, so the agents' tools, handoffs and guardrails run in the library exactly as in
a live call. The runner still speaks the provider's protocol: it sends raw client events through the
session's model and reads the provider's raw events, which the model hands every listener.

Nobody approves a tool during a replay: a tool that needs approval is refused, as an API call's is,
and the refusal is what the model is told.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from agents.realtime import RealtimeAgent, RealtimeRunner, RealtimeSession
from agents.realtime.config import RealtimeRunConfig
from agents.realtime.model import RealtimeModelConfig, RealtimeModelListener
from agents.realtime.model_events import RealtimeModelEvent
from agents.realtime.model_inputs import RealtimeModelSendRawMessage

from realtime.agent_link import GUARDRAIL_EVERY_CHARS, model_settings_from_session
from realtime.settings import Connection, Settings
from realtime.tools import NO_TOOLS

__all__ = ["AgentsWire", "WireClosed", "model_url"]

log = logging.getLogger(__name__)


class WireClosed(ConnectionError):
    """The agents' session ended: the provider closed the connection."""


_CLOSED: dict[str, Any] = {"type": "__closed__"}


def model_url(base_url: str, model: str) -> str:
    """``https://api.openai.com/v1`` -> ``wss://api.openai.com/v1/realtime?model=...``."""
    parts = urlsplit(base_url.rstrip("/"))
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, f"{parts.path}/realtime", urlencode({"model": model}), ""))


class _RawEvents(RealtimeModelListener):
    def __init__(self, events: asyncio.Queue[dict[str, Any]]) -> None:
        self._events = events

    async def on_event(self, event: RealtimeModelEvent) -> None:
        if event.type == "raw_server_event" and isinstance(event.data, dict):
            self._events.put_nowait(event.data)


class AgentsWire:
    """``send`` a client event, ``recv`` the next provider event (a dict); ``tool_outputs`` by tool name."""

    def __init__(self, session: RealtimeSession) -> None:
        self._session = session
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        session.model.add_listener(_RawEvents(self._events))
        self.tool_outputs: dict[str, str] = {}  # what the library's tools returned, by tool name (last)
        self._follow = asyncio.ensure_future(self._follow_session())

    @classmethod
    async def open(cls, agent: RealtimeAgent[Any], settings: Settings, conn: Connection) -> AgentsWire:
        from scenarios import ScenarioContext

        session_fields = settings.session_payload(registry=NO_TOOLS)
        config: RealtimeModelConfig = {
            "url": model_url(conn.base_url, settings.model),
            "api_key": conn.api_key,
            "initial_model_settings": {**model_settings_from_session(session_fields), "model_name": settings.model},
        }
        run_config: RealtimeRunConfig = {"guardrails_settings": {"debounce_text_length": GUARDRAIL_EVERY_CHARS}}
        context = ScenarioContext(backend=settings.backend, base_url=conn.base_url, api_key=conn.api_key)
        session = await RealtimeRunner(agent, config=run_config).run(context=context, model_config=config)
        wire = cls(session)
        await session.enter()
        return wire

    async def send(self, event: dict[str, Any]) -> None:
        other = {k: v for k, v in event.items() if k != "type"}
        await self._session.model.send_event(
            RealtimeModelSendRawMessage(message={"type": event["type"], "other_data": other})
        )

    async def recv(self) -> dict[str, Any]:
        event = await self._events.get()
        if event is _CLOSED:
            self._events.put_nowait(_CLOSED)  # and for every later read
            raise WireClosed("the realtime server closed the connection")
        return event

    async def _follow_session(self) -> None:
        try:
            async for event in self._session:
                if event.type == "tool_approval_required":
                    await self._session.reject_tool_call(event.call_id)
                elif event.type == "tool_end":
                    self.tool_outputs[event.tool.name] = str(event.output)
        except asyncio.CancelledError:
            raise
        except Exception:  # the session's own failure reaches the runner as the connection's
            log.debug("the replay's agent session stopped", exc_info=True)
        self._events.put_nowait(_CLOSED)

    async def close(self) -> None:
        self._follow.cancel()
        await asyncio.gather(self._follow, return_exceptions=True)
        await self._session.close()
