"""Load: 20 WebSocket sessions and 5 WebRTC calls at once, each with its own correct reply.

Afterwards nothing is left: no engine tasks, no open peer connections, no engine threads.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import threading
import time

import pytest
from aiortc import RTCPeerConnection
from openai import AsyncOpenAI

from localengine.runner import start_engine
from tests.localengine.helpers import API_KEY, EventStream, RtcClient, reply_text, rms, user_text, voiced_ms, wait_until

N_WS = 20
N_CALLS = 5


@pytest.fixture(scope="module")
def threads_at_start():
    return set(threading.enumerate())


async def _ws_session(client: AsyncOpenAI, n: int) -> None:
    audio = n % 2 == 0  # half the sessions also get synthesized voice
    async with client.realtime.connect(model="gpt-realtime") as conn:
        stream = EventStream(conn)
        await stream.until("session.created")
        await conn.session.update(session={"type": "realtime", "output_modalities": ["audio" if audio else "text"]})
        await stream.until("session.updated")
        text = f"session {n} reporting code {1000 + n}"
        await conn.conversation.item.create(item=user_text(text))
        await conn.response.create()
        events = await stream.until("response.done", timeout=90)
        assert reply_text(events) == f"You said: {text}", n
        if audio:
            pcm = b"".join(base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta")
            assert rms(pcm) > 500, n


async def _call(client: AsyncOpenAI, n: int) -> None:
    peer = RtcClient()
    try:
        await peer.start_call(client, {"type": "realtime", "instructions": f"Say: Call {n}."})
        call_id = peer.call_id
        await peer.wait_event("session.created", timeout=30)
        text = f"call {n} wants reply {2000 + n}"
        peer.send(
            {
                "type": "conversation.item.create",
                "item": user_text(text),
            }
        )
        peer.send({"type": "response.create"})
        await peer.wait_event("output_audio_buffer.stopped", timeout=90)
        assert reply_text(peer.events) == f"Call {n}. You said: {text}", n
        assert voiced_ms(bytes(peer.received)) > 500, n
        await client.realtime.calls.hangup(call_id)
    finally:
        await peer.close()


async def test_20_websocket_sessions_and_5_calls_at_once(threads_at_start):
    engine = start_engine()
    try:
        async with AsyncOpenAI(base_url=engine.base_url, api_key=API_KEY, timeout=60) as client:
            started = time.monotonic()
            results = await asyncio.gather(
                *(_ws_session(client, n) for n in range(N_WS)),
                *(_call(client, n) for n in range(N_CALLS)),
                return_exceptions=True,
            )
            elapsed = time.monotonic() - started
        failures = [r for r in results if isinstance(r, BaseException)]
        assert not failures, failures
        print(f"\nload: {N_WS} WebSocket sessions + {N_CALLS} WebRTC calls answered in {elapsed:.1f} s")

        await wait_until(
            lambda: engine.stats().calls == 0 and engine.stats().websockets == 0, 20, "every session to be released"
        )
        await wait_until(lambda: engine.live_tasks() == (), 20, "engine tasks to finish")
        assert engine.stats().peer_connections == 0
    finally:
        engine.stop()
    assert engine.leftover_tasks == ()
    engine_threads = (f"localengine-{engine.port}", "localengine-speech")
    assert not [t for t in threading.enumerate() if t.name.startswith(engine_threads)]


def test_nothing_left_behind(threads_at_start):
    gc.collect()
    alive = [pc for pc in gc.get_objects() if type(pc) is RTCPeerConnection]  # type(): no proxy side effects
    assert alive == [], f"{len(alive)} RTCPeerConnection objects still alive"
    new_threads = [t for t in threading.enumerate() if t not in threads_at_start and t.is_alive() and not t.daemon]
    assert new_threads == [], new_threads
