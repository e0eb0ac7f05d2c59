"""Malformed input: every bad message gets a clear error, nothing crashes, nobody else is affected.

One bystander session runs a good turn before and after all of it.
"""

from __future__ import annotations

import asyncio
import json

import httpx2
import openai
import pytest
import websockets
from openai import AsyncOpenAI

from localengine.config import EngineConfig
from localengine.runner import start_engine
from tests.localengine.helpers import (
    API_KEY,
    EventStream,
    RtcClient,
    reply_text,
    text_call,
    user_text,
    validated,
    wait_until,
)
from tests.media import solid_jpeg_data_url

ALLOWED = "sk-only-this-one"

NOT_AN_IMAGE = "data:image/png;base64," + "aGVsbG8gd29ybGQsIEkgYW0gbm90IGEgcGljdHVyZQ=="

BAD_EVENTS = [
    # (what, raw message, expected error code, expected param or None)
    ("invalid JSON", '{"type": "response.create", ', "invalid_json", None),
    ("not an object", "[1, 2, 3]", "invalid_type", None),
    ("unknown type", json.dumps({"type": "response.dance", "event_id": "bad_1"}), "invalid_value", "type"),
    (
        "wrong field type",
        json.dumps({"type": "response.create", "event_id": "bad_2", "response": 5}),
        "invalid_type",
        "response",
    ),
    (
        "content not a list",
        json.dumps(
            {
                "type": "conversation.item.create",
                "event_id": "bad_3",
                "item": {"type": "message", "role": "user", "content": "hello"},
            }
        ),
        "invalid_type",
        "item.content",
    ),
    (
        "non-image input_image",
        json.dumps(
            {
                "type": "conversation.item.create",
                "event_id": "bad_4",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_image", "image_url": NOT_AN_IMAGE}],
                },
            }
        ),
        "invalid_image",
        "item.content[0].image_url",
    ),
    (
        "bad base64 audio",
        json.dumps({"type": "input_audio_buffer.append", "event_id": "bad_5", "audio": "***"}),
        "invalid_value",
        "audio",
    ),
    (
        "2 MB event",
        json.dumps({"type": "input_audio_buffer.append", "event_id": "bad_6", "audio": "A" * 2_000_000}),
        "event_too_large",
        None,
    ),
]


async def _good_turn(conn, stream: EventStream, text: str) -> str:
    await conn.conversation.item.create(item=user_text(text))
    await conn.response.create()
    return reply_text(await stream.until("response.done"))


async def _open(client):
    manager = client.realtime.connect(model="gpt-realtime")
    conn = await manager.enter()
    stream = EventStream(conn)
    assert (await stream.next())["type"] == "session.created"
    await conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
    await stream.until("session.updated")
    return conn, stream


async def test_bad_client_events_get_errors_and_the_sessions_live_on(engine):
    async with AsyncOpenAI(base_url=engine.base_url, api_key=API_KEY) as client:
        bystander, by_stream = await _open(client)
        victim, stream = await _open(client)
        try:
            assert await _good_turn(bystander, by_stream, "before") == "You said: before"
            for what, raw, code, param in BAD_EVENTS:
                await victim.send_raw(raw)
                error = (await stream.until("error"))[-1]["error"]
                assert error["code"] == code, (what, error)
                assert error["param"] == param, (what, error)
                assert error["type"] == "invalid_request_error"
                assert error["message"], what
                if '"event_id": "bad_' in raw:
                    assert error["event_id"] == json.loads(raw)["event_id"], (what, error)
            # The same connection still works, and so does the other session.
            assert await _good_turn(victim, stream, "still fine") == "You said: still fine"
            assert await _good_turn(bystander, by_stream, "after") == "You said: after"
        finally:
            await victim.close()
            await bystander.close()


async def test_oversize_message_on_the_data_channel_keeps_the_call(engine):
    """A client that ignores the SCTP max-message-size sends 2 MB: error event, call stays up."""
    async with text_call(engine.base_url) as (_, peer):
        sctp = peer.pc.sctp
        assert sctp is not None
        sctp._remote_max_message_size = 0  # behave like a non-compliant client
        peer.send({"type": "input_audio_buffer.append", "event_id": "huge", "audio": "A" * 2_000_000})
        error = await peer.wait_event("error", timeout=30)
        assert error["error"]["code"] == "event_too_large" and error["error"]["event_id"] == "huge"
        mark = len(peer.events)
        peer.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [
                        {"type": "input_image", "image_url": solid_jpeg_data_url((255, 0, 0))},
                        {"type": "input_text", "text": "what do you see?"},
                    ],
                },
            }
        )
        peer.send({"type": "response.create"})
        await peer.wait_event("response.done", start=mark)
        assert "red" in reply_text(peer.events[mark:]).lower()


@pytest.mark.parametrize(
    ("offer", "fragment"),
    [
        ("this is not sdp", "not SDP"),
        ("v=0\r\nm=audio\r\n", "could not be parsed"),
        ("", "empty"),
        (
            "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
            "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n"
            "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=mid:0\r\na=sctp-port:5000\r\n"
            "a=fingerprint:sha-256 " + ":".join(["AB"] * 32) + "\r\na=setup:actpass\r\n",
            "no audio",
        ),
        (
            "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
            "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\n"
            "a=rtpmap:111 opus/48000/2\r\na=rtcp-mux\r\n",
            "rejected",
        ),
    ],
)
async def test_bad_sdp_offer_is_a_clear_400(engine, offer, fragment):
    async with AsyncOpenAI(base_url=engine.base_url, api_key=API_KEY) as client:
        with pytest.raises(openai.BadRequestError) as err:
            await client.realtime.calls.create(sdp=offer)
    assert err.value.status_code == 400
    assert err.value.code == "invalid_offer" and err.value.param == "sdp"
    assert "SDP offer" in err.value.message and fragment in err.value.message, err.value.message
    assert engine.stats().calls == 0


@pytest.fixture(scope="module")
def restricted():
    with start_engine(EngineConfig(accepted_keys=frozenset({ALLOWED}))) as eng:
        yield eng


async def test_missing_and_wrong_keys_are_401(restricted, engine):
    for base in (restricted, engine):
        r = httpx2.post(
            base.base_url + "/realtime/calls", content=b"v=0\r\n", headers={"Content-Type": "application/sdp"}
        )
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        assert "didn't provide an API key" in r.json()["error"]["message"]
        with pytest.raises(websockets.exceptions.InvalidStatus) as err:
            async with websockets.connect(base.ws_url + "?model=gpt-realtime"):
                pass
        assert err.value.response.status_code == 401
        assert json.loads(err.value.response.body)["error"]["code"] == "invalid_api_key"
    async with AsyncOpenAI(base_url=restricted.base_url, api_key="sk-guess") as client:
        with pytest.raises(openai.AuthenticationError) as refused:
            await client.realtime.calls.create(sdp="v=0\r\n")
        assert refused.value.code == "invalid_api_key" and "Incorrect API key" in refused.value.message
        with pytest.raises(websockets.exceptions.InvalidStatus):
            async with client.realtime.connect(model="gpt-realtime"):
                pass
    async with (
        AsyncOpenAI(base_url=restricted.base_url, api_key=ALLOWED) as client,
        client.realtime.connect(model="gpt-realtime") as conn,
    ):
        assert validated(json.loads(await conn.recv_bytes()))["type"] == "session.created"


async def test_binary_and_garbage_frames_do_not_drop_the_socket(engine):
    async with websockets.connect(
        engine.ws_url + "?model=gpt-realtime", additional_headers={"Authorization": f"Bearer {API_KEY}"}
    ) as ws:
        assert validated(json.loads(await ws.recv()))["type"] == "session.created"
        await ws.send(b"\xff\xfe\x00binary junk")
        error = validated(json.loads(await asyncio.wait_for(ws.recv(), 10)))
        assert error["type"] == "error" and error["error"]["code"] == "invalid_json"
        await ws.send(json.dumps({"type": "input_audio_buffer.clear", "event_id": "ok_1"}))
        cleared = validated(json.loads(await asyncio.wait_for(ws.recv(), 10)))
        assert cleared["type"] == "input_audio_buffer.cleared"
    await wait_until(lambda: engine.stats().websockets == 0, 10, "the socket to be released")


async def test_session_duration_limit_ends_websocket_and_call():
    with start_engine(EngineConfig(max_session_seconds=1.5)) as short:
        async with AsyncOpenAI(base_url=short.base_url, api_key=API_KEY) as client:
            peer = RtcClient()
            raw = await client.realtime.calls.with_raw_response.create(sdp=await peer.offer())
            await peer.answer(raw.content.decode())
            try:
                async with client.realtime.connect(model="gpt-realtime") as conn:
                    stream = EventStream(conn)
                    error = (await stream.until("error", timeout=10))[-1]["error"]
                    assert error["code"] == "session_expired"
                    with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                        await stream.next(timeout=10)
                    rcvd = closed.value.rcvd
                    assert rcvd is not None and rcvd.reason == "session_expired"
                error = await peer.wait_event("error", timeout=10)
                assert error["error"]["code"] == "session_expired"
                await wait_until(lambda: short.stats().calls == 0, 10, "the expired call to end")
                await wait_until(
                    lambda: peer.pc.connectionState == "closed" or peer.channel.readyState == "closed",
                    10,
                    "the peer to see it",
                )
            finally:
                await peer.close()
