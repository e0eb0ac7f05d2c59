"""Replay a conversation's user turns against one setup, headless, through the official SDK.

One WebSocket session (``client.realtime.connect(model=...)``) per setup, configured by the setup's
own ``session`` (``Settings.session_payload``, the one rendering of it) with turn detection off: the
replay says when a turn ends. A typed turn goes in as one user message (its text, then its images as
``input_image``), a spoken turn as its recorded voice (``input_audio_buffer.append`` and ``commit``,
its images just before), or as its transcript when no voice was kept; then a ``response.create``; the runner reads the
provider's events through ``realtime.events`` until the turn's last response is done, running the
setup's tools as a live call does (a ``function_call_output`` and a new ``response.create`` per call).
It records the reply's text (transcript or text), its voice (pcm16 at 24 kHz, as a WAV), the time to
the first audio and to the first text from the turn's ``response.create``, tokens and cost, and the
tool calls. A failing turn is recorded with its error and the run goes on; a lost connection ends the
run and keeps what it got.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, cast

from openai import AsyncOpenAI
from openai.types.realtime import RealtimeSessionCreateRequestParam
from websockets.exceptions import ConnectionClosed

from realtime.errors import classify, describe_error
from realtime.events import (
    AudioDelta,
    FunctionArgsDone,
    OutputDelta,
    OutputDone,
    ProviderError,
    ResponseDone,
    decode_message,
    read_server_event,
)
from realtime.pricing import estimate_cost
from realtime.replay.agents_wire import AgentsWire, WireClosed
from realtime.replay.model import ReplayTurn, ReplyResult, SetupRun
from realtime.settings import Connection, Settings
from realtime.sideband_call import CallSetup, call_setup
from realtime.tools import ToolRegistry
from realtime.usage import UsageTotals
from realtime.voice_codec import wav_bytes

__all__ = ["OUTPUT_RATE", "TURN_TIMEOUT_S", "replay_setup"]

log = logging.getLogger(__name__)

OUTPUT_RATE = 24_000  # pcm16 mono, the Realtime API's audio format
TURN_TIMEOUT_S = 60.0
_AUDIO_CHUNK = OUTPUT_RATE * 2  # a second of pcm16 per input_audio_buffer.append


def _message(turn: ReplayTurn, detail: str, *, with_text: bool = True) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "input_text", "text": turn.text}] if with_text else []
    for jpeg in turn.images:
        url = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
        content.append({"type": "input_image", "image_url": url, "detail": detail})
    return {"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": content}}


class _Turn:
    """What one turn has produced so far (runner-local, mutable)."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.texts: dict[str, str] = {}  # item id -> text (done), in order of arrival
        self.partial: dict[str, str] = {}
        self.audio = bytearray()
        self.first_audio_ms: float | None = None
        self.first_text_ms: float | None = None
        self.usage = UsageTotals()
        self.tools: list[str] = []
        self.pending = 1  # responses asked for and not done
        self.error: str | None = None

    def since(self) -> float:
        return (time.monotonic() - self.started) * 1000

    def text(self) -> str:
        parts = {**self.partial, **self.texts}
        return " ".join(t.strip() for t in parts.values() if t.strip())


async def replay_setup(
    turns: Sequence[ReplayTurn],
    settings: Settings,
    tools: ToolRegistry,
    *,
    name: str,
    label: str,
    on_turn: Callable[[int], None] | None = None,
    turn_timeout_s: float = TURN_TIMEOUT_S,
) -> SetupRun:
    """Feed ``turns`` to one setup. Never raises for the provider's failures: they end up in the run."""
    began = time.monotonic()
    results: list[ReplyResult] = []
    run = SetupRun(name=name, label=label, voice=settings.voice, model=settings.model, backend=settings.backend)
    setup = call_setup(settings, tools)  # a scenario: its agents' instructions, and their tools in the library
    if setup.problem is not None:
        return _finish(run, results, began, setup.problem)
    driven = setup.settings.replace(turn_detection={"mode": "none"})  # each turn ends when the replay says
    secrets: tuple[str, ...] = ()
    try:
        conn = await asyncio.get_running_loop().run_in_executor(None, settings.connection)
        secrets = (conn.api_key,)
        async with _connect(driven, setup, conn) as wire:
            for turn in turns:
                results.append(await _replay_turn(wire, turn, driven, setup.tools, secrets, turn_timeout_s))
                if on_turn is not None:
                    on_turn(turn.index)
    except (ConnectionClosed, WireClosed):  # the provider went away mid-replay (a crash, a restart, the network)
        why = (
            f"The replay stopped after {len(results)} of {len(turns)} turns: the realtime server closed the connection."
        )
        return _finish(run, results, began, why)
    except Exception as exc:
        error = classify(exc, secrets=secrets, base_url=settings.base_url)
        why = f"The replay stopped after {len(results)} of {len(turns)} turns: {error.message}"
        return _finish(run, results, began, why)
    return _finish(run, results, began, None)


class _SdkWire:
    """The official SDK's WebSocket session, as the runner reads and writes it."""

    agents = False

    def __init__(self, ws: Any) -> None:
        self._ws = ws

    async def send(self, event: dict[str, Any]) -> None:
        await self._ws.send(event)

    async def recv(self) -> dict[str, Any]:
        return decode_message(await self._ws.recv_bytes())


@contextlib.asynccontextmanager
async def _connect(settings: Settings, setup: CallSetup, conn: Connection) -> AsyncIterator[_SdkWire | AgentsWire]:
    if setup.agent is not None:
        wire = await AgentsWire.open(setup.agent, settings, conn)
        try:
            yield wire
        finally:
            await wire.close()
        return
    client = AsyncOpenAI(base_url=conn.base_url, api_key=conn.api_key, max_retries=0, timeout=15.0)
    async with client, client.realtime.connect(model=settings.model) as ws:
        session = cast(RealtimeSessionCreateRequestParam, settings.session_payload(registry=setup.tools))
        await ws.send({"type": "session.update", "session": session})
        yield _SdkWire(ws)


def _finish(run: SetupRun, results: list[ReplyResult], began: float, error: str | None) -> SetupRun:
    from dataclasses import replace

    return replace(run, results=tuple(results), error=error, seconds=time.monotonic() - began)


async def _replay_turn(
    ws: _SdkWire | AgentsWire,
    turn: ReplayTurn,
    settings: Settings,
    tools: ToolRegistry,
    secrets: tuple[str, ...],
    timeout: float,
) -> ReplyResult:
    if turn.audio:
        if turn.images:
            await ws.send(_message(turn, settings.camera.detail, with_text=False))
        for at in range(0, len(turn.audio), _AUDIO_CHUNK):
            chunk = base64.b64encode(turn.audio[at : at + _AUDIO_CHUNK]).decode("ascii")
            await ws.send({"type": "input_audio_buffer.append", "audio": chunk})
        await ws.send({"type": "input_audio_buffer.commit"})
    else:
        await ws.send(_message(turn, settings.camera.detail))
    state = _Turn(time.monotonic())
    await ws.send({"type": "response.create"})
    try:
        await asyncio.wait_for(_read_until_done(ws, state, tools, secrets), timeout)
    except TimeoutError:
        state.error = f"No complete reply within {timeout:.0f} s."
    if isinstance(ws, AgentsWire):  # the library ran them: their outputs are known once the turn is over
        state.tools = [f"{line} -> {ws.tool_outputs.get(line.split('(', 1)[0], '')}" for line in state.tools]
    return ReplyResult(
        turn=turn.index,
        text=state.text(),
        audio_wav=wav_bytes(bytes(state.audio), OUTPUT_RATE) if state.audio else None,
        first_audio_ms=state.first_audio_ms,
        first_text_ms=state.first_text_ms,
        input_tokens=state.usage.input_tokens,
        output_tokens=state.usage.output_tokens,
        cost_usd=estimate_cost(state.usage, settings.model),
        tool_calls=tuple(state.tools),
        error=state.error,
    )


async def _read_until_done(
    ws: _SdkWire | AgentsWire, state: _Turn, tools: ToolRegistry, secrets: tuple[str, ...]
) -> None:
    while state.pending > 0:
        raw = await ws.recv()
        event = read_server_event(raw)
        if isinstance(event, AudioDelta) and event.data:
            if state.first_audio_ms is None:
                state.first_audio_ms = state.since()
            state.audio += base64.b64decode(event.data)
        elif isinstance(event, OutputDelta):
            if state.first_text_ms is None:
                state.first_text_ms = state.since()
            state.partial[event.item_id] = state.partial.get(event.item_id, "") + event.delta
        elif isinstance(event, OutputDone) and event.text is not None:
            state.texts[event.item_id] = event.text
        elif isinstance(event, FunctionArgsDone) and isinstance(ws, AgentsWire):
            state.tools.append(f"{event.name}({event.arguments})")  # the library runs it, then asks again
            state.pending += 1
        elif isinstance(event, FunctionArgsDone):
            output = await tools.run(event.name or "", event.arguments)
            state.tools.append(f"{event.name}({event.arguments}) -> {output}")
            item = {"type": "function_call_output", "call_id": event.call_id, "output": output}
            await ws.send({"type": "conversation.item.create", "item": item})
            await ws.send({"type": "response.create"})
            state.pending += 1
        elif isinstance(event, ResponseDone):
            state.usage = state.usage + event.response.usage
            state.pending -= 1
            if event.response.status == "failed":
                state.error = describe_error(event.response.error, secrets=secrets).message
        elif isinstance(event, ProviderError):
            state.error = describe_error(event.error, secrets=secrets).message
            log.info("replay turn error: %s", json.dumps(raw)[:300])
            if state.first_text_ms is None and state.first_audio_ms is None:
                return  # nothing is coming for this turn
