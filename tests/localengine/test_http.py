"""HTTP edge: health, auth (401 shapes), client secrets, hangup of unknown calls, the CLI."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import openai
import pytest
from openai import AsyncOpenAI
from openai.types.realtime import ClientSecretCreateResponse

from localengine.config import EngineConfig
from localengine.runner import start_engine
from tests.localengine.helpers import API_KEY, validated

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = "sk-allowed-one"


@pytest.fixture(scope="module")
def restricted():
    with start_engine(EngineConfig(accepted_keys=frozenset({ALLOWED}), client_secret_ttl_seconds=2)) as eng:
        yield eng


def _root(engine) -> str:
    return engine.base_url.removesuffix("/v1")


def test_healthz_needs_no_key(engine):
    r = httpx2.get(_root(engine) + "/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"


def test_missing_key_gets_openai_shaped_401(engine):
    r = httpx2.post(
        engine.base_url + "/realtime/calls", content=b"v=0\r\n", headers={"Content-Type": "application/sdp"}
    )
    assert r.status_code == 401
    body = r.json()
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["code"] == "invalid_api_key"
    assert body["error"]["param"] is None
    assert "API key" in body["error"]["message"]


async def test_wrong_key_is_rejected_when_keys_are_restricted(restricted, caplog):
    caplog.set_level(logging.DEBUG)
    async with AsyncOpenAI(base_url=restricted.base_url, api_key="sk-not-on-the-list") as bad:
        with pytest.raises(openai.AuthenticationError) as err:
            await bad.realtime.client_secrets.create()
    assert err.value.status_code == 401
    assert err.value.code == "invalid_api_key"
    async with AsyncOpenAI(base_url=restricted.base_url, api_key=ALLOWED) as good:
        assert (await good.realtime.client_secrets.create()).value.startswith("ek_")
    assert "sk-not-on-the-list" not in caplog.text and ALLOWED not in caplog.text


async def test_client_secret_is_a_key_until_it_expires(restricted):
    async with AsyncOpenAI(base_url=restricted.base_url, api_key=ALLOWED) as client:
        await _client_secret_checks(restricted, client)


async def _client_secret_checks(restricted, client):
    secret = await client.realtime.client_secrets.create(
        session={"type": "realtime", "instructions": "Say: Hello from the secret."},
        expires_after={"anchor": "created_at", "seconds": 10},
    )
    assert isinstance(secret, ClientSecretCreateResponse)
    ClientSecretCreateResponse.model_validate(secret.model_dump())
    assert secret.value.startswith("ek_")
    assert secret.expires_at >= int(time.time()) + 8
    assert secret.session.type == "realtime"
    assert secret.session.instructions == "Say: Hello from the secret."

    # The ephemeral key opens a session, and that session carries the secret's configuration.
    async with (
        AsyncOpenAI(base_url=restricted.base_url, api_key=secret.value) as eph,
        eph.realtime.connect(model="gpt-realtime") as conn,
    ):
        created = validated(await conn.recv())
    assert created["type"] == "session.created"
    assert created["session"]["instructions"] == "Say: Hello from the secret."

    # A short-lived one (the engine's default TTL here is 2 s) stops working once expired.
    short = await client.realtime.client_secrets.create()
    assert short.expires_at - time.time() <= 2.5
    r = httpx2.post(
        restricted.base_url + "/realtime/client_secrets", json={}, headers={"Authorization": f"Bearer {short.value}"}
    )
    assert r.status_code == 200
    time.sleep(max(0.0, short.expires_at - time.time()) + 0.3)
    r = httpx2.post(
        restricted.base_url + "/realtime/client_secrets", json={}, headers={"Authorization": f"Bearer {short.value}"}
    )
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"


def test_client_secret_bad_body_is_400(engine):
    headers = {"Authorization": f"Bearer {API_KEY}"}
    r = httpx2.post(engine.base_url + "/realtime/client_secrets", content=b"{not json", headers=headers)
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
    r = httpx2.post(
        engine.base_url + "/realtime/client_secrets",
        json={"expires_after": {"anchor": "created_at", "seconds": "soon"}},
        headers=headers,
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "expires_after.seconds"


async def test_hangup_unknown_call_is_404(engine):
    async with AsyncOpenAI(base_url=engine.base_url, api_key=API_KEY) as client:
        with pytest.raises(openai.NotFoundError) as err:
            await client.realtime.calls.hangup("rtc_nope")
    assert "rtc_nope" in err.value.message


async def test_websocket_auth_failure_is_a_clear_401(restricted):
    import websockets

    async with AsyncOpenAI(base_url=restricted.base_url, api_key="sk-wrong") as bad:
        with pytest.raises(websockets.exceptions.InvalidStatus) as err:
            async with bad.realtime.connect(model="gpt-realtime"):
                pass
    assert err.value.response.status_code == 401
    assert b"invalid_api_key" in err.value.response.body


def test_cli_prints_base_url_first_and_stops_cleanly_on_sigterm():
    env = {**os.environ, "LOCALENGINE_API_KEYS": "sk-cli-secret"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "localengine", "--host", "127.0.0.1", "--port", "0", "--log-level", "debug"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        assert first.startswith("localengine listening on http://127.0.0.1:"), first
        base_url = first.rsplit(" ", 1)[1]
        assert base_url.endswith("/v1")
        assert httpx2.get(base_url.removesuffix("/v1") + "/healthz").status_code == 200
        r = httpx2.post(
            base_url + "/realtime/client_secrets", json={}, headers={"Authorization": "Bearer sk-cli-secret"}
        )
        assert r.status_code == 200
        r = httpx2.post(base_url + "/realtime/client_secrets", json={}, headers={"Authorization": "Bearer sk-other"})
        assert r.status_code == 401
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert "sk-cli-secret" not in err and "sk-other" not in err
        assert "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
