"""WebRTC calls: the SDK's ``realtime.calls`` plus an aiortc client peer (like a browser tab).

The reply voice must arrive as audio with real energy on the client's remote track, events on
the ``oai-events`` data channel (each validated with the SDK's models), and ``calls.hangup``
must end the call on the server (peer closed, nothing left).
"""

from __future__ import annotations

import asyncio

import pytest
from openai import AsyncOpenAI

from tests.localengine.helpers import API_KEY, EventStream, RtcClient, reply_text, user_text, voiced_ms, wait_until
from tests.media import silence_pcm24k, speech_pcm24k


@pytest.fixture
async def client(engine):
    async with AsyncOpenAI(base_url=engine.base_url, api_key=API_KEY) as c:
        yield c


async def _call(client, peer: RtcClient, session: dict | None = None) -> str:
    raw = await peer.start_call(client, session)
    assert raw.status_code == 201
    assert raw.headers["content-type"].startswith("application/sdp")
    assert raw.headers["location"].startswith("/v1/realtime/calls/rtc_")
    return peer.call_id


def _say(peer: RtcClient, text: str) -> int:
    mark = len(peer.events)
    peer.send(
        {
            "type": "conversation.item.create",
            "item": user_text(text),
        }
    )
    peer.send({"type": "response.create"})
    return mark


async def test_call_voice_events_and_hangup(engine, client):
    peer = RtcClient()
    try:
        call_id = await _call(
            client,
            peer,
            session={"type": "realtime", "instructions": "Say: Welcome.", "audio": {"output": {"voice": "coral"}}},
        )
        created = await peer.wait_event("session.created")
        assert created["session"]["instructions"] == "Say: Welcome."
        assert created["session"]["audio"]["output"]["voice"] == "coral"

        mark = _say(peer, "testing the voice")
        await peer.wait_event("output_audio_buffer.stopped", timeout=30, start=mark)
        events = peer.events[mark:]
        assert reply_text(events) == "Welcome. You said: testing the voice"
        types = [e["type"] for e in events]
        assert "response.output_audio.delta" not in types  # WebRTC carries voice as media, not events
        assert types.index("output_audio_buffer.started") < types.index("output_audio_buffer.stopped")
        voiced = voiced_ms(bytes(peer.received))
        assert voiced > 700, f"only {voiced} ms of the received audio has speech energy"

        assert engine.stats().calls == 1
        await client.realtime.calls.hangup(call_id)
        await wait_until(
            lambda: peer.pc.connectionState == "closed" or peer.channel.readyState == "closed",
            10,
            "the client peer to see the call end",
        )
        assert engine.stats().calls == 0 and engine.stats().peer_connections == 0
        await wait_until(lambda: engine.live_tasks() == (), 10, "engine tasks to finish")
    finally:
        await peer.close()


async def test_plain_sdp_body_and_mic_speech_turn(engine, client):
    """No ``session`` -> the SDK posts a bare application/sdp body. The mic carries speech."""
    speech = speech_pcm24k("good morning, this is a microphone test")
    peer = RtcClient(silence_pcm24k(400) + speech + silence_pcm24k(1500))
    try:
        call_id = await _call(client, peer)
        events_to = await peer.wait_event("input_audio_buffer.speech_started", timeout=20)
        assert events_to["audio_start_ms"] >= 0
        await peer.wait_event("input_audio_buffer.speech_stopped", timeout=20)
        await peer.wait_event("output_audio_buffer.stopped", timeout=30)
        # The words come from the offline recogniser (poor on synthetic speech): check the shape.
        assert reply_text(peer.events).startswith("You said: ")
        assert len(reply_text(peer.events)) > len("You said: ")
        assert voiced_ms(bytes(peer.received)) > 500

        stats = engine.call(_driver_stats(engine, call_id))
        per_frame_ms = 1000 * stats.audio_in_seconds / max(1, stats.audio_in_calls)
        print(
            f"\nVAD/audio_in cost: {stats.audio_in_calls} frames, mean {per_frame_ms:.3f} ms, "
            f"max {1000 * stats.audio_in_max_seconds:.2f} ms per 20 ms frame"
        )
        assert stats.audio_in_calls > 50
        assert per_frame_ms < 5, "feeding 20 ms of mic audio must stay cheap on the loop"
        await client.realtime.calls.hangup(call_id)
    finally:
        await peer.close()
    await wait_until(lambda: engine.stats().calls == 0, 10, "the call to be gone")


async def _driver_stats(engine, call_id):
    return engine.state.calls[call_id].driver.stats()


async def test_sideband_websocket_sees_and_drives_the_call(engine, client):
    peer = RtcClient()
    try:
        call_id = await _call(client, peer, session={"type": "realtime", "output_modalities": ["text"]})
        await peer.wait_event("session.created")
        async with client.realtime.connect(call_id=call_id) as side:
            stream = EventStream(side)
            # Driven from the data channel, seen on the sideband.
            _say(peer, "seen on both")
            events = await stream.until("response.done")
            assert reply_text(events) == "You said: seen on both"
            # Driven from the sideband, seen on the data channel.
            mark = len(peer.events)
            await side.conversation.item.create(item=user_text("from the server side"))
            await side.response.create()
            assert reply_text(await stream.until("response.done")) == "You said: from the server side"
            await peer.wait_event("response.done", start=mark)
            assert reply_text(peer.events[mark:]) == "You said: from the server side"
        # Closing the sideband leaves the call up.
        mark = len(peer.events)
        _say(peer, "still here")
        await peer.wait_event("response.done", start=mark)
        await client.realtime.calls.hangup(call_id)
    finally:
        await peer.close()


async def test_sideband_to_unknown_call_is_refused(engine, client):
    import websockets

    with pytest.raises(websockets.exceptions.InvalidStatus) as err:
        async with client.realtime.connect(call_id="rtc_missing"):
            pass
    assert err.value.response.status_code == 404


async def test_client_hanging_up_its_peer_ends_the_call(engine, client):
    peer = RtcClient()
    await _call(client, peer)
    await peer.wait_event("session.created")
    assert engine.stats().calls == 1
    await peer.close()
    await wait_until(lambda: engine.stats().calls == 0, 40, "the server to notice the closed peer")
    await wait_until(lambda: engine.live_tasks() == (), 10, "engine tasks to finish")


async def test_barge_in_truncates_at_what_was_played(engine, client):
    """Speaking over the assistant clears its audio and truncates the item at the played position."""
    peer = RtcClient()
    try:
        call_id = await _call(client, peer)
        await peer.wait_event("session.created")
        mark = _say(peer, "count to 40")
        await peer.wait_event("output_audio_buffer.started", timeout=30, start=mark)
        started_at = peer.arrival("output_audio_buffer.started", mark)
        await asyncio.sleep(1.5)  # let about 1.5 s of the long reply play before interrupting
        peer.mic.feed(speech_pcm24k("stop please") + silence_pcm24k(1000))
        await peer.wait_event("input_audio_buffer.speech_started", timeout=15, start=mark)
        cleared = await peer.wait_event("output_audio_buffer.cleared", timeout=10, start=mark)
        truncated = await peer.wait_event("conversation.item.truncated", timeout=10, start=mark)
        heard_ms = 1000 * (peer.arrival("input_audio_buffer.speech_started", mark) - started_at)
        print(f"\nbarge-in: truncated at {truncated['audio_end_ms']} ms, client heard ~{heard_ms:.0f} ms")
        assert cleared["response_id"]
        assert 0 < truncated["audio_end_ms"] < 15_000
        assert abs(truncated["audio_end_ms"] - heard_ms) < 700, (truncated["audio_end_ms"], heard_ms)
        assert "output_audio_buffer.stopped" not in peer.types()[mark:]
        await client.realtime.calls.hangup(call_id)
    finally:
        await peer.close()


async def test_consent_follows_rfc_7675_late_answers_keep_the_call_silence_ends_it():
    """A busy client answers consent checks late: the engine keeps its call (aioice's own check gave each
    answer 0.5 s and dropped the call); a client gone silent loses it once consent expires."""
    import time

    from aiortc import RTCPeerConnection

    from localengine.rtc import keep_consent

    client, engine = RTCPeerConnection(), RTCPeerConnection()
    client.addTransceiver("audio", direction="sendrecv")
    engine.on("track", lambda track: None)
    try:
        await client.setLocalDescription(await client.createOffer())
        await engine.setRemoteDescription(client.localDescription)
        await engine.setLocalDescription(await engine.createAnswer())
        await client.setRemoteDescription(engine.localDescription)
        await wait_until(lambda: engine.connectionState == "connected", 10)
        assert keep_consent(engine, interval_s=0.3, expiry_s=2.0) == 1
        assert keep_consent(engine) == 0  # once
        loop = asyncio.get_running_loop()
        conns = [t.sender.transport.transport._connection for t in client.getTransceivers()]
        for protocol in conns[0]._protocols:  # the client's loop is busy: it answers 1.2 s late
            handle = protocol.datagram_received

            def late(data: bytes | str, addr: tuple, handle=handle) -> None:
                loop.call_later(1.2, handle, data, addr)

            protocol.datagram_received = late  # type: ignore[method-assign]
        await asyncio.sleep(5)
        assert engine.connectionState == "connected"
        for protocol in conns[0]._protocols:  # now the client is gone without a word
            if protocol.transport is not None:
                protocol.transport.close()
        gone = time.monotonic()
        await wait_until(lambda: engine.connectionState in ("failed", "closed"), 10)
        assert time.monotonic() - gone < 2.0 + 3.5 + 1.0  # expiry, the last check's window, one interval
    finally:
        await client.close()
        await engine.close()
