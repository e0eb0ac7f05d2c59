"""A call another client placed through the studio (the SDP proxy), watched and served over its sideband.

The client's browser or app holds the media; the studio created the call with its own key and keeps
the call's sideband WebSocket (``client.realtime.connect(call_id=...)`` through the official SDK). On
it the studio sees every event, runs the configured tools (a ``function_call_output`` and a
``response.create`` for each call the model makes), or, with a scenario configured, lets its
``openai-agents`` RealtimeAgents run the call (``realtime.agent_link``: their tools, handoffs and
guardrails; a tool that needs approval is denied, since nobody in the studio is watching an API call
to approve it), and forwards the client's camera frames as ``input_image`` items. It keeps what an
in-app call keeps for the pages (the event log, the transcript, turn metrics and cost, the images
sent) and tells the same listeners (History).

The call's state is the same fold as an in-app call's (``realtime.call_state``), driven by the
sideband: it is "connected" once the sideband is up and "closed" when it ends. The studio cannot
reconnect another client's media, so a lost sideband ends the call. Everything runs on the shared
bridge loop (``realtime.loop``); the public methods may be called from any thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from openai import AsyncOpenAI

from realtime.agent_link import (
    AgentActive,
    AgentEvent,
    AgentFailed,
    AgentLink,
    ApprovalNeeded,
    GuardrailTripped,
    HandedOff,
    model_settings_from_session,
)
from realtime.bridge import BridgeSnapshot
from realtime.call_state import (
    CallCreated,
    CallState,
    Failure,
    Lifecycle,
    Note,
    RunTool,
    Signal,
    TellEnded,
    transition,
)
from realtime.errors import classify
from realtime.eventlog import EventLog
from realtime.events import ServerEvent, Unreadable, decode_message, read_client_event, read_server_event
from realtime.frames import EncodedImage
from realtime.image_log import ImageLog, SentImage
from realtime.loop import call_soon, run_coro
from realtime.metrics import TurnClock, TurnMetrics
from realtime.pricing import estimate_cost
from realtime.rtc_stats import RtcStats
from realtime.settings import Connection, Settings
from realtime.tools import NO_TOOLS, ToolRegistry
from realtime.transcript import Transcript
from realtime.updates import BridgeUpdate, Listener

if TYPE_CHECKING:
    from agents.realtime import RealtimeAgent

__all__ = ["CallSetup", "SidebandCall", "call_setup"]

log = logging.getLogger(__name__)

HANGUP_TIMEOUT_S = 3.0
NOT_APPROVED_HERE = "{tool} needs approval, and nobody approves API calls in the studio: it was not run."


@dataclass(frozen=True)
class CallSetup:
    """What a call placed for a client is made from: its settings (with a scenario's instructions), the
    tools the studio runs for it (none when agents run it), and the scenario's starting agent."""

    settings: Settings
    tools: ToolRegistry
    agent: RealtimeAgent[Any] | None = None
    problem: str | None = None  # the configured scenario could not be loaded: the assistant runs instead


def call_setup(settings: Settings, tools: ToolRegistry) -> CallSetup:
    from scenarios import DEFAULT_SCENARIO, ScenarioError, load_scenario

    if settings.scenario == DEFAULT_SCENARIO:
        return CallSetup(settings, tools)
    try:
        agent = load_scenario(settings.scenario)
    except ScenarioError as exc:
        return CallSetup(settings, tools, problem=f"{exc} The {DEFAULT_SCENARIO} scenario runs instead.")
    if isinstance(agent.instructions, str) and agent.instructions.strip():
        settings = settings.replace(instructions=agent.instructions)
    return CallSetup(settings, NO_TOOLS, agent)


class SidebandCall:
    """One call placed for another client (see module docstring). ``source`` says who placed it."""

    def __init__(self, call_id: str, setup: CallSetup, connection: Connection, *, source: str = "api") -> None:
        self.call_id = call_id
        self.settings = setup.settings
        self.source = source
        self.started_at = time.time()
        self.ended_at: float | None = None
        self.events = EventLog()
        self.transcript = Transcript()
        self.image_log = ImageLog()
        self._connection = connection
        self._tools = setup.tools
        self._agent = setup.agent
        self._link: AgentLink | None = None
        self.agent_name: str | None = setup.agent.name if setup.agent is not None else None
        # The agents' session.update (their instructions, tools, handoffs) reaches the call once they have
        # joined, about a second after it is up; what the client says before that has the plain session.
        self.agents_joined = False
        self._clock = TurnClock()
        self._turns: tuple[TurnMetrics, ...] = ()
        self._listeners: list[Listener] = []
        self._call = CallState()
        self._sideband: Any = None  # the SDK's AsyncRealtimeConnection, while it is open
        self._client: AsyncOpenAI | None = None
        self._task: concurrent.futures.Future[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._hung_up = False
        self._step(Lifecycle("connect", at=time.monotonic()))
        self._step(CallCreated(call_id))
        if setup.problem:
            self._notify(self.transcript.add_system_note(setup.problem, role="error"))

    # ------------------------------------------------------------------ public API (any thread)

    def start(self) -> None:
        """Attach the sideband in the background. Returns at once."""
        if self._task is None:
            self._task = run_coro(self._run())

    @property
    def running(self) -> bool:
        """Counts against the server's limit (``realtime.admission``) while live."""
        return self.live

    def add_listener(self, fn: Listener) -> None:
        self._listeners.append(fn)

    def send_image(self, image: EncodedImage) -> None:
        """Forward a frame the client posted: an ``input_image`` item (it answers nothing by itself)."""
        call_soon(self._send_image, image)

    def hangup(self) -> concurrent.futures.Future[None]:
        """Hang the call up at the provider and let the sideband go. Idempotent."""
        return run_coro(self._hangup())

    @property
    def state(self) -> str:
        return self._call.state

    @property
    def live(self) -> bool:
        return self._call.state in ("connecting", "connected")

    def snapshot(self) -> BridgeSnapshot:
        call, usage = self._call, self._clock.usage
        return BridgeSnapshot(
            state=call.state,
            activity=call.activity,
            error=call.error,
            transcript=self.transcript.snapshot(),
            turns=self._turns,
            usage=usage,
            cost_usd=estimate_cost(usage, self.settings.model),
            rtc=RtcStats(),
            call_id=self.call_id,
            scenario=self.settings.scenario if self._agent is not None else "",
            agent=self.agent_name,
            sent_images=self.image_log.snapshot(),
        )

    # ------------------------------------------------------------------ the fold (loop)

    def _step(self, signal: Signal) -> None:
        self._call, effects = transition(self._call, signal, secrets=self._secrets())
        for effect in effects:
            if isinstance(effect, RunTool):
                if self._agent is None:  # with a scenario, its agents' tools run in the library, once
                    self._spawn(self._run_tool(effect))
            elif isinstance(effect, TellEnded):
                self.ended_at = time.time()
                self._notify(effect.ended)
            elif isinstance(effect, Note):
                self._notify(self.transcript.add_system_note(effect.text, role=effect.role))
            # Act, Reconnect, Restore, ForgetImage: the client holds the media; nothing to do here

    def _secrets(self) -> tuple[str, ...]:
        return (self._connection.api_key,) if self._connection.api_key else ()

    def _notify(self, update: BridgeUpdate) -> None:
        for fn in list(self._listeners):
            try:
                fn(update)
            except Exception:
                log.exception("sideband call listener failed")

    def _feed(self, event: ServerEvent, now: float) -> None:
        for item in self.transcript.apply(event):
            self._notify(item)
        for metrics in self._clock.feed(event, now):
            self._turns = (*self._turns, metrics)
            self._notify(metrics)

    # ------------------------------------------------------------------ IO (loop)

    async def _run(self) -> None:
        conn = self._connection
        self._client = AsyncOpenAI(base_url=conn.base_url, api_key=conn.api_key, max_retries=0, timeout=15.0)
        try:
            async with self._client.realtime.connect(call_id=self.call_id) as sideband:
                self._sideband = sideband
                self._step(Lifecycle("channel_opened", at=time.monotonic()))
                if self._agent is not None:
                    self._spawn(self._attach_agents(self._agent))
                while True:
                    message = await sideband.recv_bytes()
                    self._on_message(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not self._call.closing and self._call.state == "connecting":
                error = classify(exc, secrets=self._secrets(), base_url=self._connection.base_url)
                self._step(Failure(error, "setup", at=time.monotonic()))
            log.info("sideband of %s ended: %s", self.call_id, type(exc).__name__)
        finally:
            self._sideband = None
            link, self._link = self._link, None
            if link is not None:
                await link.close()
            self._step(Lifecycle("close_requested", at=time.monotonic()))
            self._step(Lifecycle("closed", at=time.monotonic()))
            await self._close_client()

    def _on_message(self, message: str | bytes) -> None:
        try:
            raw = decode_message(message)
        except ValueError as exc:
            self._notify(self.transcript.add_system_note(f"Ignored a malformed server event: {exc}", role="error"))
            return
        self.events.record("server", raw)
        event = read_server_event(raw)
        if isinstance(event, Unreadable):
            log.debug("unreadable server event %s: %s", event.type, event.reason)
        try:
            self._feed(event, time.monotonic())
            self._step(event)
        except Exception as exc:  # one bad event must not end the call
            log.exception("error handling server event %s", raw.get("type"))
            self._notify(
                self.transcript.add_system_note(f"Could not handle server event {raw.get('type')}: {exc}", role="error")
            )

    def _send(self, event: dict[str, Any]) -> None:
        sideband = self._sideband
        if sideband is None:
            return
        self.events.record("client", event)
        created = read_client_event(event)
        now = time.monotonic()
        if not isinstance(created, Unreadable):
            for item in self.transcript.apply(created):
                self._notify(item)
            self._clock.feed(created, now)
        self._spawn(sideband.send(event))

    def _send_image(self, image: EncodedImage) -> None:
        if self._sideband is None:
            return
        self._send(image.item_event)
        item_id = image.item_id or str(image.item_event["item"].get("id", ""))
        detail = str(image.item_event["item"]["content"][0].get("detail", "auto"))
        self.image_log.sent(
            SentImage(
                item_id=item_id,
                at=time.time(),
                source="client",
                width=image.width,
                height=image.height,
                size_bytes=len(image.jpeg),
                detail=detail,
                thumbnail=image.thumbnail,
            )
        )

    # ------------------------------------------------------------------ a scenario's agents (loop)

    async def _attach_agents(self, agent: RealtimeAgent[Any]) -> None:
        from scenarios import ScenarioContext

        conn = self._connection
        link = AgentLink(agent, self._on_agent_event, secrets=self._secrets())
        self._link = link
        context = ScenarioContext(backend=self.settings.backend, base_url=conn.base_url, api_key=conn.api_key)
        model_settings = model_settings_from_session(self.settings.session_payload(registry=NO_TOOLS))
        try:
            await link.attach(self.call_id, conn.base_url, conn.api_key, model_settings, context)
            self.agents_joined = True
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = classify(exc, secrets=self._secrets(), base_url=conn.base_url)
            note = f"The scenario's agents could not join the call: {error.message}"
            self._notify(self.transcript.add_system_note(note, role="error"))

    def _on_agent_event(self, event: AgentEvent) -> None:
        self.events.record("agent", {"type": f"agent.{type(event).__name__}", **event.__dict__})
        if isinstance(event, AgentActive):
            self.agent_name = event.name
        elif isinstance(event, HandedOff):
            self.agent_name = event.target
            self._notify(self.transcript.add_system_note(f"{event.source} \u2192 {event.target}"))
        elif isinstance(event, GuardrailTripped):
            cut = self.transcript.cut_last_reply()
            if cut is not None:
                self._notify(cut)
            names = ", ".join(event.guardrails)
            self._notify(self.transcript.add_system_note(f"Guardrail {names} stopped the reply.", role="error"))
        elif isinstance(event, ApprovalNeeded):
            self._notify(self.transcript.add_system_note(NOT_APPROVED_HERE.format(tool=event.tool), role="error"))
            if self._link is not None:
                self._spawn(self._link.deny(event.call_id))
        elif isinstance(event, AgentFailed):
            self._notify(self.transcript.add_system_note(event.message, role="error"))

    async def _run_tool(self, call: RunTool) -> None:
        output = await self._tools.run(call.name, call.arguments)
        item = {"type": "function_call_output", "call_id": call.call_id, "output": output}
        self._send({"type": "conversation.item.create", "item": item})
        self._send({"type": "response.create"})

    async def _hangup(self) -> None:
        if self._hung_up:
            return
        self._hung_up = True
        self._step(Lifecycle("close_requested", at=time.monotonic()))
        client = self._client or AsyncOpenAI(
            base_url=self._connection.base_url, api_key=self._connection.api_key, max_retries=0
        )
        try:
            await client.realtime.calls.hangup(self.call_id, timeout=HANGUP_TIMEOUT_S)
        except Exception as exc:  # the call may already be gone
            log.info("hangup of %s: %s", self.call_id, type(exc).__name__)
        if self._task is not None and not self._task.done():
            self._task.cancel()
        elif self._task is None:
            self._step(Lifecycle("closed", at=time.monotonic()))
        if client is not self._client:
            await client.close()

    async def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.close()
            except Exception:
                log.debug("closing the SDK client failed", exc_info=True)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
