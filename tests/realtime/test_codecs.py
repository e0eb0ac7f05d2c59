"""realtime.codecs: the upstream offer carries only the chosen codec, and the answer says what was agreed."""

from __future__ import annotations

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from realtime.codecs import CODECS, negotiated_codec, offer_only


@pytest.mark.parametrize(("codec", "name"), [("opus", "opus"), ("pcmu", "PCMU"), ("pcma", "PCMA")])
async def test_the_offer_holds_only_the_chosen_codec_and_the_answer_agrees(codec, name):
    offerer, answerer = RTCPeerConnection(), RTCPeerConnection()
    try:
        offer_only(offerer.addTransceiver("audio", direction="sendrecv"), codec)
        await offerer.setLocalDescription(await offerer.createOffer())
        offer = offerer.localDescription.sdp
        audio_codecs = {line.split()[1].split("/")[0] for line in offer.splitlines() if line.startswith("a=rtpmap:")}
        assert audio_codecs == {name}
        await answerer.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        await answerer.setLocalDescription(await answerer.createAnswer())
        assert negotiated_codec(answerer.localDescription.sdp) == name
    finally:
        await offerer.close()
        await answerer.close()


def test_negotiated_codec_of_nothing_or_garbage_is_none():
    assert negotiated_codec(None) is None
    assert negotiated_codec("") is None
    assert negotiated_codec("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\n") is None
    assert CODECS[0] == "opus"  # the default comes first
