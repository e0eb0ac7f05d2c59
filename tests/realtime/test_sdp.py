"""normalize_answer: real aiortc offers/answers, reshaped like OpenAI's documented answer."""

from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from realtime.sdp import normalize_answer
from tests.fakebrowser import SILENCE_RMS, ToneTrack, openai_shaped_answer, rms


async def _offer_and_answer(offer_direction: str = "sendrecv", with_answer_track: bool = True):
    """A real aiortc offer (audio + oai-events channel) and a real aiortc answer."""
    caller, callee = RTCPeerConnection(), RTCPeerConnection()
    if offer_direction in ("sendrecv", "sendonly"):
        caller.addTransceiver(ToneTrack(440), direction=offer_direction)
    else:
        caller.addTransceiver("audio", direction=offer_direction)
    caller.createDataChannel("oai-events")
    await caller.setLocalDescription(await caller.createOffer())

    @callee.on("track")
    def _on_track(track):
        if with_answer_track:
            callee.addTrack(ToneTrack(660))

    await callee.setRemoteDescription(caller.localDescription)
    await callee.setLocalDescription(await callee.createAnswer())
    return caller, callee


def _lines(sdp: str, section: int) -> list[str]:
    parts = sdp.replace("\r\n", "\n").split("\nm=")
    return parts[section].split("\n")


async def test_documented_answer_is_rejected_by_aiortc_without_normalizing():
    caller, callee = await _offer_and_answer()
    try:
        shaped = openai_shaped_answer(callee.localDescription.sdp, where="first")
        with pytest.raises(ValueError, match="ICE"):
            await caller.setRemoteDescription(RTCSessionDescription(sdp=shaped, type="answer"))
    finally:
        await caller.close()
        await callee.close()


async def test_session_level_answer_without_direction_leaves_transceiver_mute():
    caller, callee = await _offer_and_answer()
    try:
        shaped = openai_shaped_answer(callee.localDescription.sdp, where="session")
        await caller.setRemoteDescription(RTCSessionDescription(sdp=shaped, type="answer"))
        # aiortc accepts it but neither sends nor receives: the fact normalize_answer fixes
        assert caller.getTransceivers()[0].currentDirection is None
    finally:
        await caller.close()
        await callee.close()


@pytest.mark.parametrize("where", ["session", "first"])
def test_every_media_section_gets_transport_attributes_and_direction(where):
    async def run():
        caller, callee = await _offer_and_answer()
        try:
            return caller.localDescription.sdp, callee.localDescription.sdp
        finally:
            await caller.close()
            await callee.close()

    offer, answer = asyncio.run(run())
    shaped = openai_shaped_answer(answer, where=where)
    fixed = normalize_answer(offer, shaped)
    for section in (1, 2):
        lines = _lines(fixed, section)
        assert sum(line.startswith("a=ice-ufrag:") for line in lines) == 1
        assert sum(line.startswith("a=ice-pwd:") for line in lines) == 1
        assert sum(line.startswith("a=fingerprint:") for line in lines) == 1
        assert sum(line.startswith("a=setup:") for line in lines) == 1
    assert "a=sendrecv" in _lines(fixed, 1)
    # the data channel section gets no RTP direction
    assert not any(line in ("a=sendrecv", "a=recvonly") for line in _lines(fixed, 2))
    # mids and BUNDLE intact, same order, nothing lost
    assert "a=group:BUNDLE 0 1" in fixed
    assert [line for line in fixed.split("\r\n") if line.startswith("a=mid:")] == ["a=mid:0", "a=mid:1"]
    for line in shaped.replace("\r\n", "\n").split("\n"):
        assert line in fixed.split("\r\n")
    # idempotent and leaves complete answers alone
    assert normalize_answer(offer, fixed) == fixed
    assert normalize_answer(offer, answer).split("\r\n") == [
        line for line in answer.replace("\r\n", "\n").split("\n") if line
    ] + [""]


@pytest.mark.parametrize(
    ("offered", "expected"),
    [("sendrecv", "a=sendrecv"), ("sendonly", "a=recvonly"), ("recvonly", "a=sendonly")],
)
async def test_direction_is_the_complement_of_the_offer(offered, expected):
    caller, callee = await _offer_and_answer(offer_direction=offered)
    try:
        shaped = openai_shaped_answer(callee.localDescription.sdp)
        fixed = normalize_answer(caller.localDescription.sdp, shaped)
        assert expected in _lines(fixed, 1)
    finally:
        await caller.close()
        await callee.close()


async def test_normalized_documented_answer_connects_and_carries_audio_both_ways():
    caller, callee = await _offer_and_answer()
    got = {"caller": asyncio.Event(), "callee": asyncio.Event(), "channel": asyncio.Event()}

    async def drain(track, name):
        while not got[name].is_set():
            frame = await track.recv()
            if rms(frame.to_ndarray()) > SILENCE_RMS:
                got[name].set()

    caller.on("track", lambda track: asyncio.ensure_future(drain(track, "caller")))
    drains = []  # kept referenced while they run
    for transceiver in callee.getTransceivers():
        if transceiver.receiver.track is not None:
            drains.append(asyncio.ensure_future(drain(transceiver.receiver.track, "callee")))
    callee.on("datachannel", lambda channel: got["channel"].set())
    try:
        shaped = openai_shaped_answer(callee.localDescription.sdp, where="first")
        fixed = normalize_answer(caller.localDescription.sdp, shaped)
        await caller.setRemoteDescription(RTCSessionDescription(sdp=fixed, type="answer"))
        assert caller.getTransceivers()[0].currentDirection == "sendrecv"
        await asyncio.wait_for(asyncio.gather(*(event.wait() for event in got.values())), timeout=10)
    finally:
        await caller.close()
        await callee.close()


def test_bad_input_gets_a_clear_message():
    with pytest.raises(ValueError, match="not an SDP"):
        normalize_answer("v=0\r\n", "<html>502 Bad Gateway</html>")
    no_ice = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n"
    with pytest.raises(ValueError, match="no ICE credentials"):
        normalize_answer(no_ice, no_ice)
