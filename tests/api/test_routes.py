"""The studio's API against the local engine: tokens, limits, bad payloads, a call through the SDP proxy
with its tools run on the server, frames forwarded to it, and no provider key anywhere it should not be.

The routes run in-process (httpx's ASGI transport, no socket); the call's media runs over real WebRTC
between an aiortc client and the engine."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx2 as httpx
import numpy as np
import pytest
from aiortc import RTCDataChannel
from PIL import Image
from starlette.applications import Starlette

from api.guard import ApiConfig
from api.routes import Api
from realtime.external_calls import ExternalCalls
from realtime.settings import CameraSettings, Settings
from realtime.sideband_call import SidebandCall
from tests.fakebrowser import FakeBrowser, wait_until

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROVIDER_KEY = "provider-secret-for-the-leak-scan-0123456789"
ROUTES: list[tuple[str, dict[str, Any]]] = [
    ("/api/v1/realtime/session", {}),
    ("/api/v1/realtime/calls", {"content": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"}),
    ("/api/v1/realtime/calls/abc/hangup", {}),
    ("/api/v1/vision/frame", {"json": {"image_base64": "aGVsbG8="}}),
]


def png(rgb=(0, 160, 0), size=(64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, rgb).save(buf, format="PNG")
    return buf.getvalue()


class Seen:
    """Every response the tests got: the key scan reads them all."""

    def __init__(self) -> None:
        self.responses: list[httpx.Response] = []

    async def hook(self, response: httpx.Response) -> None:
        await response.aread()
        self.responses.append(response)


@pytest.fixture
def seen() -> Seen:
    return Seen()


def asgi(api: Api) -> Starlette:
    return Starlette(routes=api.routes())


def make_api(engine, **config) -> Api:
    settings = Settings(api_key=PROVIDER_KEY, base_url=engine.base_url, camera=CameraSettings(enabled=False))
    return Api(ApiConfig(token=TOKEN, **config), settings=lambda: settings, calls=ExternalCalls())


@pytest.fixture
async def api_client(engine, seen) -> AsyncIterator[tuple[Api, httpx.AsyncClient]]:
    api = make_api(engine)
    transport = httpx.ASGITransport(app=asgi(api))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://studio", event_hooks={"response": [seen.hook]}
    ) as client:
        yield api, client
    for call in api.calls.all():
        await asyncio.wrap_future(call.hangup())


async def post_offer(client: httpx.AsyncClient, offer: str) -> httpx.Response:
    return await client.post(
        "/api/v1/realtime/calls", content=offer, headers={**AUTH, "Content-Type": "application/sdp"}
    )


async def refused_offer(client: httpx.AsyncClient, browser: FakeBrowser) -> httpx.Response:
    """A call the API should turn away: the browser's offer, posted, never connected."""
    await browser.pc.setLocalDescription(await browser.pc.createOffer())
    return await post_offer(client, browser.pc.localDescription.sdp)


async def open_call(client: httpx.AsyncClient, browser: FakeBrowser) -> str:
    location: dict[str, str] = {}

    async def answerer(offer: str) -> str:
        r = await post_offer(client, offer)
        assert r.status_code == 201, r.text
        assert r.headers["content-type"].startswith("application/sdp")
        location["call_id"] = r.headers["x-call-id"]
        assert r.headers["location"] == f"/api/v1/realtime/calls/{location['call_id']}"
        return r.text

    await browser.connect(answerer)
    return location["call_id"]


@pytest.mark.parametrize(("path", "kwargs"), ROUTES)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": TOKEN}])
async def test_every_route_wants_the_token(api_client, path, kwargs, headers):
    _api, client = api_client
    r = await client.post(path, headers=headers, **kwargs)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert "REALTIME_API_TOKEN" in r.json()["error"]


async def test_without_a_token_configured_the_api_is_off(engine):
    api = Api(ApiConfig(), settings=lambda: Settings(api_key=PROVIDER_KEY, base_url=engine.base_url))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi(api)), base_url="http://studio") as client:
        for path, kwargs in ROUTES:
            r = await client.post(path, headers=AUTH, **kwargs)
            assert r.status_code == 404, path
            assert "set REALTIME_API_TOKEN" in r.json()["error"]
        assert (await client.get("/studio/example")).status_code == 404


async def test_the_example_client_is_served_beside_the_api(api_client):
    _api, client = api_client
    r = await client.get("/studio/example")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "Realtime Studio" in r.text and "/api/v1" in r.text and TOKEN not in r.text


async def test_a_session_is_minted_from_the_engine(api_client):
    _api, client = api_client
    r = await client.post("/api/v1/realtime/session", headers=AUTH, json={"instructions": "Be brief."})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["value"].startswith("ek_")
    assert body["expires_at"] > 0
    assert body["model"] == Settings().model
    assert body["url"].endswith("/v1/realtime/calls")
    assert "latest_frame_base64" not in body
    # a frame posted without a call is offered with the next session
    frame = base64.b64encode(png()).decode()
    assert (await client.post("/api/v1/vision/frame", headers=AUTH, json={"image_base64": frame})).status_code == 200
    again = (await client.post("/api/v1/realtime/session", headers=AUTH)).json()
    assert again["latest_frame_base64"] == frame


async def test_no_provider_is_a_clear_503(monkeypatch):
    monkeypatch.setenv("REALTIME_LOCAL_ENGINE", "off")
    api = Api(ApiConfig(token=TOKEN), settings=lambda: Settings(api_key=""), calls=ExternalCalls())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi(api)), base_url="http://studio") as client:
        r = await client.post("/api/v1/realtime/session", headers=AUTH)
    assert r.status_code == 503
    assert r.json()["error"].startswith("No realtime provider is available: no OPENAI_API_KEY is configured")
    assert "REALTIME_LOCAL_ENGINE=off" in r.json()["error"]


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b"not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "must be a JSON object"),
        (json.dumps({"image_base64": 42}).encode(), 400, "image_base64 must be"),
        (json.dumps({"image_base64": "%%%not base64%%%"}).encode(), 400, "not valid base64"),
        (
            json.dumps({"image_base64": base64.b64encode(b"plain text, not a picture").decode()}).encode(),
            400,
            "not an image",
        ),
        (json.dumps({"image_base64": base64.b64encode(png()[:60]).decode()}).encode(), 400, "damaged"),
        (json.dumps({"image_base64": base64.b64encode(png()).decode(), "call_id": "nope"}).encode(), 404, "No call"),
    ],
)
async def test_bad_frames_get_a_4xx_with_a_reason(api_client, body, status, says):
    _api, client = api_client
    r = await client.post("/api/v1/vision/frame", headers={**AUTH, "Content-Type": "application/json"}, content=body)
    assert r.status_code == status, r.text
    assert says in r.json()["error"]


async def test_an_oversize_frame_is_refused_before_it_is_read(api_client):
    _api, client = api_client
    r = await client.post(
        "/api/v1/vision/frame",
        headers={**AUTH, "Content-Type": "application/json"},
        content=b'{"image_base64": "' + b"A" * 12_000_000 + b'"}',
    )
    assert r.status_code == 413
    assert "over" in r.json()["error"]


async def test_a_frame_is_acknowledged(api_client):
    _api, client = api_client
    r = await client.post("/api/v1/vision/frame", headers=AUTH, json={"image_base64": base64.b64encode(png()).decode()})
    assert r.status_code == 200
    ack = r.json()
    assert (ack["width"], ack["height"], ack["bytes"], ack["forwarded"]) == (64, 48, len(png()), False)
    assert ack["received_at"] > 1.7e9


async def test_a_call_through_the_proxy_runs_its_tools_on_the_server(api_client):
    api, client = api_client
    browser = FakeBrowser(rgb=None, data_channel=True)
    received: list[dict] = []
    channel = browser.channel
    assert channel is not None
    channel.on("message", lambda m: received.append(json.loads(m)))
    try:
        call_id = await open_call(client, browser)
        call = api.calls.get(call_id)
        assert call is not None
        await wait_until(lambda: channel.readyState == "open" and call.state == "connected", 15, "the call")
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "echo upper banana"}]}
        channel.send(json.dumps({"type": "conversation.item.create", "item": item}))
        channel.send(json.dumps({"type": "response.create"}))

        def reply_with_result() -> bool:
            done = [
                e
                for e in received
                if e["type"] in ("response.output_audio_transcript.done", "response.output_text.done")
            ]
            return any("BANANA" in (e.get("transcript") or e.get("text") or "") for e in done)

        await wait_until(reply_with_result, 20, "the client hearing the tool's result")
        snap = call.snapshot()
        tools = [i for i in snap.transcript if i.tool_name]
        assert [(t.tool_name, "BANANA" in (t.tool_result or "")) for t in tools] == [("echo_upper", True)]
        sent = [e.payload["type"] for e in call.events.snapshot() if e.direction == "client"]
        assert sent.count("conversation.item.create") == 1 and sent.count("response.create") == 1  # run once

        # a frame posted for the call is shown to it
        r = await client.post(
            "/api/v1/vision/frame",
            headers=AUTH,
            json={"image_base64": base64.b64encode(png()).decode(), "call_id": call_id},
        )
        assert r.json()["forwarded"] is True
        await wait_until(lambda: len(call.snapshot().sent_images) == 1, 5, "the frame in the call's image log")
        assert call.snapshot().sent_images[0].source == "client"

        r = await client.post(f"/api/v1/realtime/calls/{call_id}/hangup", headers=AUTH)
        assert r.status_code == 200
        await wait_until(lambda: call.state == "closed", 10, "the call to end")
        late = await client.post(
            "/api/v1/vision/frame",
            headers=AUTH,
            json={"image_base64": base64.b64encode(png()).decode(), "call_id": call_id},
        )
        assert late.status_code == 409
    finally:
        await browser.close()


async def test_a_multipart_offer_like_the_sdks_is_taken_with_its_instructions(api_client):
    """The SDK's ``calls.create`` posts multipart (``sdp`` and ``session``); of the session only the
    instructions are taken: the studio's setup (tools, model, voice) stays the studio's."""
    api, client = api_client
    browser = FakeBrowser(rgb=None, data_channel=True)
    try:
        await browser.pc.setLocalDescription(await browser.pc.createOffer())
        session = {"type": "realtime", "instructions": "Say: multipart here.", "model": "not-this-one"}
        r = await client.post(
            "/api/v1/realtime/calls",
            headers=AUTH,
            files={"sdp": (None, browser.pc.localDescription.sdp), "session": (None, json.dumps(session))},
        )
        assert r.status_code == 201, r.text
        call = api.calls.get(r.headers["x-call-id"])
        assert call is not None
        assert call.settings.instructions == "Say: multipart here."
        assert call.settings.model == Settings().model
    finally:
        await browser.close()


@pytest.mark.parametrize(
    ("body", "headers", "status", "says"),
    [
        (b"hello", {"Content-Type": "application/sdp"}, 400, "not an SDP offer"),
        (b"v=0\r\n", {"Content-Type": "application/json"}, 415, "application/sdp"),
        (b"v=0\r\n" + b"a=x\r\n" * 20_000, {"Content-Type": "application/sdp"}, 413, "over"),
    ],
)
async def test_a_bad_offer_gets_a_4xx(api_client, body, headers, status, says):
    _api, client = api_client
    r = await client.post("/api/v1/realtime/calls", content=body, headers={**AUTH, **headers})
    assert r.status_code == status, r.text
    assert says in r.json()["error"]


async def test_the_eleventh_call_in_a_minute_is_refused(engine, seen):
    api = make_api(engine, calls_per_minute=10, max_concurrent=2)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=asgi(api)), base_url="http://studio", event_hooks={"response": [seen.hook]}
    ) as client:
        for _ in range(10):
            browser = FakeBrowser(rgb=None)
            try:
                call_id = await open_call(client, browser)
                assert (await client.post(f"/api/v1/realtime/calls/{call_id}/hangup", headers=AUTH)).status_code == 200
            finally:
                await browser.close()
        browser = FakeBrowser(rgb=None)
        r = await refused_offer(client, browser)
        await browser.close()
    assert r.status_code == 429
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert "More than 10 calls in a minute" in r.json()["error"]


async def test_concurrent_calls_are_limited(engine):
    api = make_api(engine, max_concurrent=1)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi(api)), base_url="http://studio") as client:
        first, second = FakeBrowser(rgb=None), FakeBrowser(rgb=None)
        try:
            call_id = await open_call(client, first)
            r = await refused_offer(client, second)
            assert r.status_code == 429 and r.headers["retry-after"] == "5"
            await client.post(f"/api/v1/realtime/calls/{call_id}/hangup", headers=AUTH)
            third = FakeBrowser(rgb=None)
            try:
                await open_call(client, third)  # a hung-up call frees its place
            finally:
                await third.close()
        finally:
            await first.close()
            await second.close()
        for call in api.calls.all():
            await asyncio.wrap_future(call.hangup())


async def test_the_provider_key_is_in_no_response_and_no_log(api_client, seen, caplog):
    """Runs after a call, a session, good and bad frames: every response and log line this test saw."""
    caplog.set_level(logging.DEBUG)
    _api, client = api_client
    await client.post("/api/v1/realtime/session", headers=AUTH)
    await client.post("/api/v1/vision/frame", headers=AUTH, content=b"{")
    browser = FakeBrowser(rgb=None, data_channel=True)
    try:
        call_id = await open_call(client, browser)
        await client.post(f"/api/v1/realtime/calls/{call_id}/hangup", headers=AUTH)
    finally:
        await browser.close()
    assert len(seen.responses) >= 4
    for response in seen.responses:
        assert PROVIDER_KEY not in response.text
        assert all(PROVIDER_KEY not in v for v in response.headers.values())
    assert PROVIDER_KEY not in caplog.text
    assert not np.any([TOKEN in r.getMessage() for r in caplog.records])


def say(channel, text: str) -> None:
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    channel.send(json.dumps({"type": "conversation.item.create", "item": item}))
    channel.send(json.dumps({"type": "response.create"}))


@contextlib.asynccontextmanager
async def scenario_call(engine, scenario: str) -> AsyncIterator[tuple[SidebandCall, RTCDataChannel]]:
    """A call placed through the API with ``scenario`` configured, once its agents have joined; hung up after."""
    settings = Settings(
        api_key=PROVIDER_KEY, base_url=engine.base_url, camera=CameraSettings(enabled=False), scenario=scenario
    )
    api = Api(ApiConfig(token=TOKEN), settings=lambda: settings, calls=ExternalCalls())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi(api)), base_url="http://studio") as client:
        browser = FakeBrowser(rgb=None, data_channel=True)
        channel = browser.channel
        assert channel is not None
        try:
            call = api.calls.get(await open_call(client, browser))
            assert call is not None
            await wait_until(lambda: channel.readyState == "open" and call.agents_joined, 20, "the agents")
            yield call, channel
        finally:
            await browser.close()
            for placed in api.calls.all():
                await asyncio.wrap_future(placed.hangup())


async def test_a_scenario_runs_an_api_call_through_its_agents(engine):
    async with scenario_call(engine, "front_desk") as (call, channel):
        say(channel, "transfer to billing")
        assert call.agent_name == "front_desk"
        await wait_until(lambda: call.agent_name == "billing", 20, "the handoff")
        notes = [i.text for i in call.snapshot().transcript if i.role == "system"]
        assert "front_desk \u2192 billing" in notes
        assert call.snapshot().agent == "billing"
        assert any(e.direction == "agent" for e in call.events.snapshot())


async def test_a_tool_needing_approval_is_denied_on_an_api_call(engine):
    async with scenario_call(engine, "guarded") as (call, channel):
        say(channel, "issue refund 20")

        def denied() -> bool:
            return any("nobody approves API calls" in i.text for i in call.snapshot().transcript)

        await wait_until(denied, 20, "the denial")
        await wait_until(
            lambda: any("not approved" in (i.tool_result or "").lower() for i in call.snapshot().transcript),
            20,
            "the model told the tool was not approved",
        )


async def test_a_full_server_turns_an_api_call_away_with_the_busy_message(engine, monkeypatch):
    import realtime.admission as admission_module
    from realtime.admission import Admission

    gate = Admission(1)
    monkeypatch.setattr(admission_module, "_admission", gate)
    api = make_api(engine)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi(api)), base_url="http://studio") as client:
        first, second = FakeBrowser(rgb=None), FakeBrowser(rgb=None)
        try:
            await open_call(client, first)  # the one place, taken by an API client
            r = await refused_offer(client, second)
            assert r.status_code == 503 and r.headers["retry-after"] == "60"
            assert r.json()["error"] == (
                "The studio is busy: 1 conversation is running on this server. Try again in a minute."
            )
        finally:
            await first.close()
            await second.close()
        for call in api.calls.all():
            await asyncio.wrap_future(call.hangup())
