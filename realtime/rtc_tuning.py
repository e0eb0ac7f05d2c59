"""Low-latency audio receive for aiortc peers: the one place that touches aiortc's jitter buffer.

aiortc (1.x, pinned) gives every audio ``RTCRtpReceiver`` a ``JitterBuffer(capacity=16,
prefetch=4)``: a frame is handed to the decoder only once 4 more frames are stored behind
it, so each receive hop holds about 80 ms (and even with ``prefetch=1`` a frame waits for
the next packet: 20 ms). A bridged conversation has two more receive hops than a direct one
(the server's browser leg receiving the mic, the bridge receiving the voice), so that was
~160 ms of the bridge's added latency.

An audio RTP packet is a whole frame (Opus: one frame per packet), so nothing needs to be
assembled: `ImmediateAudioBuffer` hands each packet to the decoder as it arrives, in order.
A packet older than the newest one seen is dropped (on loopback and datacentre links
reordering is rare; a dropped late packet is a 20 ms gap, exactly what a lost one is), and
the queues behind these hops (MicTrack, VoiceOut's buffer, the browser's own playout)
absorb arrival jitter anyway.

aiortc has no public knob for this. The buffer is the name-mangled private attribute
``RTCRtpReceiver._RTCRtpReceiver__jitter_buffer``, used only as ``.add(packet) ->
(pli_flag, JitterFrame | None)`` in ``_handle_rtp_packet``. `tune_receiver` checks it is
there and raises `RtcTuningError` otherwise (tests pin the aiortc source this relies on, so
an upgrade that changes it fails loudly instead of silently restoring the latency).
Replacing it mid-stream loses at most the few packets the old buffer held, once.

The app applies it to its streamlit-webrtc leg with `tune_streamlit_webrtc(ctx)` (the
``webrtc_streamer`` context, once ``ctx.state.playing``); the Bridge tunes its own peer.

`watch_consent(pc)` is the other knob. On the Bridge's call to the provider: a provider that dies
without a word (a crash, a cable pulled) sends nothing that ends the call, and aioice's consent
freshness checks (RFC 7675: every 5 s, 6 misses) take about 30 s to give up, measured with kill -9
of the local engine. A reconnect cannot start before that. The watch replaces the connection's
consent task (``aioice.Connection._query_consent_task``, the same STUN binding requests) with one
that checks every second, gives each check 3.5 s (two retransmissions) to be answered, and gives
up after 4 unanswered checks in a row, if the peer has also sent nothing at all for 3 s: about
7.5 s after the provider died (kill -9 of the local engine: noticed after 7.5 s).

A provider that is only slow keeps its call. With 4 Chromium tabs saturating these 2 cores, our
loops fell seconds behind their sockets: the answers sat behind seconds of the provider's media in
our own socket queue (or were dropped with it when the queue filled), so 4 checks in a row went
unanswered while the media kept coming, and the calls were dropped and reconnected (3-8 per 30 s).
Media still arriving is proof enough that the peer is there. On a link losing 5 % of packets a
check goes unanswered once in ~1000, four in a row practically never.

`tune_streamlit_webrtc` gives the browser leg the same watch at RFC 7675's pace (every 5 s, 6
misses), with the same 3.5 s per answer and "heard at all" rule: aioice's own gives each answer
0.5 s, so a server loop that runs that late for 30 s would close the leg itself. (The tabs' calls
that ended under load were hung up by the page, not by this: see ui.leg_steady.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import weakref
from collections.abc import Callable
from typing import Any

from aioice import Connection, stun
from aiortc import RTCPeerConnection, RTCRtpReceiver
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket
from aiortc.utils import uint16_add

from realtime.opus_track import SILENCE_MAX_BYTES

__all__ = [
    "ImmediateAudioBuffer",
    "RtcTuningError",
    "tune_peer_connection",
    "tune_receiver",
    "tune_streamlit_webrtc",
    "watch_consent",
]

log = logging.getLogger(__name__)

_ATTR = "_RTCRtpReceiver__jitter_buffer"
_MAX_MISORDER = 100  # as aiortc: a packet this far "behind" means the stream restarted


class RtcTuningError(RuntimeError):
    """aiortc's receiver no longer looks like the version this module was written for."""


class ImmediateAudioBuffer(JitterBuffer):
    """A zero-delay stand-in for aiortc's audio JitterBuffer: each in-order packet is a frame.

    With ``quiet_after`` > 0, a steady run of silence is not handed on past its first ``quiet_after``
    packets: the same tiny payload (at most `SILENCE_MAX_BYTES`, an Opus silence frame or the TOC byte
    alone of a DTX frame: no speech fits in it) again and again. A provider sends one every 20 ms while
    it listens, most of a call; each cost the receiver a decode in its thread, a hop to the loop
    (``run_coroutine_threadsafe``: a task per frame) and the relay's per-frame work, to produce zeros
    that `realtime.voice_out.VoiceOut` then does not queue anyway (it queues silence only within its
    hangover of speech). The first packet that differs is handed on at once. The decoder sees a gap in
    the stream, exactly as after a DTX pause."""

    def __init__(self, *, quiet_after: int = 0) -> None:
        super().__init__(capacity=16, prefetch=0)
        if quiet_after < 0:
            raise ValueError(f"quiet_after must be >= 0, got {quiet_after!r}")
        self._newest: int | None = None
        self._quiet_after = quiet_after
        self._quiet: bytes | None = None  # the silence payload of the current run
        self._quiet_run = 0
        self.dropped_late = 0
        self.skipped_quiet = 0  # silence packets not handed on

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        seq = packet.sequence_number
        if self._newest is not None:
            ahead = uint16_add(seq, -self._newest)
            behind = uint16_add(self._newest, -seq)
            if ahead == 0 or (behind < ahead and behind < _MAX_MISORDER):
                self.dropped_late += 1  # a duplicate, or later than a newer packet: too late to play
                return False, None
        self._newest = seq
        data = packet._data  # type: ignore[attr-defined]
        if self._quiet_after:
            if len(data) <= SILENCE_MAX_BYTES and data == self._quiet:
                self._quiet_run += 1
                if self._quiet_run > self._quiet_after:
                    self.skipped_quiet += 1
                    return False, None
            else:
                self._quiet, self._quiet_run = (bytes(data), 1) if len(data) <= SILENCE_MAX_BYTES else (None, 0)
        return False, JitterFrame(data=data, timestamp=packet.timestamp)


def tune_receiver(receiver: RTCRtpReceiver, *, quiet_after: int = 0) -> bool:
    """Give an audio receiver the zero-delay buffer (``quiet_after``: see `ImmediateAudioBuffer`).
    Returns False for video (left alone)."""
    if not isinstance(receiver, RTCRtpReceiver):
        raise TypeError(f"tune_receiver() takes an aiortc RTCRtpReceiver, got {type(receiver).__name__}")
    buffer = getattr(receiver, _ATTR, None)
    if not isinstance(buffer, JitterBuffer):
        raise RtcTuningError(
            f"aiortc's RTCRtpReceiver has no JitterBuffer at {_ATTR}; "
            "realtime/rtc_tuning.py must be updated for this aiortc version"
        )
    if isinstance(buffer, ImmediateAudioBuffer):
        return True
    if getattr(buffer, "_is_video", False) or getattr(receiver, "_RTCRtpReceiver__kind", "audio") != "audio":
        return False
    setattr(receiver, _ATTR, ImmediateAudioBuffer(quiet_after=quiet_after))
    return True


def tune_peer_connection(pc: RTCPeerConnection, *, quiet_after: int = 0) -> int:
    """Tune every audio receiver of ``pc`` (call again after new transceivers). Returns how many."""
    return sum(tune_receiver(r, quiet_after=quiet_after) for r in pc.getReceivers())


def tune_streamlit_webrtc(ctx: Any) -> int:
    """Tune the server side of a streamlit-webrtc leg (its ``webrtc_streamer(...)`` context): its audio
    receive, and its voice sent as Opus packets (``realtime.voice_source.send_voice_as_opus``).

    streamlit-webrtc (0.79) keeps the peer on its worker (``ctx._get_worker().pc``), with no
    public accessor. Returns the number of audio receivers tuned (0 when no worker is
    running yet: call it when ``ctx.state.playing``; repeating it is cheap and harmless).
    Never raises into the page: a mismatch is logged once per call and 0 returned.
    """
    try:
        worker = ctx._get_worker()
        pc = getattr(worker, "pc", None) if worker is not None else None
        if not isinstance(pc, RTCPeerConnection):
            return 0
        from realtime.voice_source import send_voice_as_opus

        send_voice_as_opus(pc, getattr(worker, "source_audio_track", None))  # the voice, as given to the worker
        loop = getattr(worker, "_loop", None)
        if isinstance(loop, asyncio.AbstractEventLoop) and not loop.is_closed():
            loop.call_soon_threadsafe(_watch_browser_consent, pc)
        return tune_peer_connection(pc)
    except Exception as exc:
        log.warning("could not tune the browser leg's audio receive: %s", exc)
        return 0


CONSENT_INTERVAL_S = 1.0
CONSENT_MISSES = 4
# A check's request is sent again after 0.5 s and 1.5 s (aioice's RTO, doubling), and fails after 3.5 s.
CONSENT_RETRANSMISSIONS = 2
# Consent is kept while the peer is heard at all: a packet or a check of its own within this long.
HEARD_WITHIN_S = 3.0
# The browser leg: RFC 7675's pace (a tab that is gone also closes its page's WebSocket, which ends
# the leg sooner), with the same late-answer window and "heard at all" rule.
BROWSER_CONSENT_INTERVAL_S = 5.0
BROWSER_CONSENT_MISSES = 6
_CONSENT_ATTRS = (
    "_query_consent_task",
    "_nominated",
    "build_request",
    "remote_password",
    "close",
    "data_received",
    "request_received",
)


_WATCHED: weakref.WeakSet[Connection] = weakref.WeakSet()


def _ice_connections(pc: RTCPeerConnection) -> list[Connection]:
    found: list[Connection] = []
    for transceiver in pc.getTransceivers():
        dtls = transceiver.sender.transport
        conn = getattr(getattr(dtls, "transport", None), "_connection", None)
        if isinstance(conn, Connection) and conn not in found:
            found.append(conn)
    return found


def _last_heard(conn: Connection) -> Callable[[], float]:
    """Note when the peer was last heard on ``conn`` (a packet, or a STUN request of its own);
    returns a reader of that ``time.monotonic()``. aioice's protocols call these two methods of
    the connection for every datagram that is not an answer to us."""
    heard = [time.monotonic()]
    data_received, request_received = conn.data_received, conn.request_received

    def on_data(data: bytes, component: int) -> None:
        heard[0] = time.monotonic()
        data_received(data, component)

    def on_request(*args: Any) -> None:
        heard[0] = time.monotonic()
        request_received(*args)

    conn.data_received = on_data  # type: ignore[method-assign]
    conn.request_received = on_request  # type: ignore[method-assign,assignment]
    return lambda: heard[0]


async def _check_consent(conn: Connection, interval_s: float, misses_allowed: int) -> None:
    """aioice's ``query_consent`` loop with our interval and limit (see the module docstring).

    Checks go out every ``interval_s`` without waiting for the previous one, and each waits up to
    3.5 s for its answer: a provider whose loop is busy for a second or two (a loaded machine)
    answers late, and a late answer is an answer. Consent is lost only when ``misses_allowed``
    checks in a row went unanswered *and* nothing at all came from the peer for ``HEARD_WITHIN_S``:
    on a loaded machine the answers queue behind seconds of media in our own socket, while the
    media itself shows the peer is there."""
    misses = 0
    gone = asyncio.Event()
    checks: set[asyncio.Task[None]] = set()
    last_heard = _last_heard(conn)

    async def check(pair: Any) -> None:
        nonlocal misses
        request = conn.build_request(pair, nominate=False)
        try:
            await pair.protocol.request(
                request,
                pair.remote_addr,
                integrity_key=(conn.remote_password or "").encode("utf8"),
                retransmissions=CONSENT_RETRANSMISSIONS,
            )
            misses = 0
        except stun.TransactionError:
            misses += 1
            if misses >= misses_allowed and time.monotonic() - last_heard() > HEARD_WITHIN_S:
                gone.set()

    try:
        while not gone.is_set():
            with contextlib.suppress(asyncio.TimeoutError):  # randomized, as RFC 7675 asks
                await asyncio.wait_for(gone.wait(), interval_s * (0.8 + 0.4 * random.random()))
            if gone.is_set():
                break
            for pair in list(conn._nominated.values()):
                task = asyncio.ensure_future(check(pair))
                checks.add(task)
                task.add_done_callback(checks.discard)
        log.info("no answer to %d consent checks in a row and nothing heard: the peer is gone", misses)
        pending = _cancel(checks)  # before the sockets close: a check's retransmission would send on a closed one
        await asyncio.gather(*pending, return_exceptions=True)
        conn._query_consent_task = None  # close() must not cancel the task running it
        await conn.close()
    finally:
        _cancel(checks)


def _cancel(checks: set[asyncio.Task[None]]) -> list[asyncio.Task[None]]:
    pending = list(checks)
    for task in pending:
        task.cancel()
    return pending


def _watch_browser_consent(pc: RTCPeerConnection) -> None:
    try:
        watch_consent(pc, BROWSER_CONSENT_INTERVAL_S, BROWSER_CONSENT_MISSES)
    except RtcTuningError as exc:
        log.warning("%s", exc)


def watch_consent(pc: RTCPeerConnection, interval_s: float = CONSENT_INTERVAL_S, misses: int = CONSENT_MISSES) -> int:
    """Check the peer's consent every ``interval_s`` instead of every 5 s; call once ICE is connected
    (``connectionState == "connected"``). Returns how many ICE connections it watches."""
    watched = 0
    for conn in _ice_connections(pc):
        if not all(hasattr(conn, name) for name in _CONSENT_ATTRS):
            raise RtcTuningError(
                "aioice's Connection has no consent task to replace; realtime/rtc_tuning.py must be "
                "updated for this aioice version"
            )
        task = conn._query_consent_task
        if task is None or task.done() or conn in _WATCHED:
            continue  # not connected yet, already given up, or already ours
        _WATCHED.add(conn)
        task.cancel()
        conn._query_consent_task = asyncio.ensure_future(_check_consent(conn, interval_s, misses))
        watched += 1
    return watched
