"""What the bridge costs: mouth-to-ear latency, CPU and memory, in one run.

    .venv/bin/python bench/relay_latency.py [--turns 5] [--camera-seconds 20]

The local engine runs as a child process (`python -m localengine`), so this
process's CPU time is the fake browser plus, in the bridged run, the server's
browser leg (streamlit-webrtc tracks) and the Bridge. Runs:

1. direct: the fake browser talks to the engine itself (its own aiortc peer and
   `oai-events` channel, SDP through the SDK) -- the baseline.
2. bridged: fake browser -> ServerLeg (AudioSinkTrack / VideoSinkTrack /
   PcmAudioSource) -> Bridge -> engine, camera on.

Mouth-to-ear latency = end of the user's speech leaving the fake browser to the
first real assistant audio arriving back at it (medians over N turns). CPU is
process CPU time (user+sys) per minute of conversation; the bridge's share is
bridged minus direct, plus the bridge loop thread's own CPU from /proc. Peak
RSS per session is the highest VmRSS sampled during the bridged session minus
the VmRSS just before it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from openai import AsyncOpenAI  # noqa: E402

from realtime import loop as bg  # noqa: E402
from realtime.settings import CameraSettings, Settings  # noqa: E402
from tests.fakebrowser import BridgedCall, FakeBrowser, wait_until  # noqa: E402
from tests.media import resample_pcm16, speech_pcm24k  # noqa: E402

UTTERANCES = ("hello there", "how are you today", "tell me something nice", "good morning", "what time is it")
KEY = "bench-key"


def start_engine_child() -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "LOCALENGINE_API_KEYS": KEY}
    proc = subprocess.Popen(
        [sys.executable, "-m", "localengine", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True,
        cwd=str(Path(__file__).resolve().parents[1]),
    )
    line = proc.stdout.readline().strip() if proc.stdout else ""
    if "listening on" not in line:
        proc.kill()
        raise SystemExit(f"local engine did not start: {line!r}")
    return proc, line.rsplit(" ", 1)[-1]


def rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def thread_cpu_s(native_id: int | None) -> float:
    if native_id is None:
        return 0.0
    try:
        with open(f"/proc/self/task/{native_id}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def bridge_threads_cpu_s() -> float:
    """CPU of the bridge's own threads: the shared loop thread and its worker pool."""
    return sum(
        thread_cpu_s(t.native_id) for t in threading.enumerate() if t.name.startswith("realtime-bridge")
    )


def process_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


class RssPeak:
    def __init__(self) -> None:
        self.base = rss_kb()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, rss_kb())

    def __enter__(self) -> "RssPeak":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_kb())


async def run_turns(browser: FakeBrowser, speech: list[np.ndarray], turns: int) -> list[float]:
    latencies = []
    for n in range(turns):
        await browser.speaker.wait_quiet(1.0)
        browser.speaker.mark()
        browser.mic.say(speech[n % len(speech)])
        ended = await browser.mic.wait_spoken()
        heard = await browser.speaker.wait_for_audio(timeout=30)
        latencies.append((heard - ended) * 1000)
    await browser.speaker.wait_quiet(1.0)
    return latencies


async def hold(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def direct(base_url: str, speech, turns: int, extra_s: float):
    browser = FakeBrowser(rgb=None, data_channel=True)
    client = AsyncOpenAI(base_url=base_url, api_key=KEY, max_retries=0)
    call_id = None

    async def answer(offer: str) -> str:
        nonlocal call_id
        session = Settings(camera=CameraSettings(enabled=False)).session_payload()
        raw = await client.realtime.calls.with_raw_response.create(sdp=offer, session=session)
        call_id = (raw.headers.get("location") or "").rstrip("/").rsplit("/", 1)[-1]
        return raw.http_response.text

    await browser.connect(answer)
    await wait_until(lambda: browser.channel.readyState == "open", 20, "direct data channel")
    cpu0, t0 = process_cpu_s(), time.monotonic()
    latencies = await run_turns(browser, speech, turns)
    await hold(extra_s)
    cpu, wall = process_cpu_s() - cpu0, time.monotonic() - t0
    if call_id:
        await client.realtime.calls.hangup(call_id)
    await browser.close()
    await client.close()
    return latencies, cpu, wall


async def bridged(base_url: str, speech, turns: int, extra_s: float):
    settings = Settings(api_key=KEY, base_url=base_url, camera=CameraSettings(enabled=True, interval_s=2.0))
    with RssPeak() as rss:
        call = BridgedCall(settings, rgb=(0, 0, 255))
        async with call:
            if call.bridge.snapshot().state != "connected":
                raise SystemExit(f"bridge did not connect: {call.bridge.snapshot().error}")
            cpu0, loop0, t0 = process_cpu_s(), bridge_threads_cpu_s(), time.monotonic()
            latencies = await run_turns(call.browser, speech, turns)
            await hold(extra_s)
            cpu, loop_cpu, wall = process_cpu_s() - cpu0, bridge_threads_cpu_s() - loop0, time.monotonic() - t0
            mic = call.bridge.mic.stats()
            images = len([e for e in call.bridge.events.snapshot() if e.type == "conversation.item.create"
                          and e.payload.get("item", {}).get("content", [{}])[0].get("type") == "input_image"])
            voice = call.bridge.voice.stats()
    return latencies, cpu, loop_cpu, wall, (rss.peak - rss.base) / 1024, images, voice, mic


async def main(turns: int, extra_s: float) -> None:
    speech = [
        np.frombuffer(resample_pcm16(speech_pcm24k(text), 24_000, 48_000), dtype=np.int16) for text in UTTERANCES
    ]
    proc, base_url = start_engine_child()
    try:
        # warm-up (imports, codecs, the engine's speech models) -- not measured
        await direct(base_url, speech, 1, 0)
        d_lat, d_cpu, d_wall = await direct(base_url, speech, turns, extra_s)
        b_lat, b_cpu, b_loop, b_wall, b_rss, images, voice, mic = await bridged(base_url, speech, turns, extra_s)
    finally:
        proc.terminate()
        proc.wait(10)

    d_med, b_med = statistics.median(d_lat), statistics.median(b_lat)
    per_min = lambda cpu, wall: cpu / wall * 60  # noqa: E731
    share = per_min(b_cpu, b_wall) - per_min(d_cpu, d_wall)
    print(f"turns: {turns} per run; engine: child process at {base_url}")
    print(f"mouth-to-ear direct   (ms): median {d_med:7.1f}  all {[round(x) for x in d_lat]}")
    print(f"mouth-to-ear bridged  (ms): median {b_med:7.1f}  all {[round(x) for x in b_lat]}")
    print(f"bridge adds           (ms): median {b_med - d_med:7.1f}  ratio {b_med / d_med:.3f}  (target <= 30 ms)")
    print(f"CPU s/min, whole process, direct (fake browser only):              {per_min(d_cpu, d_wall):6.2f}")
    print(f"CPU s/min, whole process, bridged (browser + leg + bridge, camera): {per_min(b_cpu, b_wall):6.2f}")
    print(f"CPU s/min, bridged - direct (leg + bridge + camera video):          {share:6.2f}"
          f"  = {share / 60 * 100:.1f}% of one core")
    print(f"CPU s/min, bridge threads alone (loop + workers):                   {per_min(b_loop, b_wall):6.2f}"
          f"  = {per_min(b_loop, b_wall) / 60 * 100:.1f}% of one core (target <= 10%)")
    print(f"camera frames sent: {images} in {b_wall:.0f}s; voice dropped {voice.dropped_ms:.0f} ms; "
          f"mic dropped {mic.dropped_ms:.0f} ms, mic queue now {mic.queued_ms:.0f} ms")
    print(f"peak RSS per bridged session (MiB): {b_rss:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=5, help="voice turns per run (1..20)")
    parser.add_argument("--extra-seconds", type=float, default=10.0, help="idle conversation time after the turns")
    args = parser.parse_args()
    asyncio.run(main(max(1, min(args.turns, 20)), max(0.0, min(args.extra_seconds, 120.0))))
