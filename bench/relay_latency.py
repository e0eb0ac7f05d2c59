"""What the bridge costs: mouth-to-ear latency (with a per-hop breakdown), CPU and memory, in one run.

    .venv/bin/python bench/relay_latency.py [--rounds 4] [--turns-per-round 2] [--idle-seconds 4]

The local engine runs as a child process (`python -m localengine`), so this
process's CPU time is the fake browser plus, in the bridged sessions, the
server's browser leg (streamlit-webrtc tracks) and the Bridge. Two kinds of
session, interleaved round by round (direct, bridged, direct, bridged, ...) so
that whatever else loads the machine weighs on both alike:

1. direct: the fake browser talks to the engine itself (its own aiortc peer and
   `oai-events` channel, SDP through the SDK) -- the baseline.
2. bridged: fake browser -> ServerLeg (AudioSinkTrack / VideoSinkTrack /
   PcmAudioSource, tuned as the app is asked to tune its streamlit-webrtc leg:
   realtime.rtc_tuning.tune_streamlit_webrtc and realtime.voice_source.just_in_time;
   --no-leg-tuning leaves it as streamlit-webrtc sets it up) -> Bridge -> engine,
   camera on.

Mouth-to-ear latency = end of the user's speech leaving the fake browser to the
first real assistant audio arriving back at it. The fake browser's own receiver
("ear") is the same in both paths; by default it hands each packet on as it
arrives (realtime.rtc_tuning; --ear-default for aiortc's buffer): aiortc's
buffer holds a *paced* stream 80 ms but a *bursty* one hardly at all, and the
engine sends bursts whenever its loop falls behind while the bridged path
re-paces the voice, so it would charge the bridge ~60 ms that only the
measuring instrument adds. Per turn the bench also stamps
where the end of speech and the start of the reply are on the way (probes wrap
the tracks' recv/push; nothing in the product is changed for them), so the
difference is attributed to hops, not guessed:

  mic:   end of speech -> last voiced frame into the server leg's sink ->
         out of MicTrack (upstream) -> `speech_stopped` received from the engine
  voice: `output_audio_buffer.started` received (the engine began playing) ->
         first voiced frame into VoiceOut -> out of the PcmAudioSource track ->
         heard by the fake browser

CPU is process CPU time (user+sys) per minute of session; the bridge threads'
own CPU (loop + worker pool) is read from /proc. Peak RSS per session is the
highest VmRSS sampled during a bridged session minus VmRSS just before it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from openai import AsyncOpenAI
from openai.types.realtime import RealtimeSessionCreateRequestParam

from realtime.settings import CameraSettings, Settings
from tests.fakebrowser import SILENCE_RMS, BridgedCall, FakeBrowser, rms, wait_until
from tests.media import resample_pcm16, speech_pcm24k

UTTERANCES = ("hello there", "how are you today", "tell me something nice", "good morning", "what time is it")
KEY = "bench-key"
TURN_TIMEOUT_S = 30.0
TUNE_LEG = True  # --no-leg-tuning: measure the leg as streamlit-webrtc leaves it
CAMERA = True  # --no-camera: bridged sessions without the camera (to see what its CPU load costs)
EAR_TUNED = True  # the fake browser's own receive, the same in both paths (--ear-default: aiortc's)
HISTORY = None  # --history: a HistoryStore that records every bridged session, as the app does


def start_engine_child() -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "LOCALENGINE_API_KEYS": KEY}
    proc = subprocess.Popen(
        [sys.executable, "-m", "localengine", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
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
    return sum(thread_cpu_s(t.native_id) for t in threading.enumerate() if t.name.startswith("realtime-bridge"))


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

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_kb())


# ---------------------------------------------------------------------------- probes


class VoicedProbe:
    """Times (monotonic) at which a voiced frame (rms > SILENCE_RMS) passed a point. Thread-safe."""

    def __init__(self) -> None:
        self._times: list[float] = []
        self._lock = threading.Lock()

    def hit(self, frame) -> None:
        if rms(frame.to_ndarray().reshape(-1)) > SILENCE_RMS:
            now = time.monotonic()
            with self._lock:
                self._times.append(now)

    def reset(self) -> None:
        with self._lock:
            self._times.clear()

    def last_before(self, t: float) -> float | None:
        with self._lock:
            before = [x for x in self._times if x <= t]
        return before[-1] if before else None

    def first_after(self, t: float) -> float | None:
        with self._lock:
            after = [x for x in self._times if x >= t]
        return after[0] if after else None


def probe_recv(track, probe: VoicedProbe) -> None:
    """Stamp every voiced frame `track.recv()` returns (wraps the instance's recv)."""
    original = track.recv

    async def recv():
        frame = await original()
        probe.hit(frame)
        return frame

    track.recv = recv


def probe_call(obj, name: str, probe: VoicedProbe) -> None:
    """Stamp every voiced frame passed to `obj.name(frame)` (wraps the instance's method)."""
    original = getattr(obj, name)

    def call(frame):
        probe.hit(frame)
        return original(frame)

    setattr(obj, name, call)


class EventTimes:
    """Arrival times (monotonic) of server events by type, and the turn's transcripts."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}
        self.heard_user = ""
        self.reply = ""

    def seen(self, kind: str, at: float, event: dict | None = None) -> None:
        self.times.setdefault(kind, at)
        if event is None:
            return
        if kind == "conversation.item.input_audio_transcription.completed" and not self.heard_user:
            self.heard_user = str(event.get("transcript") or "")
        elif kind == "response.output_audio_transcript.done" and not self.reply:
            self.reply = str(event.get("transcript") or "")

    def reset(self) -> None:
        self.times.clear()
        self.heard_user = self.reply = ""


# ---------------------------------------------------------------------------- turns


@dataclass(frozen=True)
class TurnResult:
    path: str  # "direct" or "bridged"
    mouth_to_ear_ms: float
    hops_ms: dict[str, float] = field(default_factory=dict)  # hop name -> ms (missing when not measured)
    heard_user: str = ""  # what the engine transcribed
    reply: str = ""  # what it said back (its length sets the engine's synthesis time)


MIC_HOP = "end of speech -> speech_stopped"
VOICE_HOP = "audio started -> heard"
ENGINE_HOP = "engine: speech_stopped -> audio started"
LEG_HOP = "mic: browser's last voiced frame -> leg sink"
QUEUE_HOP = "mic: leg sink -> MicTrack out"


def _ms(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else (b - a) * 1000


async def one_turn(
    browser: FakeBrowser, pcm: np.ndarray, events, probes: dict[str, VoicedProbe], path: str, wall_events=None
) -> TurnResult:
    await browser.speaker.wait_quiet(1.0)
    browser.speaker.mark()
    for probe in probes.values():
        probe.reset()
    events.reset()
    wall0 = time.time() - time.monotonic()
    said = time.monotonic()
    browser.mic.say(pcm)
    ended = await browser.mic.wait_spoken()
    heard = await browser.speaker.wait_for_audio(timeout=TURN_TIMEOUT_S)
    await asyncio.sleep(0.3)  # let the stamps of the reply's first frames settle
    if wall_events is not None:
        for kind, at, payload in wall_events(since=said + wall0):
            events.seen(kind, at - wall0, payload)
    stopped = events.times.get("input_audio_buffer.speech_stopped")
    started = events.times.get("output_audio_buffer.started")
    hops: dict[str, float | None] = {}
    if "leg_in" in probes:
        browser_out = probes["browser_out"].last_before(stopped or heard)
        leg_in = probes["leg_in"].last_before(stopped or heard)
        mic_out = probes["mic_out"].last_before(stopped or heard)
        voice_in = probes["voice_in"].first_after(started or ended)
        voice_out = probes["voice_out"].first_after(voice_in or ended)
        hops = {
            "mic: browser's last voiced frame -> leg sink": _ms(browser_out, leg_in),
            "mic: leg sink -> MicTrack out": _ms(leg_in, mic_out),
            "mic: MicTrack out -> speech_stopped": _ms(mic_out, stopped),
            "engine: speech_stopped -> audio started": _ms(stopped, started),
            "voice: audio started -> VoiceOut in": _ms(started, voice_in),
            "voice: VoiceOut in -> leg track out": _ms(voice_in, voice_out),
            "voice: leg track out -> heard": _ms(voice_out, heard),
        }
    else:
        hops = {
            "mic: browser -> speech_stopped": _ms(ended, stopped),
            "engine: speech_stopped -> audio started": _ms(stopped, started),
            "voice: audio started -> heard": _ms(started, heard),
        }
    hops["end of speech -> speech_stopped"] = _ms(ended, stopped)
    hops["audio started -> heard"] = _ms(started, heard)
    # wait (briefly) for the transcripts, which may come after the first audio
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and not (events.heard_user and events.reply):
        await asyncio.sleep(0.05)
        if wall_events is not None:
            for kind, at, payload in wall_events(since=said + wall0):
                events.seen(kind, at - wall0, payload)
    return TurnResult(
        path, (heard - ended) * 1000, {k: v for k, v in hops.items() if v is not None}, events.heard_user, events.reply
    )


@dataclass
class SessionFigures:
    turns: list[TurnResult] = field(default_factory=list)
    cpu_s: float = 0.0
    wall_s: float = 0.0
    bridge_cpu_s: float = 0.0
    rss_mib: float = 0.0
    voice_dropped_ms: float = 0.0
    mic_dropped_ms: float = 0.0
    mic_trimmed_ms: float = 0.0
    images: int = 0


async def direct_session(base_url: str, speech, turn_numbers, idle_s: float, out: SessionFigures) -> None:
    browser = FakeBrowser(rgb=None, data_channel=True, ear_tuned=EAR_TUNED)
    client = AsyncOpenAI(base_url=base_url, api_key=KEY, max_retries=0)
    events = EventTimes()
    call_id = None
    channel = browser.channel
    assert channel is not None  # data_channel=True

    @channel.on("message")
    def _on_message(message) -> None:
        try:
            event = json.loads(message)
        except ValueError:
            return
        if isinstance(event, dict) and isinstance(event.get("type"), str):
            events.seen(event["type"], time.monotonic(), event)

    async def answer(offer: str) -> str:
        nonlocal call_id
        session = cast(
            RealtimeSessionCreateRequestParam, Settings(camera=CameraSettings(enabled=False)).session_payload()
        )
        raw = await client.realtime.calls.with_raw_response.create(sdp=offer, session=session)
        call_id = (raw.headers.get("location") or "").rstrip("/").rsplit("/", 1)[-1]
        return raw.http_response.text

    try:
        await browser.connect(answer)
        await wait_until(lambda: channel.readyState == "open", 20, "direct data channel")
        cpu0, t0 = process_cpu_s(), time.monotonic()
        for n in turn_numbers:
            out.turns.append(await one_turn(browser, speech[n % len(speech)], events, {}, "direct"))
        await browser.speaker.wait_quiet(1.0)
        await asyncio.sleep(idle_s)
        out.cpu_s += process_cpu_s() - cpu0
        out.wall_s += time.monotonic() - t0
    finally:
        if call_id:
            await client.realtime.calls.hangup(call_id)
        await browser.close()
        await client.close()


async def bridged_session(base_url: str, speech, turn_numbers, idle_s: float, out: SessionFigures) -> None:
    settings = Settings(api_key=KEY, base_url=base_url, camera=CameraSettings(enabled=CAMERA, interval_s=2.0))
    probes = {name: VoicedProbe() for name in ("browser_out", "leg_in", "mic_out", "voice_in", "voice_out")}
    with RssPeak() as rss:
        # the leg's audio receive is tuned as the app tunes its streamlit-webrtc leg (realtime.rtc_tuning)
        call = BridgedCall(settings, rgb=(0, 0, 255) if CAMERA else None, tune_leg=TUNE_LEG, ear_tuned=EAR_TUNED)
        leg, bridge = call.leg, call.bridge
        probe_recv(call.browser.mic, probes["browser_out"])
        probe_call(leg, "_mic", probes["leg_in"])
        probe_recv(bridge.mic, probes["mic_out"])
        probe_call(bridge.voice, "push_frame", probes["voice_in"])
        probe_recv(leg.voice.track, probes["voice_out"])

        def wall_events(since: float):
            return [
                (e.type, e.time, dict(e.payload))
                for e in bridge.events.snapshot()
                if e.direction == "server" and e.time >= since
            ]

        async with call:
            if bridge.snapshot().state != "connected":
                raise SystemExit(f"bridge did not connect: {bridge.snapshot().error}")
            if HISTORY is not None:  # recorded as the app records a call (writer thread, off the loop)
                HISTORY.recorder.attach(bridge, settings)
            cpu0, loop0, t0 = process_cpu_s(), bridge_threads_cpu_s(), time.monotonic()
            events = EventTimes()
            for n in turn_numbers:
                out.turns.append(
                    await one_turn(call.browser, speech[n % len(speech)], events, probes, "bridged", wall_events)
                )
            await call.browser.speaker.wait_quiet(1.0)
            await asyncio.sleep(idle_s)
            out.cpu_s += process_cpu_s() - cpu0
            out.bridge_cpu_s += bridge_threads_cpu_s() - loop0
            out.wall_s += time.monotonic() - t0
            out.voice_dropped_ms += bridge.voice.stats().dropped_ms
            out.mic_dropped_ms += bridge.mic.stats().dropped_ms
            out.mic_trimmed_ms += getattr(bridge.mic.stats(), "trimmed_ms", 0.0)
            out.images += len(
                [
                    e
                    for e in bridge.events.snapshot()
                    if e.type == "conversation.item.create"
                    and e.payload.get("item", {}).get("content", [{}])[0].get("type") == "input_image"
                ]
            )
    out.rss_mib = max(out.rss_mib, (rss.peak - rss.base) / 1024)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _hop_table(turns: list[TurnResult]) -> list[str]:
    names: list[str] = []
    for turn in turns:
        names.extend(name for name in turn.hops_ms if name not in names)
    lines = []
    for name in names:
        values = [t.hops_ms[name] for t in turns if name in t.hops_ms]
        lines.append(f"    {name:<42} median {_median(values):7.1f}  (n={len(values)})")
    return lines


async def main(rounds: int, per_round: int, idle_s: float) -> None:
    speech = [np.frombuffer(resample_pcm16(speech_pcm24k(text), 24_000, 48_000), dtype=np.int16) for text in UTTERANCES]
    proc, base_url = start_engine_child()
    direct, bridged = SessionFigures(), SessionFigures()
    started = time.monotonic()
    try:
        # warm-up (imports, codecs, the engine's speech models) -- not measured
        await direct_session(base_url, speech, [0], 0, SessionFigures())
        for r in range(rounds):
            numbers = [r * per_round + i for i in range(per_round)]
            first, second = (direct_session, bridged_session) if r % 2 == 0 else (bridged_session, direct_session)
            for session in (first, second):
                await session(base_url, speech, numbers, idle_s, direct if session is direct_session else bridged)
    finally:
        proc.terminate()
        proc.wait(10)

    d_lat = [t.mouth_to_ear_ms for t in direct.turns]
    b_lat = [t.mouth_to_ear_ms for t in bridged.turns]
    d_med, b_med = _median(d_lat), _median(b_lat)
    per_min = lambda cpu, wall: cpu / wall * 60 if wall else float("nan")  # noqa: E731
    share = per_min(bridged.cpu_s, bridged.wall_s) - per_min(direct.cpu_s, direct.wall_s)
    bridge_pm = per_min(bridged.bridge_cpu_s, bridged.wall_s)
    print(
        f"turns: {len(d_lat)} direct + {len(b_lat)} bridged, {rounds} interleaved rounds, "
        f"{time.monotonic() - started:.0f} s; engine: child process; load avg {os.getloadavg()[0]:.1f}; "
        f"leg tuned: {TUNE_LEG}; ear tuned: {EAR_TUNED}; bridged camera: {CAMERA}"
    )
    print(f"mouth-to-ear direct   (ms): median {d_med:7.1f}  all {[round(x) for x in d_lat]}")
    print(f"mouth-to-ear bridged  (ms): median {b_med:7.1f}  all {[round(x) for x in b_lat]}")
    print(f"bridge adds           (ms): median {b_med - d_med:7.1f}  ratio {b_med / d_med:.3f}  (target <= 30 ms)")
    # The engine's own time per turn (speech_stopped -> audio started: transcription + synthesis on a
    # shared 2-core machine) varies far more than the transport; taking it out of each turn leaves the
    # part of mouth-to-ear that the path (browser leg, bridge, VAD hearing the end) is responsible for.
    d_path, b_path = (
        [t.mouth_to_ear_ms - t.hops_ms[ENGINE_HOP] for t in turns if ENGINE_HOP in t.hops_ms]
        for turns in (direct.turns, bridged.turns)
    )
    print(
        f"mouth-to-ear minus the engine's time per turn (ms): direct {_median(d_path):7.1f}, "
        f"bridged {_median(b_path):7.1f}, bridge adds {_median(b_path) - _median(d_path):+7.1f}  (target <= 30 ms)"
    )
    d_mic, b_mic = (
        _median([t.hops_ms[k] for t in turns if k in t.hops_ms])
        for turns, k in ((direct.turns, MIC_HOP), (bridged.turns, MIC_HOP))
    )
    d_voice, b_voice = (
        _median([t.hops_ms[k] for t in turns if k in t.hops_ms])
        for turns, k in ((direct.turns, VOICE_HOP), (bridged.turns, VOICE_HOP))
    )
    d_engine, b_engine = (
        _median([t.hops_ms[k] for t in turns if k in t.hops_ms])
        for turns, k in ((direct.turns, ENGINE_HOP), (bridged.turns, ENGINE_HOP))
    )
    leg = _median([t.hops_ms[k] for t in bridged.turns for k in (LEG_HOP,) if k in t.hops_ms])
    queue = _median([t.hops_ms[k] for t in bridged.turns for k in (QUEUE_HOP,) if k in t.hops_ms])
    own = leg + queue + b_voice - d_voice
    print(
        f"  the bridge's own hops (ms): {own:+6.1f} = mic into the leg {leg:+.1f} + MicTrack {queue:+.1f} "
        f"+ voice path {b_voice - d_voice:+.1f} (audio started -> heard, bridged - direct)"
    )
    print(
        f"  end of speech -> speech_stopped, bridged - direct (ms): {b_mic - d_mic:+6.1f}; "
        f"speech_stopped -> audio started, in the engine (ms): {b_engine - d_engine:+6.1f}"
    )
    d_chars = _median([len(t.reply) for t in direct.turns])
    b_chars = _median([len(t.reply) for t in bridged.turns])
    print(f"  replies (median chars, sets the engine's synthesis time): direct {d_chars:.0f}, bridged {b_chars:.0f}")
    for path, turns in (("direct", direct.turns), ("bridged", bridged.turns)):
        print(
            f"  {path:7} engine speech_stopped -> audio started per turn (ms): "
            f"{[round(t.hops_ms[ENGINE_HOP]) if ENGINE_HOP in t.hops_ms else None for t in turns]}"
        )
        print(f"  {path:7} heard: {[t.heard_user for t in turns]}")
    print("per-hop medians (ms), direct:")
    print("\n".join(_hop_table(direct.turns)))
    print("per-hop medians (ms), bridged:")
    print("\n".join(_hop_table(bridged.turns)))
    print(
        "CPU s/min, whole process, direct (fake browser only):              "
        f"{per_min(direct.cpu_s, direct.wall_s):6.2f}"
    )
    print(
        "CPU s/min, whole process, bridged (browser + leg + bridge, camera): "
        f"{per_min(bridged.cpu_s, bridged.wall_s):6.2f}"
    )
    print(
        f"CPU s/min, bridged - direct (leg + bridge + camera video):          {share:6.2f}"
        f"  = {share / 60 * 100:.1f}% of one core"
    )
    print(
        f"CPU s/min, bridge threads alone (loop + workers):                   {bridge_pm:6.2f}"
        f"  = {bridge_pm / 60 * 100:.1f}% of one core (target <= 10%)"
    )
    print(
        f"camera frames sent: {bridged.images} in {bridged.wall_s:.0f}s; "
        f"voice dropped {bridged.voice_dropped_ms:.0f} ms; "
        f"mic dropped {bridged.mic_dropped_ms:.0f} ms (of which standing backlog trimmed: "
        f"{bridged.mic_trimmed_ms:.0f} ms; the rest is queue overflow)"
    )
    print(f"peak RSS per bridged session (MiB): {bridged.rss_mib:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved direct/bridged rounds (1..10)")
    parser.add_argument("--turns-per-round", type=int, default=2, help="voice turns per session (1..5)")
    parser.add_argument("--idle-seconds", type=float, default=4.0, help="idle time per session after its turns")
    parser.add_argument(
        "--no-leg-tuning",
        action="store_true",
        help="leave the browser leg as streamlit-webrtc sets it up (aiortc's jitter buffer, "
        "PcmAudioSource reading a frame early): as if the app did not tune it",
    )
    parser.add_argument("--no-camera", action="store_true", help="bridged sessions without a camera")
    parser.add_argument(
        "--ear-default",
        action="store_true",
        help="the fake browser receives with aiortc's default jitter buffer (both paths)",
    )
    parser.add_argument(
        "--history",
        action="store_true",
        help="record every bridged session into a history database (a temporary file), as the app does",
    )
    args = parser.parse_args()
    HISTORY = None
    if args.history:
        import tempfile

        from realtime.history import HistoryStore

        HISTORY = HistoryStore(Path(tempfile.mkdtemp(prefix="bench-history-")) / "history.db")
    TUNE_LEG = not args.no_leg_tuning
    EAR_TUNED = not args.ear_default
    CAMERA = not args.no_camera
    try:
        asyncio.run(
            main(
                max(1, min(args.rounds, 10)),
                max(1, min(args.turns_per_round, 5)),
                max(0.0, min(args.idle_seconds, 60.0)),
            )
        )
    finally:
        if HISTORY is not None:
            HISTORY.recorder.flush(5)
            saved = HISTORY.list_conversations(None)
            print(f"history: {len(saved)} conversations, {sum(c.turns for c in saved)} turns saved to {HISTORY.path}")
            HISTORY.close()
