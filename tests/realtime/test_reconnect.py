"""A conversation survives its calls: drops reconnect with the context restored, idle calls pause.

Real parts throughout: the local engine (in process, or a child process for kill -9), a fake browser
on an aiortc leg, the Bridge on the app's loop. A drop is the engine ending the call
(``EngineState.end_call``), exactly what its session limit or a crash does to the bridge's peer.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

from realtime import local_engine
from realtime.bridge import CUT_BY_RECONNECT
from realtime.call_state import ReconnectPolicy
from realtime.settings import CameraSettings, Settings
from tests.fakebrowser import BridgedCall, wait_until
from tests.media import speech_wav

NO_CAMERA = CameraSettings(enabled=False)


def settings_for(engine, **changes) -> Settings:
    return Settings(api_key="test-key", base_url=engine.base_url, camera=NO_CAMERA, **changes)


def drop(engine, call_id: str | None) -> None:
    """The engine ends the call, as its session limit or a crash does (the peer and channel close)."""
    assert call_id is not None

    async def end() -> None:
        engine.state.end_call(call_id, "test drop")

    engine.call(end())


def replaced(call: BridgedCall) -> int:
    return len(call.bridge.snapshot().replaced)


async def reconnected(call: BridgedCall, count: int, timeout: float = 15.0) -> None:
    await wait_until(
        lambda: replaced(call) >= count and call.bridge.snapshot().state == "connected", timeout, "the reconnect"
    )


def notes(call: BridgedCall) -> list[str]:
    return [i.text for i in call.bridge.snapshot().transcript if i.role in ("system", "error")]


async def test_a_dropped_call_reconnects_by_itself_and_remembers_the_conversation(engine):
    async with BridgedCall(settings_for(engine), rgb=None) as call:
        call.bridge.send_text("my secret word is pineapple")
        await call.reply_after(0)
        first_call = call.bridge.call_id
        drop(engine, first_call)
        await reconnected(call, 1)
        snap = call.bridge.snapshot()
        assert snap.call_id not in (None, first_call)
        (change,) = snap.replaced
        assert change.kind == "reconnect" and change.restored == 2 and change.cut == 0 and change.took_s < 5
        assert any(n.startswith("Connection lost \u2014 reconnecting\u2026") for n in notes(call))
        assert f"Reconnected in {change.took_s:.1f} s \u2014 2 items restored" in notes(call)
        call.bridge.send_text("what did I say first?")
        answer = await call.reply_after(1)
        assert "you first said: my secret word is pineapple" in answer.lower()
        # the first exchange is shown once: the restored items kept their ids
        assert call.texts("user") == ["my secret word is pineapple", "what did I say first?"]
        restored = [
            e for e in call.bridge.events.snapshot() if e.direction == "client" and e.type == "conversation.item.create"
        ]
        assert len(restored) == 4  # two typed, two replayed (the Events page shows them)
        assert engine.stats().calls == 1  # the lost call is gone at the engine


async def test_a_message_typed_while_reconnecting_is_delivered_once(engine):
    async with BridgedCall(settings_for(engine), rgb=None) as call:
        call.bridge.send_text("remember the number 42")
        await call.reply_after(0)
        drop(engine, call.bridge.call_id)
        await wait_until(lambda: call.bridge.snapshot().state == "reconnecting", 5, "the loss to be seen")
        call.bridge.send_text("what did I say first?")
        answer = await call.reply_after(1, timeout=20)
        assert "you first said: remember the number 42" in answer.lower()
        assert call.texts("user") == ["remember the number 42", "what did I say first?"]


async def test_a_reply_cut_by_the_drop_is_marked_and_the_turn_ends(engine):
    async with BridgedCall(settings_for(engine), rgb=None) as call:
        call.bridge.send_text("count to 60")
        await wait_until(
            lambda: any(i.role == "assistant" and i.text for i in call.bridge.snapshot().transcript),
            20,
            "the reply to start",
        )
        drop(engine, call.bridge.call_id)
        await reconnected(call, 1)
        (reply,) = [i for i in call.bridge.snapshot().transcript if i.role == "assistant"]
        assert reply.final and reply.text.endswith(CUT_BY_RECONNECT)
        (turn,) = call.bridge.snapshot().turns
        assert turn.status == "reconnect"


async def test_two_tabs_only_the_dropped_one_reconnects(engine):
    async with BridgedCall(settings_for(engine), rgb=None) as a, BridgedCall(settings_for(engine), rgb=None) as b:
        b_call = b.bridge.call_id
        drop(engine, a.bridge.call_id)
        await reconnected(a, 1)
        await asyncio.sleep(0.5)
        assert b.bridge.call_id == b_call and replaced(b) == 0 and b.bridge.snapshot().state == "connected"
        b.bridge.send_text("hello from tab b")
        assert await b.reply_after(0)


async def test_an_idle_call_pauses_and_typing_resumes_it_with_the_context(engine):
    pause_after_s = 2.0
    settings = settings_for(engine, idle_pause_minutes=pause_after_s / 60)
    async with BridgedCall(settings, rgb=None) as call:
        call.bridge.send_text("my secret word is mango")
        await call.reply_after(0)
        began = time.monotonic()
        await wait_until(lambda: call.bridge.snapshot().state == "paused", 15, "the pause")
        assert time.monotonic() - began >= pause_after_s - 0.2
        assert call.bridge.call_id is None
        await wait_until(lambda: engine.stats().calls == 0, 5, "the paused call to be hung up")
        assert "Paused to save cost \u2014 speak, type or press Resume." in notes(call)
        call.bridge.send_text("what did I say first?")
        answer = await call.reply_after(1, timeout=20)
        assert "you first said: my secret word is mango" in answer.lower()
        assert call.bridge.snapshot().replaced[-1].kind == "resume"


async def test_attempts_that_fail_end_in_could_not_reconnect_and_the_button_works(engine):
    policy = ReconnectPolicy(max_attempts=2, base_delay_s=0.1, max_delay_s=0.1)
    settings = settings_for(engine)
    async with BridgedCall(settings, rgb=None, policy=policy) as call:
        call.bridge.send_text("my secret word is kiwi")
        await call.reply_after(0)
        good = call.bridge._applied
        # the provider becomes unreachable: nothing listens on this port
        call.bridge.update_settings(settings.replace(base_url="http://127.0.0.1:9/v1"))
        await asyncio.sleep(0.2)
        drop(engine, call.bridge.call_id)
        await wait_until(lambda: call.bridge.snapshot().state == "failed", 15, "the attempts to run out")
        snap = call.bridge.snapshot()
        assert snap.reconnectable and snap.error is not None and snap.error.message.startswith("Could not reconnect: ")
        assert engine.stats().calls == 0
        call.bridge.update_settings(good)
        await asyncio.sleep(0.2)
        call.bridge.reconnect()
        await reconnected(call, 1)
        call.bridge.send_text("what did I say first?")
        assert "kiwi" in (await call.reply_after(1)).lower()


async def test_the_apps_own_engine_dying_is_restarted_and_the_call_reconnects():
    """No key: the app's local engine child. SIGKILL it mid-conversation: a new child, the same talk."""
    try:
        async with BridgedCall(Settings(camera=NO_CAMERA), rgb=None) as call:
            assert call.bridge.snapshot().state == "connected"
            call.bridge.send_text("my secret word is lychee")
            await call.reply_after(0)
            child = await asyncio.to_thread(local_engine.ensure_local_engine)
            os.kill(child.pid, signal.SIGKILL)
            await reconnected(call, 1, timeout=60)  # the new child takes a few seconds to start
            assert (await asyncio.to_thread(local_engine.ensure_local_engine)).pid != child.pid
            call.bridge.send_text("what did I say first?")
            assert "you first said: my secret word is lychee" in (await call.reply_after(1)).lower()
    finally:
        await asyncio.to_thread(local_engine.stop_local_engine)


async def test_speaking_to_a_paused_call_wakes_it(engine, tmp_path):
    """The mic's level is measured locally: no provider is needed to notice the user talking."""
    wav = speech_wav(tmp_path / "wake.wav", "hello are you still there", lead_silence_ms=0, tail_silence_ms=1500)
    async with BridgedCall(settings_for(engine, idle_pause_minutes=1.5 / 60), rgb=None) as call:
        await wait_until(lambda: call.bridge.snapshot().state == "paused", 15, "the pause")
        await asyncio.sleep(1.0)
        assert call.bridge.snapshot().state == "paused"  # silence does not wake it
        call.browser.play_wav(wav)
        await reconnected(call, 1)
        assert call.bridge.snapshot().replaced[-1].kind == "resume"


async def test_a_tool_running_across_a_drop_answers_in_the_new_call(engine):
    async with BridgedCall(settings_for(engine), rgb=None) as call:
        call.bridge.send_text("delayed add 2 and 5")
        await wait_until(
            lambda: any(i.kind == "tool_call" and i.tool_args for i in call.bridge.snapshot().transcript),
            20,
            "the tool call",
        )
        drop(engine, call.bridge.call_id)  # while the tool runs (delayed_add takes a moment)
        await reconnected(call, 1)
        answer = await call.reply_after(0, timeout=20)
        snap = call.bridge.snapshot()
        (tool,) = [i for i in snap.transcript if i.kind == "tool_call"]
        assert tool.tool_result is not None and "7" in tool.tool_result and "7" in answer
        assert not [i for i in snap.transcript if i.role == "error"], snap.transcript
