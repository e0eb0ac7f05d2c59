"""Chaos: the provider dies, caps the session, refuses or stalls new calls, or drops the call again
and again; the conversation goes on and the user sees nothing lost or shown twice.

Loopback only, real parts: the local engine (a child process for kill -9, else in process), a fake
browser on an aiortc leg, the Bridge on the app's loop. Every test prints its reconnect times and
restored item counts on lines starting with ``CHAOS:`` (run with ``-s`` to read them).
"""

from __future__ import annotations

import asyncio
import threading
import time

from localengine.config import EngineConfig
from localengine.runner import start_engine
from realtime.bridge import CUT_BY_RECONNECT
from realtime.call_state import ReconnectPolicy
from realtime.settings import CameraSettings, Settings
from tests.chaos import EngineProcess, FlakyProxy, report, timed
from tests.fakebrowser import BridgedCall, wait_until
from tests.realtime.test_bridge_lifecycle import EngineCalls, bridge_loop_tasks, live_peers
from tests.realtime.test_reconnect import drop, reconnected, replaced

NO_CAMERA = CameraSettings(enabled=False)
SECRET = "my secret word is pineapple"
RECALL = "what did I say first?"


def settings_at(base_url: str) -> Settings:
    return Settings(api_key="test-key", base_url=base_url, camera=NO_CAMERA)


def spoken(call: BridgedCall) -> list[tuple[str, str]]:
    """(role, text) of every user and assistant item, final or not, in order."""
    return [(i.role, i.text) for i in call.bridge.snapshot().transcript if i.role in ("user", "assistant")]


def assert_no_duplicate_ids(call: BridgedCall) -> None:
    ids = [i.id for i in call.bridge.snapshot().transcript]
    assert len(ids) == len(set(ids)), ids


def current_id(call: BridgedCall) -> str:
    call_id = call.bridge.call_id
    assert call_id is not None
    return call_id


def streaming_reply(call: BridgedCall) -> bool:
    return any(i.role == "assistant" and not i.final and i.text for i in call.bridge.snapshot().transcript)


async def test_kill_9_the_engine_mid_reply_then_restart_it():
    with timed("kill-9"), EngineProcess() as engine:
        engine.start()
        async with BridgedCall(settings_at(engine.base_url), rgb=None) as call:
            assert call.bridge.snapshot().state == "connected", call.bridge.snapshot().error
            call.bridge.send_text(SECRET)
            assert (await call.reply_after(0)).lower() == f"you said: {SECRET}"
            call.bridge.send_text("count to 60")
            await wait_until(lambda: streaming_reply(call), 20, "the count to start streaming")
            killed_at = time.monotonic()
            engine.kill9()
            healthy_at = engine.start()
            print(f"CHAOS: kill-9 engine back and healthy {healthy_at - killed_at:.2f} s after the kill")
            await wait_until(lambda: call.bridge.snapshot().state != "connected", 60, "the loss to be noticed")
            noticed_at = time.monotonic()
            print(f"CHAOS: kill-9 loss noticed {noticed_at - killed_at:.2f} s after the kill")
            await reconnected(call, 1, timeout=60)
            back_at = time.monotonic()
            print(f"CHAOS: kill-9 reconnected {back_at - healthy_at:.2f} s after the engine was healthy")
            snap = call.bridge.snapshot()
            (change,) = snap.replaced
            assert change.kind == "reconnect" and change.attempts == 1
            cut = [i for i in snap.transcript if i.role == "assistant"][1]
            assert cut.final and cut.text.startswith("One, two") and cut.text.endswith(CUT_BY_RECONNECT), cut.text
            call.bridge.send_text(RECALL)
            answer = await call.reply_after(2)
            assert answer == f"You first said: {SECRET}"
            assert call.texts("user") == [SECRET, "count to 60", RECALL]
            assistant = call.texts("assistant")
            assert len(assistant) == 3 and assistant[0] == f"You said: {SECRET}" and assistant[2] == answer
            assert [role for role, _ in spoken(call)] == ["user", "assistant"] * 3
            assert_no_duplicate_ids(call)
            assert change.restored == 4  # both exchanges, the cut reply included
            assert engine.health()["calls"] == 1
            report("kill-9", snap.replaced)
        # a provider that dies without a word is noticed by the consent checks (realtime.rtc_tuning)
        assert noticed_at - killed_at < 10.0
        assert back_at - healthy_at < 10.0


def engine_conversation(engine, call_id: str | None) -> list[tuple[str, str]]:
    """(role, text) of the messages in a call's conversation at the in-process engine."""
    assert call_id is not None

    async def read() -> list[tuple[str, str]]:
        call = engine.state.calls[call_id]
        out = []
        for item in call.driver.session.items:
            if item.type == "message" and item.role in ("user", "assistant"):
                text = " ".join(p.text or p.transcript or "" for p in item.content)
                out.append((str(item.role), text))
        return out

    return engine.call(read())


async def test_the_engine_ends_the_call_at_its_session_limit_and_the_conversation_goes_on():
    with timed("session-limit"), start_engine(EngineConfig(max_session_seconds=3)) as engine:
        async with BridgedCall(settings_at(engine.base_url), rgb=None) as call:
            call.bridge.send_text(SECRET)
            assert await call.reply_after(0) == f"You said: {SECRET}"
            await reconnected(call, 1, timeout=15)  # the engine ended the first call at 3 s
            # right after a replacement: the new call has its whole 3 s for the question
            call.bridge.send_text(RECALL)
            assert await call.reply_after(1, timeout=10) == f"You first said: {SECRET}"
            count = replaced(call)
            await reconnected(call, count + 1, timeout=15)  # and the next limit: still going on
            snap = call.bridge.snapshot()
            report("session-limit", snap.replaced)
            assert all(r.kind == "reconnect" for r in snap.replaced)
            for change in snap.replaced:
                assert "maximum duration of 3 seconds" in change.reason, change.reason
            assert snap.replaced[-1].restored >= 2
            assert snap.replaced[-1].restored == 4  # both exchanges
            assert call.texts("user") == [SECRET, RECALL]
            assert call.texts("assistant") == [f"You said: {SECRET}", f"You first said: {SECRET}"]
            assert_no_duplicate_ids(call)
            assert snap.state == "connected" and snap.error is None


async def test_the_provider_refuses_new_calls_for_5s_then_accepts(engine):
    policy = ReconnectPolicy(per_minute=1000)
    with timed("refused-503"), FlakyProxy(engine.base_url) as proxy:
        async with BridgedCall(settings_at(proxy.base_url), rgb=None, policy=policy) as call:
            call.bridge.send_text(SECRET)
            assert await call.reply_after(0) == f"You said: {SECRET}"
            first = call.bridge.call_id
            window_ends = proxy.refuse_for(5.0)
            drop(engine, first)
            await reconnected(call, 1, timeout=25)
            back_at = time.monotonic()
            snap = call.bridge.snapshot()
            (change,) = snap.replaced
            report("refused-503", snap.replaced)
            print(f"CHAOS: refused-503 refused={proxy.refused} creates={proxy.creates} attempts={change.attempts}")
            assert change.kind == "reconnect" and change.attempts > 1
            assert proxy.refused == change.attempts - 1 and all(t < window_ends for t in proxy.refused_at)
            assert back_at >= window_ends  # the call that worked was placed after the window
            assert 5.0 <= change.took_s <= 12.5, change.took_s
            assert change.restored == 2 and snap.state == "connected" and snap.error is None
            assert snap.call_id not in (None, first)
            call.bridge.send_text(RECALL)
            assert await call.reply_after(1) == f"You first said: {SECRET}"
            assert call.texts("user") == [SECRET, RECALL]
            assert_no_duplicate_ids(call)
            assert engine.stats().calls == 1


async def test_a_slow_calls_create_delays_the_reconnect_and_a_message_typed_meanwhile_goes_once(engine):
    with timed("slow-create"), FlakyProxy(engine.base_url) as proxy:
        async with BridgedCall(settings_at(proxy.base_url), rgb=None) as call:
            call.bridge.send_text(SECRET)
            assert await call.reply_after(0) == f"You said: {SECRET}"
            proxy.create_delay_s = 5.0
            drop(engine, call.bridge.call_id)
            await wait_until(lambda: call.bridge.snapshot().state == "reconnecting", 5, "the loss to be seen")
            call.bridge.send_text(RECALL)  # typed while the new call is being placed
            await reconnected(call, 1, timeout=25)
            answer = await call.reply_after(1, timeout=15)
            snap = call.bridge.snapshot()
            (change,) = snap.replaced
            report("slow-create", snap.replaced)
            assert change.attempts == 1 and proxy.creates == 2 and proxy.refused == 0
            assert 5.0 <= change.took_s < 15.0, change.took_s
            assert change.restored == 2  # the typed message is not part of the restore: it went once, after
            assert answer == f"You first said: {SECRET}"
            await asyncio.sleep(0.5)  # nothing more is coming (a second reply would show here)
            assert call.texts("user") == [SECRET, RECALL]
            assert call.texts("assistant") == [f"You said: {SECRET}", answer]
            assert_no_duplicate_ids(call)
            sent = [
                e
                for e in call.bridge.events.snapshot()
                if e.direction == "client"
                and e.type == "conversation.item.create"
                and RECALL in str(e.payload.get("item", {}).get("content"))
            ]
            assert len(sent) == 1
            assert engine_conversation(engine, snap.call_id) == [
                ("user", SECRET),
                ("assistant", f"You said: {SECRET}"),
                ("user", RECALL),
                ("assistant", answer),
            ]


async def test_fifty_drops_in_one_conversation_lose_nothing_and_leak_nothing(engine):
    policy = ReconnectPolicy(per_minute=1000)
    settings = settings_at(engine.base_url)
    with timed("fifty-drops"):
        async with BridgedCall(settings, rgb=None) as warm:  # warm up the loop, thread pools, speech workers
            warm.bridge.send_text("warm up")
            await warm.reply_after(0)
        await wait_until(lambda: engine.stats().calls == 0, 5, "the warm-up call to end")
        threads_before = {t.name for t in threading.enumerate()}
        users: list[str] = []
        replies: list[str] = []
        with EngineCalls() as ended:
            async with BridgedCall(settings, rgb=None, policy=policy) as call:
                call_ids = [current_id(call)]
                for cycle in range(50):
                    if cycle % 10 == 0:
                        text = f"note {cycle} is kept"
                        call.bridge.send_text(text)
                        users.append(text)
                        replies.append(await call.reply_after(len(replies)))
                        assert replies[-1] == f"You said: {text}"
                    drop(engine, call.bridge.call_id)
                    await reconnected(call, cycle + 1)
                    call_ids.append(current_id(call))
                call.bridge.send_text(RECALL)
                users.append(RECALL)
                replies.append(await call.reply_after(len(replies)))
                assert replies[-1] == "You first said: note 0 is kept"
                snap = call.bridge.snapshot()
                _median, worst = report("fifty-drops", snap.replaced)
                assert worst < 5.0  # each reconnect is one attempt, at once
                assert len(snap.replaced) == 50 and all(r.kind == "reconnect" for r in snap.replaced)
                assert [r.restored for r in snap.replaced] == [2 * ((n // 10) + 1) for n in range(50)]
                assert call.texts("user") == users
                assert call.texts("assistant") == replies
                assert [role for role, _ in spoken(call)] == ["user", "assistant"] * len(users)
                assert_no_duplicate_ids(call)
                stats = engine.stats()
                assert stats.calls == 1 and stats.peer_connections == 1
                assert engine_conversation(engine, snap.call_id) == [
                    (role, text)
                    for pair in zip(users, replies, strict=True)
                    for role, text in zip(("user", "assistant"), pair, strict=True)
                ]
                last = current_id(call)
            assert len(set(call_ids)) == 51
            await wait_until(lambda: last in ended.ended, 5, "the last call to be hung up")
            assert ended.ended[last][0] == "hung up"
            assert all(ended.ended[c][0] in ("test drop", "hung up") for c in call_ids), ended.ended
        await wait_until(lambda: engine.stats().calls == 0 and engine.stats().peer_connections == 0, 5, "engine idle")
        assert bridge_loop_tasks() == 0
        assert live_peers() == 0
        grown = {t.name for t in threading.enumerate()} - threads_before
        allowed = ("asyncio_", "ThreadPoolExecutor", "realtime-bridge-worker", "localengine-speech")
        assert not [name for name in grown if not name.startswith(allowed)], grown
        assert threading.active_count() <= len(threads_before) + 2
