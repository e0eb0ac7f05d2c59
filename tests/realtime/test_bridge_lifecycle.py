"""Bridge lifecycle: no leaks over many calls, hang-up when the browser leaves, bad keys, doc-shaped answers."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import threading
import time

import pytest
from aiortc import RTCPeerConnection
from streamlit_webrtc.pcm_source import PcmAudioSource

from realtime import loop as bg
from realtime.bridge import Bridge
from realtime.settings import CameraSettings, Settings
from tests.fakebrowser import SILENCE_RMS, BridgedCall, ReshapingProxy, wait_until
from tests.media import speech_wav

NO_CAMERA = CameraSettings(enabled=False)


class EngineCalls(logging.Handler):
    """Counts, on the engine side, the calls that ended and why (from localengine.server's log)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.ended: dict[str, tuple[str, float]] = {}
        self._logger = logging.getLogger("localengine.server")

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "call %s ended: %s" and isinstance(record.args, tuple):
            call_id, reason = record.args
            self.ended[str(call_id)] = (str(reason), time.monotonic())

    def hangups(self) -> int:
        return sum(1 for reason, _ in self.ended.values() if reason == "hung up")

    def __enter__(self) -> EngineCalls:
        self._old_level = self._logger.level
        self._logger.setLevel(logging.INFO)
        self._logger.addHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        self._logger.removeHandler(self)
        self._logger.setLevel(self._old_level)


def live_peers() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, RTCPeerConnection) and o.connectionState != "closed")


def bridge_loop_tasks() -> int:
    async def count() -> int:
        return len(asyncio.all_tasks()) - 1

    return bg.run_coro(count()).result(5)


async def test_thirty_start_stop_cycles_leave_nothing_behind(engine):
    settings = Settings(api_key="test-key", base_url=engine.base_url, camera=NO_CAMERA)

    async def cycle() -> Bridge:
        bridge = Bridge(settings, PcmAudioSource(sample_rate=48000))
        bridge.start()
        await wait_until(lambda: bridge.snapshot().state != "connecting", 20, "connect")
        assert bridge.snapshot().state == "connected", bridge.snapshot().error
        await asyncio.to_thread(bridge.close)
        assert bridge.snapshot().state == "closed" and bridge.hung_up
        return bridge

    await cycle()  # warm up the loop thread and thread pools
    threads_before = {t.name for t in threading.enumerate()}
    with EngineCalls() as calls:
        bridges = [await cycle() for _ in range(30)]
        await wait_until(lambda: calls.hangups() >= 30, 5, "30 hang-ups at the engine")
    assert calls.hangups() == 30
    assert {b.call_id for b in bridges} == set(calls.ended)
    await wait_until(lambda: engine.stats().calls == 0 and engine.stats().peer_connections == 0, 5, "engine idle")
    assert bridge_loop_tasks() == 0
    assert live_peers() == 0
    grown = {t.name for t in threading.enumerate()} - threads_before
    assert not [
        name for name in grown if not name.startswith(("asyncio_", "ThreadPoolExecutor", "realtime-bridge-worker"))
    ], grown
    assert threading.active_count() <= len(threads_before) + 2


async def test_closing_the_browser_leg_hangs_up_the_upstream_call_within_2s(engine):
    settings = Settings(api_key="test-key", base_url=engine.base_url, camera=NO_CAMERA)
    with EngineCalls() as calls:
        call = BridgedCall(settings, rgb=None)
        async with call:
            call_id = call.bridge.snapshot().call_id
            assert call_id is not None  # connected
            left = time.monotonic()
            await call.browser.close()  # the user closed the tab
            await wait_until(lambda: call_id in calls.ended, 2.0, "the engine to see the hang-up")
            reason, at = calls.ended[call_id]
            assert reason == "hung up" and at - left < 2.0
            await wait_until(lambda: call.bridge.snapshot().state == "closed", 2.0, "bridge closed")


async def test_a_bad_key_fails_with_a_clear_auth_error_and_never_leaks_the_key():
    from localengine.config import EngineConfig
    from localengine.runner import start_engine

    bad_key = "sk-wrong-0123456789abcdef"
    with start_engine(EngineConfig(accepted_keys=frozenset({"the-right-key"}))) as strict:
        bridge = Bridge(Settings(api_key=bad_key, base_url=strict.base_url), PcmAudioSource(sample_rate=48000))
        bridge.start()
        snap = await wait_until(lambda: bridge.snapshot().state == "failed" and bridge.snapshot(), 10, "failure")
        await asyncio.to_thread(bridge.close)
        assert snap.error is not None and snap.error.kind == "auth"
        assert "key" in snap.error.message.lower()
        assert bridge.snapshot().state == "failed" and strict.stats().calls == 0
        shown = repr(bridge.snapshot()) + json.dumps([e.payload for e in bridge.events.snapshot()])
        assert bad_key not in shown
    assert live_peers() == 0


@pytest.mark.parametrize("where", ["first", "session"])
async def test_an_answer_shaped_like_openais_docs_connects_and_carries_audio_both_ways(engine, tmp_path, where):
    wav = speech_wav(tmp_path / "hi.wav", "good morning", tail_silence_ms=0)
    with ReshapingProxy(engine.base_url, where=where) as proxy, EngineCalls() as calls:
        settings = Settings(api_key="test-key", base_url=proxy.base_url, camera=NO_CAMERA)
        async with BridgedCall(settings, rgb=None) as call:
            assert proxy.reshaped == 1 and call.bridge.snapshot().state == "connected"
            call.browser.speaker.mark()
            call.browser.play_wav(wav)
            # upstream: the engine heard the speech (a user audio item); downstream: its voice reached the browser
            await wait_until(
                lambda: [i for i in call.bridge.snapshot().transcript if i.role == "user" and i.kind == "audio"],
                20,
                "the engine to hear the user",
            )
            await call.browser.speaker.wait_for_audio(timeout=30)
            await asyncio.sleep(0.5)
            assert call.browser.received_rms() > SILENCE_RMS
            call_id = call.bridge.snapshot().call_id
            assert call_id is not None  # connected
        await wait_until(lambda: call_id in calls.ended, 3, "hang-up through the proxy")
        assert calls.ended[call_id][0] == "hung up"
