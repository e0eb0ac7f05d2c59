"""A seeded fuzz run against the engine in a child process (``python -m localengine --port 0``).

Several WebSocket connections get malformed events made by a seeded ``random.Random`` from valid GA
events (wrong types, unknown fields, deep nesting, huge strings, non-objects, invalid JSON, invalid
UTF-8), and the HTTP side gets bad SDP offers, while a bystander session keeps asking for replies.

It asserts: no connection is closed without a code and reason that say why; no traceback in the
engine's log (its stderr at ``--log-level info``: every ``localengine`` logger and uvicorn's); the
bystander answered every time; the engine's peak RSS (``VmHWM`` of the child) stays under 300 MB.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
import websockets
from openai import AsyncOpenAI

from tests.localengine.helpers import API_KEY, EventStream, reply_text, user_text, wait_until

SEED = 20261130
CONNECTIONS = 6
EVENTS_PER_CONNECTION = 100  # 600 malformed events in all
MAX_RSS_MB = 300
BYSTANDER_EVERY = 25  # a bystander turn after this many fuzz events (per connection 0)

VALID_EVENTS: list[dict[str, Any]] = [
    {"type": "session.update", "session": {"type": "realtime", "instructions": "hi", "output_modalities": ["text"]}},
    {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "audio": {
                "input": {"turn_detection": {"type": "server_vad", "threshold": 0.5}, "transcription": None},
                "output": {"voice": "alloy", "speed": 1.0},
            },
            "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
            "tool_choice": "auto",
        },
    },
    {
        "type": "conversation.item.create",
        "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]},
    },
    {"type": "conversation.item.create", "item": {"type": "function_call_output", "call_id": "c1", "output": "{}"}},
    {"type": "conversation.item.delete", "item_id": "item_1"},
    {"type": "conversation.item.retrieve", "item_id": "item_1"},
    {"type": "conversation.item.truncate", "item_id": "item_1", "content_index": 0, "audio_end_ms": 10},
    {"type": "input_audio_buffer.append", "audio": "AAAA"},
    {"type": "input_audio_buffer.commit"},
    {"type": "input_audio_buffer.clear"},
    {"type": "response.create", "response": {"output_modalities": ["text"], "max_output_tokens": 50}},
    {"type": "response.cancel"},
]

_ODD_VALUES: list[Any] = [5, -1, 1.5e300, "x", "", True, None, [], [1, "a"], {}, {"k": {"k": []}}]


def _paths(node: Any, here: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield here
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*here, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*here, i))


def _set(root: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    node = root
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return root


def _get(root: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        root = root[key]
    return root


def _nested(depth: int, rng: random.Random) -> str:
    """JSON text nested ``depth`` levels deep (built as text: json.dumps would recurse)."""
    if rng.random() < 0.5:
        return "[" * depth + "1" + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


def malformed(rng: random.Random) -> tuple[str, str | bytes]:
    """(mutation name, raw message) for one malformed event."""
    event = copy.deepcopy(rng.choice(VALID_EVENTS))
    event["event_id"] = f"fz_{rng.randrange(10**9)}"
    kind = rng.choice(
        [
            "wrong_type",
            "wrong_type",
            "unknown_field",
            "unknown_field",
            "non_object",
            "deep",
            "huge",
            "bad_json",
            "binary",
        ]
    )
    paths = [p for p in _paths(event) if p and p[0] not in ("type", "event_id")] or [("type",)]
    if kind == "wrong_type":
        _set(event, rng.choice(paths), copy.deepcopy(rng.choice(_ODD_VALUES)))
    elif kind == "unknown_field":
        dicts = [p for p in _paths(event) if isinstance(_get(event, p), dict)]
        _get(event, rng.choice(dicts))[rng.choice(["instructionz", "voise", "extra", "x" * 40])] = rng.choice(
            _ODD_VALUES
        )
    elif kind == "non_object":
        dicts = [p for p in _paths(event) if p and isinstance(_get(event, p), dict)] or [("session",)]
        _set(event, rng.choice(dicts), rng.choice([5, "x", [], True]))
    elif kind == "deep":
        depth = rng.choice([70, 200, 500, 5000, 100_000])
        text = json.dumps(event)
        return kind, text[:-1] + f', "session": {_nested(depth, rng)}' + "}"
    elif kind == "huge":
        size = rng.choice([100_000, 500_000, 900_000, 1_100_000])
        _set(event, rng.choice(paths), "A" * size)
    elif kind == "bad_json":
        text = json.dumps(event)
        cut = rng.randrange(1, len(text))
        return kind, rng.choice([text[:cut], text[:cut] + "\x00garbage", "{" + text, text.replace('"', "'")])
    elif kind == "binary":
        data = json.dumps(event).encode()
        pos = rng.randrange(len(data))
        return kind, data[:pos] + bytes([rng.choice([0xFF, 0xC0, 0x80])]) + data[pos:]
    return kind, json.dumps(event)


@dataclass
class EngineProcess:
    proc: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://", 1) + "/realtime"

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmHWM")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def child_engine(tmp_path: Path) -> Iterator[EngineProcess]:
    log_path = tmp_path / "engine.log"
    env = {k: v for k, v in os.environ.items() if k != "LOCALENGINE_API_KEYS"}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "localengine", "--port", "0", "--log-level", "info", "--exit-with-stdin"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
            cwd=Path(__file__).resolve().parents[2],
        )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode().strip()
        assert line.startswith("localengine listening on "), line
        yield EngineProcess(proc, line.removeprefix("localengine listening on "), log_path)
    finally:
        assert proc.stdin is not None
        proc.stdin.close()  # --exit-with-stdin: end of input stops it cleanly
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@dataclass
class FuzzConnection:
    sent: int = 0
    received: int = 0
    errors: int = 0
    closed_by_server: tuple[int, str] | None = None
    kinds: dict[str, int] = field(default_factory=dict)


# Close codes whose meaning says why on its own (RFC 6455): invalid frame payload data, message too big.
SELF_EXPLAINING = {1007, 1009}


async def _fuzz_connection(
    engine: EngineProcess, rng: random.Random, stats: FuzzConnection, turn: asyncio.Queue[int] | None
) -> None:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with websockets.connect(
        engine.ws_url + "?model=gpt-realtime", additional_headers=headers, max_size=None
    ) as ws:

        async def read() -> None:
            try:
                async for message in ws:
                    stats.received += 1
                    if json.loads(message)["type"] == "error":
                        stats.errors += 1
            except websockets.exceptions.ConnectionClosed:
                pass

        reader = asyncio.create_task(read())
        await ws.send(json.dumps(VALID_EVENTS[0]))  # text replies: the fuzz is about input, not synthesis
        try:
            for i in range(EVENTS_PER_CONNECTION):
                kind, raw = malformed(rng)
                stats.kinds[kind] = stats.kinds.get(kind, 0) + 1
                await ws.send(raw)
                stats.sent += 1
                if turn is not None and (i + 1) % BYSTANDER_EVERY == 0:
                    await turn.put(i)
                    await turn.join()  # the bystander answered before the fuzz goes on
                else:
                    await asyncio.sleep(0)
            # Last: a text frame that is not UTF-8 (the server must close with 1007).
            await ws.send(b'{"type": "\xff"}', text=True)
            await asyncio.wait_for(ws.wait_closed(), 10)
        except websockets.exceptions.ConnectionClosed:
            pass
        await asyncio.wait_for(reader, 10)
        rcvd = ws.protocol.close_rcvd
        if rcvd is not None:
            stats.closed_by_server = (rcvd.code, rcvd.reason)


async def test_seeded_fuzz_keeps_the_engine_up_bounded_and_quiet(child_engine: EngineProcess):
    started = time.monotonic()
    rngs = [random.Random(SEED + n) for n in range(CONNECTIONS)]
    stats = [FuzzConnection() for _ in range(CONNECTIONS)]
    turn: asyncio.Queue[int] = asyncio.Queue()
    answered: list[str] = []

    async with AsyncOpenAI(base_url=child_engine.base_url, api_key=API_KEY) as client:
        async with client.realtime.connect(model="gpt-realtime") as bystander:
            stream = EventStream(bystander)
            assert (await stream.next())["type"] == "session.created"
            await bystander.session.update(session={"type": "realtime", "output_modalities": ["text"]})
            await stream.until("session.updated")

            async def bystander_turns() -> None:
                while True:
                    n = await turn.get()
                    await bystander.conversation.item.create(item=user_text(f"turn {n}"))
                    await bystander.response.create()
                    answered.append(reply_text(await stream.until("response.done", timeout=20)))
                    turn.task_done()

            turns = asyncio.create_task(bystander_turns())
            try:
                await asyncio.gather(
                    *(
                        _fuzz_connection(child_engine, rngs[n], stats[n], turn if n == 0 else None)
                        for n in range(CONNECTIONS)
                    )
                )
                # Bad SDP offers, the one without a fingerprint among them: 400 invalid_offer each.
                offers = _bad_offers()
                for offer in offers:
                    r = httpx2.post(
                        child_engine.base_url + "/realtime/calls",
                        content=offer.encode(),
                        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/sdp"},
                    )
                    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_offer", r.text
                for n in range(3):
                    await turn.put(-n - 1)
                    await turn.join()
            finally:
                turns.cancel()
                await asyncio.gather(turns, return_exceptions=True)

        def health() -> dict[str, Any]:
            result: dict[str, Any] = httpx2.get(child_engine.base_url.removesuffix("/v1") + "/healthz").json()
            return result

        await wait_until(lambda: health()["calls"] == 0 and health()["websockets"] == 0, 10, "everything released")

    elapsed = time.monotonic() - started
    sent = sum(s.sent for s in stats)
    peak = child_engine.peak_rss_mb()
    log = child_engine.log()
    kinds: dict[str, int] = {}
    for s in stats:
        for k, v in s.kinds.items():
            kinds[k] = kinds.get(k, 0) + v
    print(
        f"\nfuzz: {sent} malformed events + {CONNECTIONS} invalid-UTF-8 frames over {CONNECTIONS} connections, "
        f"{len(offers)} bad offers, {len(answered)} bystander turns, {elapsed:.1f} s, engine peak RSS {peak:.0f} MB, "
        f"errors {sum(s.errors for s in stats)}, mutations {kinds}"
    )

    assert sent >= 500
    assert len(answered) == sent // CONNECTIONS // BYSTANDER_EVERY + 3
    assert all(text.startswith("You said: turn") for text in answered), answered
    for s in stats:
        assert s.closed_by_server is not None, "the invalid UTF-8 frame must close the connection"
        code, reason = s.closed_by_server
        assert code in SELF_EXPLAINING or (code != 1000 and reason), (code, reason)
        assert s.errors > 0
    assert "Invalid UTF-8" in log  # the log is captured (uvicorn reports each 1007 in one line)
    assert "Traceback" not in log, log[-3000:]
    assert peak < MAX_RSS_MB, f"engine peak RSS {peak:.0f} MB"
    assert elapsed < 60


def _bad_offers() -> list[str]:
    ice = "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
    fingerprint = "a=fingerprint:sha-256 " + ":".join(["AB"] * 32) + "\r\na=setup:actpass\r\n"
    head = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
    audio = (
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\na=rtpmap:111 opus/48000/2\r\n"
    )
    return [
        "",
        "not sdp at all",
        "v=0\r\nm=audio\r\n",
        head + audio + ice,  # no fingerprint
        head + audio + fingerprint,  # no ICE
        head + "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n" + ice + fingerprint,
        "v=0\r\n" + "a=" + "x" * 10_000 + "\r\n",
    ]
