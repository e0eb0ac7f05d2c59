"""The maximum session duration: configured from the environment or the CLI, and ended as the real
service ends it (an ``error`` "Your session hit the maximum duration of ...", then WebSocket close
1001; over WebRTC the data channel and the call end), on time, through real clients."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest
import websockets
from openai import AsyncOpenAI

from localengine.config import EngineConfig
from localengine.conversation import Close, Send, Session, session_limit_message
from localengine.runner import start_engine
from tests.localengine.helpers import API_KEY, EventStream, RtcClient, wait_until

ROOT = Path(__file__).resolve().parents[2]
LIMIT_S = 2.0
MESSAGE = "Your session hit the maximum duration of 2 seconds."
LATE_S = 0.75
"""How late after the limit the error may arrive (the engine wakes at the limit, not on its next tick)."""


# ------------------------------------------------------------------------- wording and config


@pytest.mark.parametrize(
    ("seconds", "message"),
    [
        (3600, "Your session hit the maximum duration of 60 minutes."),
        (120, "Your session hit the maximum duration of 2 minutes."),
        (60, "Your session hit the maximum duration of 1 minute."),
        (90, "Your session hit the maximum duration of 90 seconds."),
        (2, MESSAGE),
        (1, "Your session hit the maximum duration of 1 second."),
        (0.5, "Your session hit the maximum duration of 0.5 seconds."),
    ],
)
def test_limit_message_wording(seconds, message):
    assert session_limit_message(seconds) == message


def test_session_expires_at_its_limit():
    session = Session(transport="websocket", config=EngineConfig(max_session_seconds=2), initial_session=None, now=10)
    session.start()
    assert session.expires_at == 12
    assert session.tick(11.999) == []
    effects = session.tick(12)
    assert isinstance(effects[0], Send) and isinstance(effects[1], Close) and effects[1].reason == "session_expired"
    error = effects[0].event["error"]
    assert error == {
        "type": "invalid_request_error",
        "code": "session_expired",
        "message": MESSAGE,
        "param": None,
        "event_id": None,
    }


@pytest.mark.parametrize(("raw", "seconds"), [("2", 2.0), (" 0.5 ", 0.5), ("7200", 7200.0), ("", 3600.0)])
def test_from_env_reads_the_max_session(raw, seconds):
    config = EngineConfig.from_env({"LOCALENGINE_MAX_SESSION_S": raw, "LOCALENGINE_API_KEYS": "k1"})
    assert config.max_session_seconds == seconds and config.accepted_keys == frozenset({"k1"})
    assert EngineConfig.from_env({}).max_session_seconds == 3600


@pytest.mark.parametrize("raw", ["abc", "0", "-5", "nan", "inf", "1e999", "60s"])
def test_from_env_refuses_a_bad_max_session_clearly(raw):
    with pytest.raises(ValueError) as refused:
        EngineConfig.from_env({"LOCALENGINE_MAX_SESSION_S": raw})
    assert str(refused.value) == (
        f"LOCALENGINE_MAX_SESSION_S must be a positive number of seconds (e.g. 3600), got {raw!r}"
    )


def _cli(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "localengine", "--host", "127.0.0.1", "--port", "0", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_cli_refuses_a_bad_flag_or_env_value_clearly():
    proc = _cli("--max-session-s", "soon", env={})
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 2 and out == ""
    assert "argument --max-session-s: must be a positive number of seconds (e.g. 3600), got 'soon'" in err

    proc = _cli(env={"LOCALENGINE_MAX_SESSION_S": "-1"})
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1 and out == ""
    assert (
        "localengine: cannot start: LOCALENGINE_MAX_SESSION_S must be a positive number of seconds (e.g. 3600), "
        "got '-1'" in err
    )
    assert "Traceback" not in err


async def test_cli_flag_wins_over_the_environment():
    proc = _cli("--max-session-s", "2", env={"LOCALENGINE_MAX_SESSION_S": "600"})
    try:
        assert proc.stdout is not None
        line = await asyncio.to_thread(proc.stdout.readline)
        assert line.startswith("localengine listening on "), line
        async with (
            AsyncOpenAI(base_url=line.split()[-1], api_key=API_KEY) as client,
            client.realtime.connect(model="gpt-realtime") as conn,
        ):
            stream = EventStream(conn)
            assert (await stream.next())["type"] == "session.created"
            error = (await stream.until("error", timeout=10))[-1]["error"]
            assert error["message"] == MESSAGE
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


# ------------------------------------------------------------------------- both transports


@pytest.fixture(scope="module")
def short():
    with start_engine(EngineConfig(max_session_seconds=LIMIT_S)) as running:
        yield running


async def test_websocket_session_ends_on_time_with_error_then_1001(short):
    async with (
        AsyncOpenAI(base_url=short.base_url, api_key=API_KEY) as client,
        client.realtime.connect(model="gpt-realtime") as conn,
    ):
        stream = EventStream(conn)
        assert (await stream.next())["type"] == "session.created"
        opened = time.monotonic()
        events = await stream.until("error", timeout=10)
        waited = time.monotonic() - opened
        assert [e["type"] for e in events] == ["error"]
        assert events[0]["error"] == {
            "type": "invalid_request_error",
            "code": "session_expired",
            "message": MESSAGE,
            "param": None,
            "event_id": None,
        }
        assert LIMIT_S - 0.2 < waited < LIMIT_S + LATE_S, waited
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            await stream.next(timeout=10)
        rcvd = closed.value.rcvd
        assert rcvd is not None and rcvd.code == 1001 and rcvd.reason == "session_expired"
    await wait_until(lambda: short.stats().websockets == 0, 10, "the socket to be released")


async def test_webrtc_call_ends_on_time_channel_and_call_closed(short):
    peer = RtcClient()
    try:
        async with AsyncOpenAI(base_url=short.base_url, api_key=API_KEY) as client:
            await peer.start_call(client, {"type": "realtime", "output_modalities": ["text"]})
            opened = time.monotonic()
            assert short.stats().calls == 1
            async with client.realtime.connect(call_id=peer.call_id) as sideband:
                side = EventStream(sideband)
                error = await peer.wait_event("error", timeout=10)
                waited = time.monotonic() - opened
                assert error["error"]["code"] == "session_expired" and error["error"]["message"] == MESSAGE
                assert waited < LIMIT_S + LATE_S, waited
                assert (await side.until("error", timeout=5))[-1]["error"]["message"] == MESSAGE
                with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                    await side.next(timeout=10)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
            await wait_until(lambda: short.stats().calls == 0, 10, "the expired call to stop being counted")
            await wait_until(lambda: short.stats().peer_connections == 0, 10, "the engine's peer to close")
            await wait_until(
                lambda: peer.channel.readyState == "closed" and peer.pc.connectionState == "closed",
                10,
                "the client to see the data channel and the call end",
            )
            assert peer.types()[-1] == "error"
            with pytest.raises(openai.NotFoundError):  # the call is gone, as after a hangup
                await client.realtime.calls.hangup(peer.call_id)
    finally:
        await peer.close()
