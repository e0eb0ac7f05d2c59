"""A scenario's agents on one call: an `openai-agents` RealtimeSession attached by ``call_id``.

Media and the transcript stay with the Bridge (WebRTC); the agent logic runs on the server over the
call's sideband WebSocket (``/v1/realtime?call_id=...``, derived from the configured base URL, so it
works against OpenAI and the local engine alike), as OpenAI recommends for a server that keeps
control of tools. The library executes the tools, hands off between agents, runs the output
guardrails and holds tools that need approval; this module only attaches it to a call and turns
what it reports into typed `AgentEvent` values for the Bridge. Nothing here executes a tool.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

from agents.realtime import RealtimeAgent, RealtimeRunner, RealtimeSession
from agents.realtime.config import RealtimeRunConfig, RealtimeSessionModelSettings
from agents.realtime.model import RealtimeModelConfig

from realtime.errors import redact

__all__ = [
    "AgentActive",
    "AgentEvent",
    "AgentFailed",
    "AgentLink",
    "ApprovalNeeded",
    "GuardrailTripped",
    "HandedOff",
    "ToolFinished",
    "model_settings_from_session",
    "sideband_url",
]

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 2.0
# The library checks output guardrails each time the reply grows by this many characters, and not
# after the last step: its default (100) let short replies, and every reply's tail, through.
GUARDRAIL_EVERY_CHARS = 1


@dataclass(frozen=True)
class AgentActive:
    """The agent now speaking for the scenario (its ``name``)."""

    name: str


@dataclass(frozen=True)
class HandedOff:
    source: str
    target: str


@dataclass(frozen=True)
class GuardrailTripped:
    """Output guardrails stopped a reply: which ones, what they said, and the reply so far."""

    guardrails: tuple[str, ...]
    details: tuple[str, ...]  # each guardrail's output info, as text
    reply: str


@dataclass(frozen=True)
class ApprovalNeeded:
    """A tool waits for the user: Approve runs it, Deny answers the model with a refusal."""

    call_id: str
    tool: str
    arguments: str
    agent: str


@dataclass(frozen=True)
class ToolFinished:
    tool: str
    output: str
    agent: str


@dataclass(frozen=True)
class AgentFailed:
    message: str


AgentEvent = AgentActive | HandedOff | GuardrailTripped | ApprovalNeeded | ToolFinished | AgentFailed


def sideband_url(base_url: str, call_id: str) -> str:
    """``https://api.openai.com/v1`` -> ``wss://api.openai.com/v1/realtime?call_id=...``."""
    parts = urlsplit(base_url.rstrip("/"))
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, f"{parts.path}/realtime", f"call_id={call_id}", ""))


# What the library may carry over from the app's own `session` (Settings.session_payload, the one
# rendering of it): without these its session.update would put its defaults (voice, turn taking,
# transcription) over the user's. Instructions, tools and handoffs are the agent's.
_CARRIED = ("audio", "max_output_tokens", "tool_choice", "parallel_tool_calls", "reasoning", "prompt", "truncation")


def model_settings_from_session(session: Mapping[str, Any]) -> RealtimeSessionModelSettings:
    settings: dict[str, Any] = {k: session[k] for k in _CARRIED if session.get(k) is not None}  # None: unset
    if "output_modalities" in session:
        settings["output_modalities"] = list(session["output_modalities"])
    return cast(RealtimeSessionModelSettings, settings)


def _describe(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    return "" if value is None else str(value)


class AgentLink:
    """The scenario's RealtimeSession on one call (see module docstring). Runs on the bridge loop."""

    def __init__(
        self, agent: RealtimeAgent[Any], on_event: Callable[[AgentEvent], None], secrets: tuple[str, ...] = ()
    ) -> None:
        self.agent = agent  # the agent to start (or resume) with: the active one after a handoff
        self._on_event = on_event
        self._secrets = secrets
        self._session: RealtimeSession | None = None
        self._task: asyncio.Task[None] | None = None

    async def attach(
        self, call_id: str, base_url: str, api_key: str, model_settings: RealtimeSessionModelSettings, context: Any
    ) -> None:
        """Connect the sideband and start following the session's events. Raises what the library raises."""
        config: RealtimeModelConfig = {
            "call_id": call_id,
            "url": sideband_url(base_url, call_id),
            "api_key": api_key,
            "initial_model_settings": model_settings,
        }
        run_config: RealtimeRunConfig = {"guardrails_settings": {"debounce_text_length": GUARDRAIL_EVERY_CHARS}}
        session = await RealtimeRunner(self.agent, config=run_config).run(context=context, model_config=config)
        await session.enter()
        self._session = session
        self._task = asyncio.ensure_future(self._follow(session))

    async def _follow(self, session: RealtimeSession) -> None:
        try:
            async for event in session:
                self._handle(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the library's stream ended in an error: say so, the call goes on
            log.warning("the agent session stopped: %s", type(exc).__name__, exc_info=True)
            self._on_event(AgentFailed(redact(f"The agent session stopped: {exc}", self._secrets)))

    def _handle(self, event: Any) -> None:
        kind = getattr(event, "type", None)
        if kind == "agent_start":
            self.agent = event.agent
            self._on_event(AgentActive(event.agent.name))
        elif kind == "handoff":
            self.agent = event.to_agent
            self._on_event(HandedOff(event.from_agent.name, event.to_agent.name))
        elif kind == "guardrail_tripped":
            results = event.guardrail_results
            self._on_event(
                GuardrailTripped(
                    tuple(r.guardrail.get_name() for r in results),
                    tuple(_describe(r.output.output_info) for r in results),
                    event.message,
                )
            )
        elif kind == "tool_approval_required":
            self._on_event(ApprovalNeeded(event.call_id, event.tool.name, event.arguments, event.agent.name))
        elif kind == "tool_end":
            self._on_event(ToolFinished(event.tool.name, str(event.output), event.agent.name))
        elif kind == "error":
            self._on_event(AgentFailed(redact(f"The agent session reported: {event.error}", self._secrets)))

    async def approve(self, call_id: str) -> None:
        if self._session is not None:
            await self._session.approve_tool_call(call_id)

    async def deny(self, call_id: str) -> None:
        if self._session is not None:
            await self._session.reject_tool_call(call_id)

    async def close(self) -> None:
        """Close the sideband (not the call). Idempotent; waits at most ``CLOSE_TIMEOUT_S``."""
        session, self._session = self._session, None
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        try:
            if session is not None:
                await asyncio.wait_for(session.close(), CLOSE_TIMEOUT_S)
        except Exception:
            log.debug("closing the agent session failed", exc_info=True)
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
