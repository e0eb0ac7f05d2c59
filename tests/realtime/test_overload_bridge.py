"""A real call says its audio is choppy while the server is overloaded, and only then.

The fake browser talks to the local engine through the Bridge; the overload is real CPU work (holding
the GIL, as a busy server does) keeping one of the loops that carry the media busy most of the time:
the bridge's loop, or the browser leg's (here the test's loop, where the ServerLeg's streamlit-webrtc
tracks run, as they run on the Streamlit server's loop in the app)."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import time

import pytest

from realtime import loop as bg
from realtime.overload import DEFAULT_POLICY
from realtime.settings import CameraSettings, Settings
from tests.fakebrowser import BridgedCall, wait_until
from tests.realtime.test_shutdown import busy_loop

NO_CAMERA = CameraSettings(enabled=False)
STARVE_S = 8.0  # long enough to trip (3 s of bad seconds in 5) with seconds to spare
BUSY_S, EVERY_S = 0.08, 0.1  # 80 % of the time: far over every limit (at most 10 % of the time)


def local_events(call: BridgedCall) -> list[str]:
    return [e.type for e in call.bridge.events.snapshot() if e.direction == "local"]


# A process that works like a media loop (2 ms of CPU every 10 ms) and adds up how late it wakes.
PROBE = textwrap.dedent(
    """
    import sys, time
    end = time.perf_counter() + float(sys.argv[1]); behind = 0.0
    while time.perf_counter() < end:
        busy = time.perf_counter() + 0.002
        while time.perf_counter() < busy:
            pass
        t = time.perf_counter(); time.sleep(0.008); late = time.perf_counter() - t - 0.008
        if late > 0.02:
            behind += late
    print(behind)
    """
)
MACHINE_BUSY = 0.02  # the probe slept late 2 % of the time: other work on the machine makes calls choppy


class MachineProbe:
    """Measures, in a separate process, whether the machine itself was overloaded for ``seconds``
    (other work on it): then a call is choppy here too, and a test cannot tell the two apart."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> MachineProbe:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", PROBE, str(self.seconds), stdout=asyncio.subprocess.PIPE
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()
            await self._proc.wait()

    async def busy_share(self) -> float:
        assert self._proc is not None
        out, _ = await self._proc.communicate()
        return float(out) / self.seconds


@pytest.mark.parametrize("starved", ["bridge loop", "browser leg loop"])
async def test_a_starved_media_loop_makes_the_call_say_choppy_and_it_clears_after(engine, starved):
    settings = Settings(api_key="test-key", base_url=engine.base_url, camera=NO_CAMERA)
    async with BridgedCall(settings, rgb=None) as call:
        bridge = call.bridge
        assert bridge.snapshot().state == "connected"
        bridge.send_text("count to 60")  # the assistant talks through it
        await wait_until(lambda: bridge.snapshot().activity == "assistant_speaking", 20, "the reply")
        # (should other work on the machine have tripped it already, it clears first)
        await wait_until(lambda: bridge.snapshot().overloaded is None, DEFAULT_POLICY.clear_s + 5, "a clean start")
        logged = len(local_events(call))
        loop = bg.get_loop() if starved == "bridge loop" else asyncio.get_running_loop()
        started = time.monotonic()
        with busy_loop(loop, BUSY_S, EVERY_S):
            why = await wait_until(lambda: bridge.snapshot().overloaded, STARVE_S, "the call to say it is overloaded")
            while time.monotonic() - started < STARVE_S:  # it holds while the load lasts
                assert bridge.snapshot().overloaded is not None
                await asyncio.sleep(0.1)
        assert why.endswith("of the last 5 s"), why
        ended = time.monotonic()
        async with MachineProbe(DEFAULT_POLICY.clear_s + 5) as machine:
            try:
                await wait_until(
                    lambda: bridge.snapshot().overloaded is None, DEFAULT_POLICY.clear_s + 5, "the warning to clear"
                )
            except AssertionError:
                busy = await machine.busy_share()
                if busy > MACHINE_BUSY:
                    pytest.skip(f"the machine was overloaded by other work (a probe slept late {busy:.0%} of the time)")
                raise
        assert time.monotonic() - ended >= DEFAULT_POLICY.clear_s - 2.5  # held for the clean seconds
        assert bridge.snapshot().state == "connected"
        assert local_events(call)[logged:] == ["local.overloaded", "local.overload_cleared"]


async def test_a_normal_call_with_a_long_reply_never_says_choppy(engine):
    """From the first second of the call, through a reply and the silence after it. A separate process
    measures the machine meanwhile: when the machine itself was starved (other work on it), a call is
    choppy there too, and the test says so instead of passing or failing."""
    call_s = 20.0
    seen: list[str] = []
    settings = Settings(api_key="test-key", base_url=engine.base_url, camera=NO_CAMERA)
    started = time.monotonic()
    async with MachineProbe(call_s) as machine, BridgedCall(settings, rgb=None) as call:
        bridge = call.bridge
        assert bridge.snapshot().state == "connected"
        bridge.send_text("count to 20")
        while time.monotonic() - started < call_s:
            reason = bridge.snapshot().overloaded
            if reason is not None:
                seen.append(reason)
            await asyncio.sleep(0.05)
        assert any(i.role == "assistant" and i.final for i in bridge.snapshot().transcript)
        voice = bridge.voice.stats()
        busy = await machine.busy_share()
    if seen and busy > MACHINE_BUSY:
        pytest.skip(f"the machine was overloaded by other work (a probe slept late {busy:.0%} of the time)")
    assert seen == [], (seen, busy)
    assert "local.overloaded" not in local_events(call)
    assert voice.pushed_ms > 3000  # the reply did play
