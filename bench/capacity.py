"""Capacity: what N concurrent conversations cost ONE server process, and what each caller hears.

    scripts/loopback-only .venv/bin/python bench/capacity.py [--mode aiortc|chromium] [--n 1,2,4,8]
        [--seconds 60] [--camera on|off|both | --no-camera] [--peer PATH] [--json PATH] [--seed 1]
        [--sample-ms 10] [--repeat 1]

(scripts/loopback-only, as `make test` uses it: aioice offers no 127.0.0.1 candidate, the namespace
adds 127.0.0.2.) For every N a fresh server process and a fresh local engine are started, one
warm-up conversation is held and hung up (imports, codecs, the engine's speech models), then N
conversations run at once for --seconds; everything is measured in that window only, then stopped.

Load generators (--mode):

1. aiortc (default, cheap): the bench process is the callers. Each caller is the tests' fake
   browser (tests.fakebrowser.FakeBrowser: an aiortc peer whose mic speaks generated speech,
   tests.media) with, camera on, a 640x480 picture with a sweeping bar at the rate a tab's call
   sends (ui.self_view.SEND_FPS; it changes, so the frame policy sends JPEGs as for a real camera).
   The server is a child process (`--serve`, this file) that builds each browser leg with
   streamlit-webrtc's own offer processing (`streamlit_webrtc.webrtc._process_offer_coro`,
   SENDRECV: `AudioSinkTrack` -> Bridge.on_mic_frame, `PcmAudioSource` tuned with
   realtime.voice_source.just_in_time as the voice, the camera into a `VideoSinkTrack` with nothing
   sent back (the tab draws its own self-view: ui.self_view), realtime.rtc_tuning on the receive
   side) -- what `ui/studio.py` asks of streamlit-webrtc, minus Streamlit -- and one
   realtime.Bridge per leg to the engine (a child too). Each caller speaks one utterance every
   6-8 s (random, seeded, staggered).
2. chromium: N tabs of Debian's Chromium (Playwright; fake mic plays a generated WAV in a ~7 s
   loop, fake camera is Chromium's animated test pattern) against the real app, `streamlit run
   app.py` on a free loopback port with its own local engine (tests/browser/harness.py's way).
   --peer PATH runs another Streamlit realtime app the same way (e.g. streamlit-webrtc's
   pages/18_audio_chat_realtime.py, voice only) against a local engine the bench starts, through
   OPENAI_BASE_URL. --repeat K runs each N K times, the apps taking turns, and prints the medians
   and the median of each (studio run, peer run after it) pair's CPU ratio: one run's CPU figure
   moves by about a tenth from run to run on this 2-core machine.

Server CPU is split by part. Inside the server process a probe (this file; in the app's process it
is loaded by a sitecustomize the bench puts on PYTHONPATH: nothing in the product is changed) reads
every thread's CPU from /proc/self/task/*/stat and names the thread from `threading`; functions
that do one part's work on another part's thread are timed with time.thread_time() (class-level
wrappers, nested calls counted once) and moved out of that thread's share; the server's event loop
thread (aiortc's browser leg, and in the app also Streamlit's web serving) is split by sampling its
stack every --sample-ms (10 ms; 0 = off, then all of it is leg). The buckets:

  leg      browser leg: the loop's aiortc/aioice/streamlit_webrtc/av frames (ICE, DTLS, SRTP, RTP,
           sinks, relay, the voice source track), the leg's Opus decoder threads and the loop's
           executor threads (aiortc's Opus encode of the voice). Frames that are only asyncio's are
           shared pro rata among leg, page and bridge.
  upstream the aiortc peer to the engine: realtime.loop's thread and worker pool (Opus encode of the
           mic) and the upstream Opus decoder threads, minus the wrapped bridge and camera work.
           For the peer: its WebSocket session thread.
  bridge   our Python per-frame work: Bridge.on_mic_frame (MicTrack.push), MicFeed.recv,
           VoiceOut.push_frame (+ PcmAudioSource.push), Bridge._on_message, _watch_loop,
           _stats_loop, timed; plus the loop's samples in realtime/ (the voice source's pacing,
           realtime.rtc_tuning's receive buffer). For the peer: its script's samples on the loop
           (the resampling in its sink callback).
  camera   the leg's VP8 decoder threads, the video callback thread (async_media_processor_*; before
           issue 15, also the VP8 encode of the echoed self-view), Bridge.on_video_frame, _camera_loop,
           FrameThrottle and encode_frame (JPEG).
  page     Streamlit script runs (ScriptRunner threads, timed whole: page loads and the polling
           fragments) plus the loop's streamlit/starlette/uvicorn/websockets samples. None in aiortc
           mode (no page).
  other    every other thread (e.g. the history writer) and what /proc did not show (threads born
           and gone between two reads); the footer names the largest parts. The probe's own CPU
           is shown apart and left out of the totals.

Also per N: latency p50/p90 (end of the caller's speech -> first reply audio at the caller;
aiortc: the fake browser's mic track hands out the last speech sample / the first voiced frame
arrives; chromium: an AudioWorklet in the tab sees the fake mic fall silent / the remote voice
start, both on the tab's audio clock, after its jitter buffer), voice fragments per reply (voiced
bursts heard, split by gaps > 60 ms; `src` is the same count on what the engine sent, taken at
VoiceOut.push_frame -- the speech synthesizer itself pauses at punctuation), concealed audio
(chromium: getStats concealedSamples / totalSamplesReceived of the tab's inbound audio; aiortc:
20 ms slots concealed by a simulated 60 ms playout buffer fed with the frames' arrival times),
replies heard / replies asked, and RSS growth per conversation ((peak during the window - RSS
after the warm-up) / N; the footer fits the slope over N). The engine's CPU is reported apart:
it is not the studio's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import logging
import math
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, ClassVar, cast

if TYPE_CHECKING:
    import av
    import numpy as np
    from aiortc import MediaStreamTrack
    from playwright.sync_api import Browser, Frame, Page

ROOT = Path(__file__).resolve().parents[1]
BUCKETS = ("leg", "upstream", "bridge", "camera", "page", "other")
PROBE_FILE_ENV = "CAPACITY_PROBE_FILE"
PROBE_OPTS_ENV = "CAPACITY_PROBE_OPTS"
PROBE_SCRIPT_ENV = "CAPACITY_PROBE_SCRIPT"
VOICED_RMS = 200.0  # int16 RMS above which audio is voice (tests.fakebrowser.SILENCE_RMS)
GAP_FRAMES = 4  # a burst ends after this many unvoiced 20 ms frames (> 60 ms)
REPLY_GAP_FRAMES = 50  # ... and a reply after 1 s
REPLY_GAP_S = 1.0
PLAYOUT_DELAY_S = 0.06  # the simulated caller's playout buffer (Chromium holds about 55 ms here)
ASK_MARGIN_S = 5.0  # an utterance ending later than this before the window's end is not asked
MAX_N = 16


# ============================================================================ the probe (server side)
# Stdlib only at import: it is loaded by a sitecustomize into the app's process before anything else.


class _SourceCounter:
    """Voiced bursts per reply in audio handed to the browser leg (20 ms blocks, by content)."""

    def __init__(self) -> None:
        self.quiet = 1 << 30
        self.bursts = 0
        self.last_voiced = 0.0

    def feed(self, blocks: Iterable[bool], now: float, done: list[tuple[float, int]]) -> None:
        self.close_if_idle(now, done)
        for voiced in blocks:
            if not voiced:
                self.quiet += 1
                continue
            if self.bursts and self.quiet >= REPLY_GAP_FRAMES:
                done.append((self.last_voiced, self.bursts))
                self.bursts = 0
            if self.bursts == 0 or self.quiet >= GAP_FRAMES:
                self.bursts += 1
            self.quiet = 0
            self.last_voiced = now

    def close_if_idle(self, now: float, done: list[tuple[float, int]]) -> None:
        if self.bursts and now - self.last_voiced >= REPLY_GAP_S:
            done.append((self.last_voiced, self.bursts))
            self.bursts, self.quiet = 0, 1 << 30


_LEG_MARKERS = ("/aiortc/", "/aioice/", "/pylibsrtp/", "/streamlit_webrtc/", "/av/", "/pyee/", "/crc32c/")
_WEB_MARKERS = (
    "/streamlit/",
    "/starlette/",
    "/sse_starlette/",
    "/uvicorn/",
    "/websockets/",
    "/anyio/",
    "/h11/",
    "/httptools/",
    "/google/protobuf/",
    "/tornado/",
)
_WRAPPER_NAMES = frozenset({"_timed_call", "_timed_steps", "_timed_source_frame", "_timed_source_pcm"})


class Probe:
    """Per-thread CPU, wrapped-function CPU, loop stack samples and reply bursts of this process,
    written as JSON to `path` every 0.2 s (atomically) by a daemon thread named capacity-probe."""

    # (module, class or None, attribute, bucket); installed as soon as the module is imported
    SYNC: tuple[tuple[str, str | None, str, str], ...] = (
        ("realtime.bridge", "Bridge", "on_mic_frame", "bridge"),
        ("realtime.bridge", "Bridge", "_on_message", "bridge"),
        ("realtime.bridge", "Bridge", "on_video_frame", "camera"),
        ("realtime.bridge", None, "encode_frame", "camera"),
        ("realtime.frames", "FrameThrottle", "due", "camera"),
        ("realtime.frames", "FrameThrottle", "offer", "camera"),
        ("aiortc.codecs.vpx", "Vp8Encoder", "encode", "camera"),
        ("aiortc.codecs.h264", "H264Encoder", "encode", "camera"),
        # a script run's whole thread: short-lived ones (a thread per rerun) die between two reads of /proc
        ("streamlit.runtime.scriptrunner.script_runner", "ScriptRunner", "_run_script_thread", "page"),
    )
    CORO: tuple[tuple[str, str | None, str, str], ...] = (
        ("realtime.mic_track", "MicFeed", "recv", "bridge"),
        ("realtime.bridge", "Bridge", "_watch_loop", "bridge"),
        ("realtime.bridge", "Bridge", "_stats_loop", "bridge"),
        ("realtime.bridge", "Bridge", "_camera_loop", "camera"),
    )

    def __init__(self, path: str, *, sample_ms: float, source: str, bridge_paths: Sequence[str]):
        self.path = path
        self.sample_s = max(0.0, sample_ms) / 1000  # 0: the loop thread is not sampled (all of it is leg)
        self.source = source  # "voiceout": VoiceOut.push_frame; "pcm": PcmAudioSource.push
        self.main_kind = "main" if self.sample_s else "leg"  # "main": split by its stack samples
        self.bridge_paths = tuple(bridge_paths)
        self._lock = threading.Lock()
        self._tls = threading.local()
        self._wrapped: dict[int, dict[str, float]] = {}
        self._threads: dict[str, list[Any]] = {}  # "tid:start" -> [key, tid, name, kind, cpu_s]
        self._samples: dict[str, int] = {}
        self._replies: list[tuple[float, int]] = []
        self._sources: dict[int, _SourceCounter] = {}
        self._todo = [(m, c, a, b, "sync") for m, c, a, b in self.SYNC] + [
            (m, c, a, b, "coro") for m, c, a, b in self.CORO
        ]
        self._todo.append(
            ("realtime.voice_out", "VoiceOut", "push_frame", "bridge", "source")
            if source == "voiceout"
            else ("streamlit_webrtc.pcm_source", "PcmAudioSource", "push", "bridge", "source")
        )
        if source == "voiceout":
            self._todo.append(("streamlit_webrtc.pcm_source", "PcmAudioSource", "push", "bridge", "sync"))
        self._todo.append(("realtime.bridge", "Bridge", "__init__", "other", "keep"))
        self._bridges: weakref.WeakSet[Any] = weakref.WeakSet()
        self._bridge_summaries: list[dict[str, Any]] = []
        self._writes = 0
        self.installed: list[str] = []
        self._tick = os.sysconf("SC_CLK_TCK")
        self._main = threading.main_thread()

    # ---------------------------------------------------------------- accounting

    def add(self, bucket: str, seconds: float) -> None:
        tid = threading.get_native_id()
        with self._lock:
            per = self._wrapped.setdefault(tid, {})
            per[bucket] = per.get(bucket, 0.0) + seconds

    def _timed(self, fn: Callable[..., Any], bucket: str) -> Callable[..., Any]:
        probe = self

        @functools.wraps(fn)
        def _timed_call(*args: Any, **kwargs: Any) -> Any:
            tls = probe._tls
            if getattr(tls, "depth", 0):
                return fn(*args, **kwargs)
            tls.depth = 1
            began = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                tls.depth = 0
                probe.add(bucket, time.thread_time() - began)

        return _timed_call

    def _timed_coro(self, fn: Callable[..., Any], bucket: str) -> Callable[..., Any]:
        probe = self

        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            return await _TimedSteps(fn(*args, **kwargs), probe, bucket)

        return wrapper

    def _source_frame(self, fn: Callable[..., Any], bucket: str) -> Callable[..., Any]:
        """VoiceOut.push_frame(frame): timed, then its voiced blocks counted (counting = probe)."""
        timed = self._timed(fn, bucket)
        probe = self

        @functools.wraps(fn)
        def _timed_source_frame(obj: Any, frame: Any, *args: Any, **kwargs: Any) -> Any:
            result = timed(obj, frame, *args, **kwargs)
            began = time.thread_time()
            try:
                pcm = frame.to_ndarray().reshape(-1).astype("float64")
                voiced = bool(pcm.size) and math.sqrt(float((pcm * pcm).mean())) > VOICED_RMS
                probe._feed_source(obj, [voiced])
            finally:
                probe.add("probe", time.thread_time() - began)
            return result

        return _timed_source_frame

    def _source_pcm(self, fn: Callable[..., Any], bucket: str) -> Callable[..., Any]:
        """PcmAudioSource.push(pcm bytes): timed, then its voiced 20 ms blocks counted."""
        timed = self._timed(fn, bucket)
        probe = self

        @functools.wraps(fn)
        def _timed_source_pcm(obj: Any, pcm: Any, *args: Any, **kwargs: Any) -> Any:
            result = timed(obj, pcm, *args, **kwargs)
            began = time.thread_time()
            try:
                import numpy

                rate = int(getattr(obj, "_sample_rate", 24000))
                block = max(1, rate // 50)
                x = numpy.frombuffer(bytes(pcm)[: len(pcm) - len(pcm) % 2], dtype="<i2").astype(numpy.float64)
                n = x.size // block
                if n:
                    levels = numpy.sqrt((x[: n * block].reshape(n, block) ** 2).mean(axis=1))
                    probe._feed_source(obj, [bool(v > VOICED_RMS) for v in levels])
            finally:
                probe.add("probe", time.thread_time() - began)
            return result

        return _timed_source_pcm

    def _keep(self, fn: Callable[..., Any], bucket: str) -> Callable[..., Any]:
        """Bridge.__init__: remember every Bridge (weakly), to report on it."""
        probe = self

        @functools.wraps(fn)
        def init(obj: Any, *args: Any, **kwargs: Any) -> None:
            fn(obj, *args, **kwargs)
            obj._capacity_created = time.time()
            probe._bridges.add(obj)

        return init

    def _summarize_bridges(self) -> None:
        # what the app has imported, never more: importing streamlit-webrtc before Streamlit's runtime
        # exists leaves its component unserved
        bg = sys.modules.get("realtime.loop")
        voice_source = sys.modules.get("realtime.voice_source")
        out = []
        for bridge in list(self._bridges):
            try:
                snap = bridge.snapshot()
                if snap.state in ("idle", "closed") and not snap.transcript:
                    continue
                out.append(
                    {
                        "created": getattr(bridge, "_capacity_created", 0.0),
                        "state": snap.state,
                        "error": str(snap.error or ""),
                        "replaced": len(snap.replaced),
                        "reasons": [r.reason for r in snap.replaced],
                        "images": len(snap.sent_images),
                        "voice_dropped_ms": (voice := bridge.voice.stats()).dropped_ms,
                        "mic_dropped_ms": (mic := bridge.mic.stats()).dropped_ms,
                        "mic_trimmed_ms": mic.trimmed_ms,
                        "mic_late_ms": mic.late_ms,
                        "mic_pushed_ms": mic.pushed_frames * 20.0,
                        "mic_silence_ms": mic.silence_frames * 20.0,
                        "voice_starved_ms": voice.starved_ms,
                        "leg_late_ms": 1000 * _leg_late_s(voice_source, bridge),
                        "loop_late_ms": 1000 * (bg.behind_s() if bg else 0.0),  # the bridge loop's, shared by all
                    }
                )
            except Exception as exc:  # a report, never a failure
                out.append({"state": f"unreadable ({exc!r})"})
        self._bridge_summaries = out

    def _feed_source(self, obj: object, blocks: list[bool]) -> None:
        now = time.time()
        with self._lock:
            counter = self._sources.setdefault(id(obj), _SourceCounter())
            counter.feed(blocks, now, self._replies)

    def install(self) -> None:
        """Wrap what has been imported so far (idempotent; called again by the probe thread)."""
        left = []
        for module_name, cls_name, attr, bucket, how in self._todo:
            module = sys.modules.get(module_name)
            owner = module if cls_name is None or module is None else getattr(module, cls_name, None)
            original = getattr(owner, attr, None) if owner is not None else None
            if original is None:
                left.append((module_name, cls_name, attr, bucket, how))
                continue
            make = {
                "sync": self._timed,
                "coro": self._timed_coro,
                "keep": self._keep,
                "source": self._source_frame if self.source == "voiceout" else self._source_pcm,
            }[how]
            setattr(owner, attr, make(original, bucket))
            self.installed.append(f"{module_name}.{cls_name + '.' if cls_name else ''}{attr}")
        self._todo = left

    # ---------------------------------------------------------------- threads and samples

    def _classify(self, thread: threading.Thread | None, name: str) -> str:
        if thread is self._main:
            return self.main_kind
        if name.startswith("capacity-"):
            return "probe"
        if name.startswith("ScriptRunner"):
            return "page"
        if name in ("audio-decoder", "video-decoder"):
            args = getattr(thread, "_args", ())
            loops = sys.modules.get("realtime.loop")
            bridge_loop = getattr(loops, "_loop", None) if loops is not None else None
            if args and bridge_loop is not None and args[0] is bridge_loop:
                return "upstream"
            return "leg" if name == "audio-decoder" else "camera"
        if name.startswith("async_media_processor"):
            return "camera"
        if name.startswith(("realtime-bridge-loop", "realtime-bridge-worker", "OpenAIRealtimeBridge")):
            return "upstream"
        if name.startswith("asyncio_"):
            return "leg"
        return "other"

    def _read_threads(self) -> None:
        by_tid = {t.native_id: t for t in threading.enumerate()}
        try:
            tids = os.listdir("/proc/self/task")
        except OSError:
            return
        for tid_text in tids:
            try:
                with open(f"/proc/self/task/{tid_text}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            comm = stat[stat.find("(") + 1 : stat.rfind(")")]
            fields = stat.rsplit(")", 1)[1].split()
            cpu = (int(fields[11]) + int(fields[12])) / self._tick
            key = f"{tid_text}:{fields[19]}"
            record = self._threads.get(key)
            if record is None:
                tid = int(tid_text)
                thread = by_tid.get(tid)
                name = thread.name if thread is not None else f"native:{comm}"
                record = self._threads[key] = [key, tid, name, self._classify(thread, name), cpu]
            record[4] = cpu

    def _sample(self) -> None:
        frame = sys._current_frames().get(self._main.ident or -1)
        kind = self._stack_kind(frame)
        self._samples[kind] = self._samples.get(kind, 0) + 1

    def _stack_kind(self, frame: FrameType | None) -> str:
        if frame is None:
            return "idle"
        if frame.f_code.co_name == "select" and frame.f_code.co_filename.endswith("selectors.py"):
            return "idle"
        first: str | None = None
        here = __file__
        f: FrameType | None = frame
        while f is not None:
            filename = f.f_code.co_filename
            if filename == here and f.f_code.co_name in _WRAPPER_NAMES:
                return "wrapped"  # its CPU is already counted by the wrapper
            if first is None:
                if any(filename.startswith(p) for p in self.bridge_paths):
                    first = "bridge"
                elif any(m in filename for m in _LEG_MARKERS):
                    first = "leg"
                elif any(m in filename for m in _WEB_MARKERS):
                    first = "web"
            f = f.f_back
        return first or "loop"

    def snapshot(self) -> dict[str, Any]:
        self._read_threads()
        now = time.time()
        rss = 0
        try:
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        rss = int(line.split()[1])
        except OSError:
            pass
        times = os.times()
        with self._lock:
            for counter in self._sources.values():
                counter.close_if_idle(now, self._replies)
            return {
                "wall": now,
                "pid": os.getpid(),
                "cpu": times.user + times.system,
                "rss_kb": rss,
                "threads": [list(r) for r in self._threads.values()],
                "wrapped": {str(k): dict(v) for k, v in self._wrapped.items()},
                "samples": dict(self._samples),
                "replies": list(self._replies),
                "installed": list(self.installed),
                "bridges": list(self._bridge_summaries),
            }

    def write(self) -> None:
        tmp = self.path + ".tmp"
        # dumps, not dump: one C call; json.dump encodes in Python and holds the GIL the server's loops need
        text = json.dumps(self.snapshot())
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.path)

    def run(self) -> None:
        next_write = 0.0
        while True:
            time.sleep(self.sample_s or 0.2)
            try:
                if self.sample_s:
                    self._sample()
                if time.monotonic() >= next_write:
                    next_write = time.monotonic() + 0.2
                    if self._todo:
                        self.install()
                    self._writes += 1
                    if self._writes % 5 == 0:  # once a second: a bridge snapshot is not free
                        self._summarize_bridges()
                    self.write()
            except Exception as exc:  # never take the server down
                print(f"capacity probe: {exc!r}", file=sys.stderr)
                time.sleep(1)

    def start(self) -> Probe:
        self.install()
        threading.Thread(target=self.run, name="capacity-probe", daemon=True).start()
        return self


class _TimedSteps:
    """Await a coroutine, adding the CPU time of each of its steps (send/throw) to a bucket."""

    def __init__(self, coro: Any, probe: Probe, bucket: str) -> None:
        self._coro, self._probe, self._bucket = coro, probe, bucket

    def __await__(self) -> Generator[Any, Any, Any]:
        return self._timed_steps()

    def _timed_steps(self) -> Generator[Any, Any, Any]:
        coro, tls = self._coro, self._probe._tls
        value: Any = None
        error: BaseException | None = None
        while True:
            outer = getattr(tls, "depth", 0)
            tls.depth = 1
            began = time.thread_time()
            try:
                yielded = coro.send(value) if error is None else coro.throw(error)
            except StopIteration as stop:
                return stop.value
            finally:
                tls.depth = outer
                if not outer:
                    self._probe.add(self._bucket, time.thread_time() - began)
            try:
                value, error = (yield yielded), None
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:
                value, error = None, exc


def start_probe_from_env() -> Probe | None:
    """Called by the sitecustomize the bench puts on the app's PYTHONPATH. Consumes the variable so
    that the app's own children (its local engine) do not start a probe of their own."""
    path = os.environ.pop(PROBE_FILE_ENV, "")
    if not path:
        return None
    _log_calls()
    opts = json.loads(os.environ.pop(PROBE_OPTS_ENV, "{}"))
    return Probe(
        path,
        sample_ms=float(opts.get("sample_ms", 10.0)),
        source=str(opts.get("source", "voiceout")),
        bridge_paths=list(opts.get("bridge_paths", [])),
    ).start()


SITECUSTOMIZE = """\
# Written by bench/capacity.py: loads its probe into this process (no effect without the variable).
import os as _os
if _os.environ.get("CAPACITY_PROBE_FILE"):
    import importlib.util as _util
    import sys as _sys
    _spec = _util.spec_from_file_location("_capacity_probe", _os.environ["CAPACITY_PROBE_SCRIPT"])
    _mod = _util.module_from_spec(_spec)
    _sys.modules["_capacity_probe"] = _mod
    _spec.loader.exec_module(_mod)
    _mod.start_probe_from_env()
"""


# ============================================================================ reading the probe (bench side)


def read_probe(path: Path, after: float, timeout: float = 5.0) -> dict[str, Any]:
    """The probe's first snapshot written after wall time `after`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            snap = json.loads(path.read_text())
            if snap["wall"] >= after:
                return snap
        except (OSError, ValueError, KeyError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"no fresh probe snapshot in {path} (is the server alive?)")
        time.sleep(0.05)


@dataclass
class CpuSplit:
    total_s: float  # the whole server process, window only
    buckets: dict[str, float]  # BUCKETS -> seconds
    probe_s: float  # the probe's own thread and counting (inside total)
    main_shares: dict[str, float] = field(default_factory=dict)  # the loop's stack-sample shares
    other: dict[str, float] = field(default_factory=dict)  # what "other" holds: thread name -> seconds


def split_cpu(s0: dict[str, Any], s1: dict[str, Any]) -> CpuSplit:
    """Attribute the server's CPU between two probe snapshots to BUCKETS (see the docstring)."""
    before = {r[0]: r[4] for r in s0["threads"]}
    buckets = dict.fromkeys(BUCKETS, 0.0)
    other: dict[str, float] = {}
    probe_s = 0.0
    samples = {k: s1["samples"].get(k, 0) - s0["samples"].get(k, 0) for k in s1["samples"]}
    busy = {k: v for k, v in samples.items() if k in ("leg", "web", "bridge", "loop") and v > 0}
    known = busy.get("leg", 0) + busy.get("web", 0) + busy.get("bridge", 0)
    shares: dict[str, float] = {}
    if known:
        for k in ("leg", "web", "bridge"):
            shares[k] = busy.get(k, 0) / known  # asyncio-only ("loop") samples are shared pro rata
    else:
        shares = {"leg": 1.0}
    moved: dict[str, dict[str, float]] = {}  # tid -> bucket -> seconds timed by the wrappers
    for tid, w1 in s1["wrapped"].items():
        w0 = s0["wrapped"].get(tid, {})
        moved[tid] = {b: w1[b] - w0.get(b, 0.0) for b in w1}
        for bucket, seconds in moved[tid].items():
            if bucket == "probe":
                probe_s += seconds
            else:
                buckets[bucket] += seconds
    for key, tid, name, kind, cpu in s1["threads"]:
        spent = cpu - before.get(key, 0.0)
        rest = max(0.0, spent - sum(moved.get(str(tid), {}).values()))  # < 0: it ended between two reads
        if kind == "probe":
            probe_s += rest
        elif kind == "main":
            buckets["leg"] += rest * shares.get("leg", 0.0)
            buckets["page"] += rest * shares.get("web", 0.0)
            buckets["bridge"] += rest * shares.get("bridge", 0.0)
        elif kind in buckets and kind != "other":
            buckets[kind] += rest
        elif rest > 0:
            buckets["other"] += rest
            label = re.sub(r"[-_ ]?\d+$", "", name)
            other[label] = other.get(label, 0.0) + rest
    total = s1["cpu"] - s0["cpu"]
    # threads that lived and died between two reads of /proc, and /proc's 10 ms ticks
    unattributed = total - probe_s - sum(buckets.values())
    buckets["other"] += unattributed
    other["(not seen in /proc)"] = unattributed
    main_shares = {k: round(v, 3) for k, v in shares.items()} if samples else {}
    return CpuSplit(total, buckets, probe_s, main_shares, other)


def start_engine(workdir: Path) -> tuple[subprocess.Popen[str], str]:
    """`python -m localengine` on a free loopback port (bench.relay_latency's way, with its key), its
    stderr kept in workdir/engine.log. Returns the process and its base URL."""
    from bench.relay_latency import KEY

    with open(workdir / "engine.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "localengine", "--host", "127.0.0.1", "--port", "0", "--log-level", "info"],
            stdout=subprocess.PIPE,
            stderr=log,
            env={**os.environ, "LOCALENGINE_API_KEYS": KEY},
            text=True,
            cwd=str(ROOT),
        )
    _CHILDREN.append(proc.pid)
    line = proc.stdout.readline().strip() if proc.stdout else ""
    if "listening on" not in line:
        proc.kill()
        raise RuntimeError(f"local engine did not start: {line!r}")
    return proc, line.rsplit(" ", 1)[-1]


def proc_cpu_s(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def engine_cpu(pid: int | None) -> dict[int, float]:
    """CPU seconds of the engine and of each of its children (its recognizers, started as calls need
    them): a child born in the window counts whole."""
    return {p: proc_cpu_s(p) for p in ([pid, *descendants(pid)] if pid else [])}


def _ppids() -> dict[int, int]:
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    out[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return out


def descendants(pid: int) -> list[int]:
    parents = _ppids()
    found, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parents.items() if pp == p]
        found.extend(kids)
        frontier.extend(kids)
    return found


def renice(pids: Sequence[int], nice: int) -> None:
    """Lower every thread of ``pids`` to ``nice`` (Linux niceness is per thread)."""
    for pid in pids:
        try:
            tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            continue
        for tid in tids:
            with contextlib.suppress(OSError):
                os.setpriority(os.PRIO_PROCESS, tid, nice)


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


# ============================================================================ replies (pure functions)


@dataclass
class Replies:
    asked: int = 0
    heard: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    fragments: list[int] = field(default_factory=list)
    concealed: float = 0.0  # samples or slots concealed
    total: float = 0.0  # of samples or slots played
    jitter_buffer_ms: list[float] = field(default_factory=list)  # chromium only

    def add(self, other: Replies) -> None:
        self.asked += other.asked
        self.heard += other.heard
        self.latencies_ms += other.latencies_ms
        self.fragments += other.fragments
        self.concealed += other.concealed
        self.total += other.total
        self.jitter_buffer_ms += other.jitter_buffer_ms


def bursts(times: Sequence[tuple[float, bool]], gap_frames: int = GAP_FRAMES) -> int:
    """Voiced bursts in a sequence of (time, voiced) 20 ms slots: runs split by >= gap_frames unvoiced."""
    count, quiet = 0, 1 << 30
    for _, voiced in times:
        if voiced:
            if quiet >= gap_frames:
                count += 1
            quiet = 0
        else:
            quiet += 1
    return count


def playout(frames: dict[int, tuple[float, bool]], delay_s: float = PLAYOUT_DELAY_S) -> list[tuple[float, str]]:
    """Play received 20 ms frames (index -> (arrival, voiced)) through a simple fixed-delay playout
    buffer: slot i plays at start + delay + 20 ms * i; a frame not there in time is concealed
    (a 20 ms slot of nothing, "c") and the schedule slips; a lost frame is skipped once a later one
    is there; more than delay + 60 ms buffered drops a frame (NetEq's accelerate). Returns
    (play time, "v" voiced | "s" silent | "c" concealed) per slot."""
    if not frames:
        return []
    order = sorted((arrival, index) for index, (arrival, _) in frames.items())
    first, last = min(frames), max(frames)
    step, target = 0.02, round(delay_s / 0.02) + 3
    t, k, seen, newest = frames[first][0] + delay_s, first, 0, first
    out: list[tuple[float, str]] = []
    while k <= last:
        while seen < len(order) and order[seen][0] <= t:
            newest = max(newest, order[seen][1])
            seen += 1
        item = frames.get(k)
        if item is not None and item[0] <= t:
            if newest - k > target:
                k += 1  # accelerate: drop one
                continue
            out.append((t, "v" if item[1] else "s"))
            k += 1
        elif item is None and newest > k:
            out.append((t, "c"))  # lost
            k += 1
        else:
            out.append((t, "c"))  # late: conceal and wait for it
        t += step
    return out


def replies_from_timeline(
    utterances: Sequence[tuple[float, float]],
    first_voiced: Callable[[float, float], float | None],
    count_bursts: Callable[[float, float], int],
    window: tuple[float, float],
) -> Replies:
    """For each utterance (start, end) ending in the window (ASK_MARGIN_S before its end): the
    first voiced audio after its end and before the next utterance starts, and the bursts there."""
    out = Replies()
    ordered = sorted(utterances)
    for i, (_, end) in enumerate(ordered):
        if not window[0] <= end <= window[1] - ASK_MARGIN_S:
            continue
        until = ordered[i + 1][0] if i + 1 < len(ordered) else window[1]
        out.asked += 1
        heard = first_voiced(end, until)
        if heard is None:
            continue
        out.heard += 1
        out.latencies_ms.append((heard - end) * 1000)
        out.fragments.append(count_bursts(end, until))
    return out


# ============================================================================ figures and tables


@dataclass
class RunFigures:
    mode: str  # "aiortc" or "chromium"
    app: str  # "studio" or "peer"
    camera: bool
    n: int
    window_s: float
    cpu: CpuSplit
    engine_cpu_s: float
    load_cpu_s: float  # the load generator (fake browsers, or Chromium)
    rss_base_mb: float
    rss_peak_mb: float
    replies: Replies
    source_fragments: list[int]
    wall_s: float
    notes: list[str] = field(default_factory=list)

    def per_min_conv(self, seconds: float) -> float:
        return seconds / (self.window_s / 60) / self.n


def _pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _fmt(x: float, spec: str = ".2f") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def _top(parts: dict[str, float], window_s: float, k: int = 3) -> str:
    """The k largest parts as "name 1.2%" of a core."""
    ranked = sorted(parts.items(), key=lambda kv: -abs(kv[1]))[:k]
    return ", ".join(f"{name} {seconds / window_s * 100:.1f}%" for name, seconds in ranked) or "-"


def repeat_summary(tables: dict[str, list[RunFigures]], rounds: dict[tuple[int, int], dict[str, RunFigures]]) -> str:
    """With --repeat: per table and N, the median server CPU per conversation and latency p50 over the
    runs; and per N, each round's voice-only studio run against the peer's run of the same round
    (``rounds``: (N, round) -> app label -> figures; a round where either failed has no pair)."""
    lines = []
    for title, runs in tables.items():
        for n in sorted({r.n for r in runs}):
            at_n = [r for r in runs if r.n == n]
            if len(at_n) < 2:
                continue
            cpu = [r.per_min_conv(r.cpu.total_s - r.cpu.probe_s) for r in at_n]
            p50 = [x for x in (_pct(r.replies.latencies_ms, 0.5) for r in at_n) if x is not None]
            lines.append(
                f"{title}, N={n}, {len(at_n)} runs: server CPU median {statistics.median(cpu):.2f} s/min"
                f" ({', '.join(f'{c:.2f}' for c in cpu)}), latency p50 median "
                + (f"{statistics.median(p50):.0f} ms ({', '.join(f'{x:.0f}' for x in p50)})" if p50 else "-")
            )
    for n in sorted({n for n, _ in rounds}):
        ratios = [
            a.per_min_conv(a.cpu.total_s - a.cpu.probe_s) / b.per_min_conv(b.cpu.total_s - b.cpu.probe_s)
            for (at, _), apps in sorted(rounds.items())
            if at == n and (a := apps.get(STUDIO.label)) is not None and (b := apps.get("peer")) is not None
        ]
        if len(ratios) >= 2:
            lines.append(
                f"server CPU per conversation, studio / peer, N={n}: median {statistics.median(ratios):.3f}x over"
                f" {len(ratios)} pairs ({', '.join(f'{x:.3f}' for x in ratios)})"
            )
    return "\n".join(lines)


def table(title: str, runs: Sequence[RunFigures]) -> str:
    head = (
        f"{'N':>2} | {'total':>5} {'leg':>5} {'upstr':>5} {'bridge':>6} {'camera':>6} {'page':>5} {'other':>5} |"
        f" {'p50':>5} {'p90':>5} | {'frag':>7} {'src':>7} | {'conc%':>5} | {'heard':>7} | {'RSS':>5}"
    )
    lines = [
        title,
        f"{'':2}   {'server CPU s per minute per conversation':<45}   {'latency ms':<11}   "
        f"{'fragments/reply':<15}   {'':5}   {'replies':<7}   MB/conv",
        head,
        "-" * len(head),
    ]
    for r in sorted(runs, key=lambda r: r.n):
        b = r.cpu.buckets
        rep = r.replies
        frag = f"{_fmt(statistics.median(rep.fragments), '.0f')}/{max(rep.fragments)}" if rep.fragments else "-"
        src = (
            f"{_fmt(statistics.median(r.source_fragments), '.0f')}/{max(r.source_fragments)}"
            if r.source_fragments
            else "-"
        )
        conc = rep.concealed / rep.total * 100 if rep.total else float("nan")
        page = "-" if r.mode == "aiortc" else _fmt(r.per_min_conv(b["page"]))
        lines.append(
            f"{r.n:>2} | {r.per_min_conv(r.cpu.total_s - r.cpu.probe_s):5.2f} {r.per_min_conv(b['leg']):5.2f} "
            f"{r.per_min_conv(b['upstream']):5.2f} {r.per_min_conv(b['bridge']):6.2f} "
            f"{r.per_min_conv(b['camera']):6.2f} {page:>5} {r.per_min_conv(b['other']):5.2f} |"
            f" {_fmt(_pct(rep.latencies_ms, 0.5), '.0f'):>5} {_fmt(_pct(rep.latencies_ms, 0.9), '.0f'):>5} |"
            f" {frag:>7} {src:>7} | {_fmt(conc, '.2f'):>5} | {f'{rep.heard}/{rep.asked}':>7} |"
            f" {(r.rss_peak_mb - r.rss_base_mb) / r.n:5.1f}"
        )
    lines.append("-" * len(head))
    for r in sorted(runs, key=lambda r: r.n):
        jb = (
            f", jitter buffer {statistics.median(r.replies.jitter_buffer_ms):.0f} ms"
            if r.replies.jitter_buffer_ms
            else ""
        )
        shares = (
            f", loop split leg/page/bridge {r.cpu.main_shares.get('leg', 0):.2f}/"
            f"{r.cpu.main_shares.get('web', 0):.2f}/{r.cpu.main_shares.get('bridge', 0):.2f}"
            if r.cpu.main_shares
            else ""
        )
        lines.append(
            f"N={r.n}: window {r.window_s:.0f} s, run {r.wall_s:.0f} s; server {r.cpu.total_s / r.window_s * 100:.0f}% "
            f"of a core (probe {r.cpu.probe_s / r.window_s * 100:.1f}% excluded); engine "
            f"{r.engine_cpu_s / r.window_s * 100:.0f}%; load generator {r.load_cpu_s / r.window_s * 100:.0f}%; "
            f"RSS {r.rss_base_mb:.0f} -> {r.rss_peak_mb:.0f} MB{jb}{shares}; other: {_top(r.cpu.other, r.window_s)}"
            + (f"; {'; '.join(r.notes)}" if r.notes else "")
        )
    if len({r.n for r in runs}) >= 2:
        xs = [float(r.n) for r in runs]
        ys = [r.rss_peak_mb - r.rss_base_mb for r in runs]
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
        lines.append(f"RSS per extra conversation (least-squares slope over N): {slope:.1f} MB")
    return "\n".join(lines)


LEGEND = """\
Columns: server CPU s per minute of conversation, per conversation (60 = one core); total = the
server process without the probe. leg = browser leg (aiortc ICE/DTLS/SRTP/RTP, streamlit-webrtc
sinks/relay/voice track, Opus codec threads); upstr = aiortc peer to the engine (realtime.loop
thread + workers, upstream Opus); bridge = our Python per-frame work (MicTrack, MicFeed, VoiceOut,
Bridge events, voice pacing; timed per call or sampled); camera = VP8 decode (+ echo encode before issue 15), video
callback, JPEG throttle/encode; page = Streamlit script runs + the web share of the server loop;
other = the rest (footer). p50/p90 = end of the caller's speech -> first reply audio it hears
(aiortc: frame arrival; chromium: after the tab's jitter buffer). frag = voiced bursts per reply
heard (gaps > 60 ms split), median/max; src = the same in what the engine sent (the synthesizer
pauses at punctuation). conc% = audio concealed (chromium: getStats concealedSamples /
totalSamplesReceived; aiortc: 20 ms slots a 60 ms playout buffer would conceal). heard = replies
heard / asked. RSS = MB per conversation ((peak in the window - after the warm-up) / N)."""


# ============================================================================ aiortc mode: the server child


async def _serve(engine_url: str) -> None:
    """The server of aiortc mode: browser legs as streamlit-webrtc builds them, a Bridge each.
    Speaks JSON lines: {"op": "offer", "id", "sdp", "camera"} -> {"op": "answer", "id", "sdp"} and
    later {"op": "state", "id", "state"}; {"op": "close", "id"} -> {"op": "closed", "id"}; {"op": "quit"}."""
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from aiortc.contrib.media import MediaRelay
    from streamlit_webrtc.pcm_source import PcmAudioSource
    from streamlit_webrtc.sink import AudioSinkTrack, VideoSinkTrack
    from streamlit_webrtc.webrtc import WebRtcMode, _process_offer_coro

    from bench.relay_latency import KEY
    from realtime.bridge import Bridge
    from realtime.rtc_tuning import tune_peer_connection
    from realtime.settings import CameraSettings, Settings
    from realtime.voice_source import just_in_time, send_voice_as_opus

    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str] = asyncio.Queue()

    def read_stdin() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        loop.call_soon_threadsafe(lines.put_nowait, '{"op": "quit"}')

    threading.Thread(target=read_stdin, name="capacity-stdin", daemon=True).start()

    def say(obj: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    convs: dict[int, tuple[Any, Any, Any, Any]] = {}

    async def watch(cid: int, bridge: Bridge) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = bridge.snapshot().state
            if state in ("connected", "failed", "closed"):
                say({"op": "state", "id": cid, "state": state, "error": str(bridge.snapshot().error or "")})
                return
            await asyncio.sleep(0.05)
        say({"op": "state", "id": cid, "state": "timeout"})

    async def offer(cid: int, sdp: str, camera: bool) -> None:
        settings = Settings(api_key=KEY, base_url=engine_url, camera=CameraSettings(enabled=camera, interval_s=2.0))
        voice = just_in_time(PcmAudioSource(sample_rate=48000))
        bridge = Bridge(settings, voice)
        sink = AudioSinkTrack(callback=bridge.on_mic_frame)

        def leg_ended() -> None:  # the browser leg ended: hang up, as the app does
            bridge.close_soon()

        sink._on_ended_callback = leg_ended

        def on_video(frame: av.VideoFrame) -> None:  # ui.conversation.Conversation.on_video_frame
            if camera:
                bridge.on_video_frame(frame)

        camera_sink = VideoSinkTrack(callback=on_video)  # ui.self_view.camera_sink: received, not echoed

        pc = RTCPeerConnection()
        relay = MediaRelay()

        @pc.on("connectionstatechange")
        def _leg_state() -> None:
            print(f"{time.strftime('%H:%M:%S')} conversation {cid}: browser leg {pc.connectionState}", file=sys.stderr)

        answer = await _process_offer_coro(
            WebRtcMode.SENDRECV,
            pc,
            RTCSessionDescription(sdp=sdp, type="offer"),
            relay=relay,
            source_video_track=None,
            source_audio_track=relay.subscribe(voice.track),
            sink_video_track=camera_sink,
            sink_audio_track=sink,
            in_recorder=None,
            out_recorder=None,
            video_processor=None,
            audio_processor=None,
            video_receiver=None,
            audio_receiver=None,
            async_processing=True,
            sendback_video=False,
            sendback_audio=True,
            on_track_created=lambda kind, track: None,
            remote_description_set_event=asyncio.Event(),
        )
        tune_peer_connection(pc)  # the app's tune_streamlit_webrtc(ctx), which also does:
        send_voice_as_opus(pc, voice.track)
        convs[cid] = (pc, (sink, camera_sink), voice, bridge)
        bridge.start()
        say({"op": "answer", "id": cid, "sdp": answer.sdp})
        await watch(cid, bridge)

    async def close(cid: int) -> None:
        conv = convs.pop(cid, None)
        if conv is not None:
            pc, sinks, voice, bridge = conv
            await pc.close()
            for sink in sinks:
                sink.stop()
            voice.track.stop()
            await asyncio.to_thread(bridge.close, 5.0)
        say({"op": "closed", "id": cid})

    tasks: set[asyncio.Task[None]] = set()
    say({"op": "ready", "pid": os.getpid()})
    while True:
        msg = json.loads(await lines.get())
        if msg["op"] == "quit":
            break
        coro = offer(msg["id"], msg["sdp"], bool(msg["camera"])) if msg["op"] == "offer" else close(msg["id"])
        task = asyncio.ensure_future(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    for cid in list(convs):
        await close(cid)


def _log_calls() -> None:
    """The product's own account of each call (why one ended, a reconnect) on stderr: the server's log."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    for name in ("realtime", "ui", "aioice.ice", "streamlit_webrtc"):
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(logging.INFO)


def serve_main(engine_url: str, probe_file: str, sample_ms: float) -> None:
    sys.path.insert(0, str(ROOT))
    import importlib

    _log_calls()

    for name in ("realtime.bridge", "realtime.frames", "realtime.mic_track", "realtime.voice_out"):
        importlib.import_module(name)  # before the probe starts, so that it wraps them at once

    Probe(probe_file, sample_ms=sample_ms, source="voiceout", bridge_paths=(str(ROOT / "realtime"),)).start()
    asyncio.run(_serve(engine_url))


# ============================================================================ aiortc mode: the callers


class ServerChild:
    """The --serve child, driven over its stdin/stdout."""

    def __init__(self, proc: asyncio.subprocess.Process, probe_file: Path) -> None:
        self.proc, self.probe_file = proc, probe_file
        self._waiters: dict[tuple[str, int], asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(cls, engine_url: str, workdir: Path, sample_ms: float) -> ServerChild:
        probe_file = workdir / "server-probe.json"
        log = open(workdir / "server.log", "ab")  # noqa: SIM115 (the child keeps the descriptor)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(Path(__file__).resolve()),
            "--serve",
            engine_url,
            "--probe-file",
            str(probe_file),
            "--sample-ms",
            str(sample_ms),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            cwd=str(ROOT),
        )
        log.close()
        _CHILDREN.append(proc.pid)
        server = cls(proc, probe_file)
        await server._take("ready", 0, 60)
        return server

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            msg = json.loads(raw)
            fut = self._wait(msg["op"], int(msg.get("id", 0)))  # kept until taken: it may come first
            if not fut.done():
                fut.set_result(msg)
        for fut in self._waiters.values():
            if not fut.done():
                fut.set_exception(RuntimeError("the server child exited"))

    def _wait(self, op: str, cid: int) -> asyncio.Future[dict[str, Any]]:
        return self._waiters.setdefault((op, cid), asyncio.get_running_loop().create_future())

    async def _take(self, op: str, cid: int, timeout: float) -> dict[str, Any]:
        try:
            return await asyncio.wait_for(asyncio.shield(self._wait(op, cid)), timeout)
        finally:
            self._waiters.pop((op, cid), None)

    def _send(self, obj: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(obj) + "\n").encode())

    async def offer(self, cid: int, sdp: str, camera: bool) -> str:
        self._send({"op": "offer", "id": cid, "sdp": sdp, "camera": camera})
        return str((await self._take("answer", cid, 30))["sdp"])

    async def connected(self, cid: int) -> None:
        msg = await self._take("state", cid, 40)
        if msg["state"] != "connected":
            raise RuntimeError(f"conversation {cid}: the bridge is {msg['state']}: {msg.get('error')}")

    async def close(self, cid: int) -> None:
        self._send({"op": "close", "id": cid})
        await self._take("closed", cid, 20)

    async def quit(self) -> None:
        if self.proc.returncode is None:
            try:
                self._send({"op": "quit"})
                await asyncio.wait_for(self.proc.wait(), 20)
            except (TimeoutError, ConnectionError, RuntimeError):
                self.proc.kill()
                await self.proc.wait()
        self._reader.cancel()


@functools.cache
def _ear_class() -> type:
    import av
    from aiortc.mediastreams import MediaStreamError

    from tests.fakebrowser import AudioRecorder, rms

    class Ear(AudioRecorder):
        """The fake browser's speaker, keeping every frame's arrival time, RTP-derived index and voicing."""

        def __init__(self) -> None:
            super().__init__()
            self.log: list[tuple[float, int, bool]] = []

        async def _run(self, track: MediaStreamTrack) -> None:
            first_pts: int | None = None
            try:
                while True:
                    frame = await track.recv()
                    now = time.monotonic()
                    assert isinstance(frame, av.AudioFrame)  # an audio track's frames
                    pcm = frame.to_ndarray().reshape(-1)
                    voiced = rms(pcm) > VOICED_RMS
                    pts = int(frame.pts or 0)
                    first_pts = pts if first_pts is None else first_pts
                    self.log.append((now, round((pts - first_pts) / max(1, frame.samples)), voiced))
                    if voiced:
                        self.last_audio_at = now
                        if self.first_audio_at is None:
                            self.first_audio_at = now
                            self._first.set()
            except (MediaStreamError, asyncio.CancelledError):
                return

    return Ear


@functools.cache
def _camera_class() -> type:
    import numpy

    from tests.fakebrowser import SolidVideoTrack
    from ui.self_view import SEND_FPS

    class MovingCamera(SolidVideoTrack):
        """640x480 at ui.self_view.SEND_FPS (what a tab's call sends of its camera): a bar sweeping across a
        blue field every 2 s."""

        frames: ClassVar[list[Any]] = []

        def __init__(self) -> None:
            super().__init__((20, 60, 230), size=(640, 480), fps=SEND_FPS)
            if not MovingCamera.frames:
                for i in range(30):
                    image = numpy.empty((480, 640, 3), dtype=numpy.uint8)
                    image[:, :] = (20, 60, 230)
                    x = i * 600 // 30
                    image[:, x : x + 40] = (240, 200, 40)
                    MovingCamera.frames.append(image)
            self._i = 0

        async def recv(self) -> av.VideoFrame:
            self._image = MovingCamera.frames[self._i % len(MovingCamera.frames)]
            self._i += 1
            return await super().recv()

    return MovingCamera


@dataclass
class Caller:
    cid: int
    browser: Any  # tests.fakebrowser.FakeBrowser
    ear: Any  # Ear
    utterances: list[tuple[float, float]] = field(default_factory=list)  # (start, end), monotonic


async def open_caller(server: ServerChild, cid: int, camera: bool) -> Caller:
    from tests.fakebrowser import FakeBrowser

    browser = FakeBrowser(rgb=None, ear_tuned=True)
    ear = _ear_class()()
    browser.speaker = ear
    caller = Caller(cid, browser, ear)
    if camera:  # as the tab's call sends it: no self-view comes back (the tab draws its own)
        browser.pc.addTransceiver(_camera_class()(), direction="sendonly")

    await browser.connect(lambda sdp: server.offer(cid, sdp, camera))
    await server.connected(cid)
    return caller


async def close_caller(server: ServerChild, caller: Caller) -> None:
    try:
        await caller.browser.close()
    finally:
        await server.close(caller.cid)


async def speak(caller: Caller, speech: Sequence[np.ndarray], rng: random.Random, last_start: float) -> None:
    """One utterance every 6-8 s (staggered start) until last_start."""
    await asyncio.sleep(rng.uniform(0.2, 6.0))
    while time.monotonic() <= last_start:
        started = time.monotonic()
        caller.browser.mic.say(speech[rng.randrange(len(speech))])
        ended = await caller.browser.mic.wait_spoken(timeout=30)
        caller.utterances.append((started, ended))
        await asyncio.sleep(max(0.0, started + rng.uniform(6.0, 8.0) - time.monotonic()))


def caller_replies(caller: Caller, window: tuple[float, float]) -> Replies:
    log = caller.ear.log
    frames: dict[int, tuple[float, bool]] = {}
    for arrival, index, voiced in log:
        frames.setdefault(index, (arrival, voiced))
    slots = playout(frames)

    def first_voiced(after: float, until: float) -> float | None:
        return next((a for a, _, v in log if v and after <= a < until), None)

    def count_bursts(after: float, until: float) -> int:
        return bursts([(t, s == "v") for t, s in slots if after <= t < until])

    out = replies_from_timeline(caller.utterances, first_voiced, count_bursts, window)
    in_window = [s for t, s in slots if window[0] <= t < window[1]]
    out.concealed = sum(1 for s in in_window if s == "c")
    out.total = len(in_window)
    return out


def _leg_late_s(voice_source: Any, bridge: Any) -> float:
    track = voice_source.voice_track(bridge.voice.audio_out) if voice_source else None
    return float(track.late_s) if track is not None else 0.0


def bridge_note(all_bridges: Sequence[dict[str, Any]], since: float) -> str:
    """The server's own view of its conversations (the Bridges made after `since`) at the window's end."""
    bridges = [b for b in all_bridges if b.get("created", 0.0) >= since]
    if not bridges:
        return "no Bridge seen"
    states = sorted({b["state"] for b in bridges})
    errors = sorted({b.get("error", "") for b in bridges if b.get("error")})
    reasons = sorted({r for b in bridges for r in b.get("reasons", [])})
    legs_ended = sum(1 for b in bridges if b["state"] == "closed")
    voice_ms = sum(b.get("voice_dropped_ms", 0.0) for b in bridges)
    mic_ms = sum(b.get("mic_dropped_ms", 0.0) for b in bridges)
    mic_parts = {k: sum(b.get(f"mic_{k}_ms", 0.0) for b in bridges) for k in ("trimmed", "late", "pushed", "silence")}
    images = sum(b.get("images", 0) for b in bridges)
    return (
        f"{len(bridges)} bridges {'/'.join(states)}, {sum(b.get('replaced', 0) for b in bridges)} reconnects, "
        f"{images} images sent, voice dropped {voice_ms:.0f} ms, mic dropped {mic_ms:.0f} ms"
        f" (trimmed {mic_parts['trimmed']:.0f}, the rest overflow; of {mic_parts['pushed']:.0f} ms pushed;"
        f" late {mic_parts['late']:.0f} ms, silence sent {mic_parts['silence']:.0f} ms)"
        f"; late: leg's voice reads {sum(b.get('leg_late_ms', 0.0) for b in bridges):.0f} ms,"
        f" bridge loop {max(b.get('loop_late_ms', 0.0) for b in bridges):.0f} ms,"
        f" voice starved {sum(b.get('voice_starved_ms', 0.0) for b in bridges):.0f} ms"
        + (f" ({'; '.join(reasons[:2])})" if reasons else "")
        + (f", {legs_ended} browser legs ended" if legs_ended else "")
        + (f", errors: {errors[:2]}" if errors else "")
    )


def turn_note(db: Path, since: float, until: float) -> str:
    """The server's own account of the spoken turns in the window, from the studio's History: how many
    were answered, and where a reply's wait went. With the local engine the reply's text comes as soon
    as the turn is transcribed, so "to text" is the wait for the recognizer; "to voice" adds the
    synthesis and the start of playback (the tab's own p50 adds the way back and Chromium's buffer)."""
    import sqlite3

    if not db.exists():
        return "no History database"
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = conn.execute("SELECT details FROM turns WHERE created_at BETWEEN ? AND ?", (since, until)).fetchall()
    turns = [json.loads(r[0]) for r in rows]
    spoken = [t for t in turns if t.get("trigger") == "speech"]
    if not spoken:
        return "server: no spoken turn completed"
    statuses: dict[str, int] = {}
    for t in spoken:
        statuses[t.get("status", "?")] = statuses.get(t.get("status", "?"), 0) + 1
    to_text = [t["first_text_ms"] for t in spoken if t.get("first_text_ms") is not None]
    to_voice = [t["first_audio_ms"] for t in spoken if t.get("first_audio_ms") is not None]
    counted = ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
    return (
        f"server: {len(spoken)} spoken turns ({counted}); speech end to reply text"
        f" p50 {_fmt(_pct(to_text, 0.5), '.0f')} p90 {_fmt(_pct(to_text, 0.9), '.0f')} ms,"
        f" to voice p50 {_fmt(_pct(to_voice, 0.5), '.0f')} ms"
    )


class Ticker:
    """Progress (tqdm, one bar per run) and the server's RSS, polled once a second."""

    def __init__(self, desc: str, seconds: float) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=round(seconds), desc=desc, unit="s", leave=True, dynamic_ncols=True)
        self.rss_peak_kb = 0

    def step(self, probe_file: Path | None, note: str = "") -> None:
        self.bar.update(1)
        if note:
            self.bar.set_postfix_str(note)
        if probe_file is not None:
            try:
                self.rss_peak_kb = max(self.rss_peak_kb, int(json.loads(probe_file.read_text())["rss_kb"]))
            except (OSError, ValueError, KeyError):
                pass

    def status(self, text: str) -> None:
        self.bar.set_postfix_str(text)

    def close(self) -> None:
        self.bar.close()


async def run_aiortc(n: int, camera: bool, seconds: float, seed: int, workdir: Path, sample_ms: float) -> RunFigures:
    import numpy

    from bench.relay_latency import UTTERANCES, process_cpu_s
    from tests.media import resample_pcm16, speech_pcm24k

    began = time.monotonic()
    speech = [numpy.frombuffer(resample_pcm16(speech_pcm24k(t), 24_000, 48_000), dtype=numpy.int16) for t in UTTERANCES]
    ticker = Ticker(f"aiortc N={n} {'camera' if camera else 'voice'}", seconds)
    engine, engine_url = start_engine(workdir)
    server: ServerChild | None = None
    callers: list[Caller] = []
    try:
        ticker.status("starting the server")
        server = await ServerChild.start(engine_url, workdir, sample_ms)
        ticker.status("warm-up conversation")
        warm = await open_caller(server, 0, camera)
        warm.browser.mic.say(speech[0])
        try:
            await warm.ear.wait_for_audio(timeout=20)
        except TimeoutError:
            ticker.bar.write("warm-up: no reply within 20 s (measuring anyway)")
        await close_caller(server, warm)
        await asyncio.sleep(1.0)
        base = read_probe(server.probe_file, time.time())
        for i in range(1, n + 1):
            ticker.status(f"connecting {i}/{n}")
            callers.append(await open_caller(server, i, camera))
        await asyncio.sleep(1.5)
        rng = random.Random(seed * 1000 + n)
        s0 = read_probe(server.probe_file, time.time())
        e0, l0, t0 = engine_cpu(engine.pid), process_cpu_s(), time.monotonic()
        end = t0 + seconds
        speakers = [asyncio.ensure_future(speak(c, speech, rng, end - ASK_MARGIN_S - 1)) for c in callers]
        ticker.status("talking")
        for _ in range(round(seconds)):
            await asyncio.sleep(max(0.0, t0 + ticker.bar.n + 1 - time.monotonic()))
            ticker.step(server.probe_file)
        s1 = read_probe(server.probe_file, time.time())
        e1, l1, t1 = engine_cpu(engine.pid), process_cpu_s(), time.monotonic()
        for task in speakers:
            task.cancel()
        await asyncio.gather(*speakers, return_exceptions=True)
        replies = Replies()
        for caller in callers:
            replies.add(caller_replies(caller, (t0, t1)))
        cpu = split_cpu(s0, s1)
        source = [b for at, b in s1["replies"] if s0["wall"] <= at <= s1["wall"]]
        return RunFigures(
            mode="aiortc",
            app="studio",
            camera=camera,
            n=n,
            window_s=t1 - t0,
            cpu=cpu,
            engine_cpu_s=sum(t - e0.get(pid, 0.0) for pid, t in e1.items()),
            load_cpu_s=l1 - l0,
            rss_base_mb=base["rss_kb"] / 1024,
            rss_peak_mb=max(ticker.rss_peak_kb, s1["rss_kb"]) / 1024,
            replies=replies,
            source_fragments=source,
            wall_s=0.0,
            notes=[bridge_note(s1.get("bridges", []), base["wall"])],
        )
    finally:
        ticker.status("hanging up")
        if server is not None:
            closing = await asyncio.gather(*(close_caller(server, c) for c in callers), return_exceptions=True)
            for caller, result in zip(callers, closing, strict=True):
                if isinstance(result, BaseException):
                    ticker.bar.write(f"closing conversation {caller.cid}: {result!r}")
            await server.quit()
        engine.terminate()
        try:
            engine.wait(10)
        except subprocess.TimeoutExpired:
            engine.kill()
        ticker.close()
        ticker.bar.write(f"aiortc N={n} camera={camera}: {time.monotonic() - began:.0f} s")


# ============================================================================ chromium mode

# In every frame of the tab, before the page's scripts: keep each RTCPeerConnection (for getStats),
# and meter the mic (getUserMedia) and the remote voice (the peer's audio track) with an
# AudioWorklet, which reports voiced runs (split by > 60 ms) on the tab's audio clock.
INIT_JS = """
(() => {
  if (window.__cap) return;
  const cap = window.__cap = {pcs: [], runs: [], open: {}, ctx: null, ready: null, watched: 0, errors: [], keep: [],
                              events: []};
  const SRC = `class CapMeter extends AudioWorkletProcessor {
    constructor(o) { super(); this.kind = o.processorOptions.kind; this.on = false; this.start = 0; this.last = 0; }
    process(inputs) {
      const ch = inputs[0] && inputs[0][0];
      const n = ch ? ch.length : 0;
      let s = 0;
      for (let i = 0; i < n; i++) s += ch[i] * ch[i];
      const t = currentTime;
      if (n && Math.sqrt(s / n) > THRESHOLD) {
        if (!this.on) { this.on = true; this.start = t; this.port.postMessage(['on', this.kind, t]); }
        this.last = t + n / sampleRate;
      } else if (this.on && t - this.last > 0.06) {
        this.on = false;
        this.port.postMessage(['off', this.kind, this.start, this.last]);
      }
      return true;
    }
  }
  registerProcessor('cap-meter', CapMeter);`.replace('THRESHOLD', String(__THRESHOLD__));
  const context = () => {
    if (!cap.ctx) {
      cap.ctx = new AudioContext();
      const url = URL.createObjectURL(new Blob([SRC], {type: 'application/javascript'}));
      cap.ready = cap.ctx.audioWorklet.addModule(url);
    }
    cap.ctx.resume();
    return cap.ready;
  };
  const watch = async (track, kind) => {
    try {
      await context();
      const id = kind + (cap.watched++);
      const src = cap.ctx.createMediaStreamSource(new MediaStream([track]));
      const node = new AudioWorkletNode(cap.ctx, 'cap-meter', {processorOptions: {kind}});
      node.port.onmessage = (e) => {
        const m = e.data;
        if (m[0] === 'on') cap.open[id] = [m[1], m[2]];
        else { delete cap.open[id]; cap.runs.push([m[1], m[2], m[3]]); }
      };
      const zero = cap.ctx.createGain();
      zero.gain.value = 0;
      src.connect(node); node.connect(zero); zero.connect(cap.ctx.destination);
      cap.keep.push(src, node, zero, track);
    } catch (e) { cap.errors.push(String(e)); }
  };
  const Orig = window.RTCPeerConnection;
  if (Orig) {
    const Wrapped = function (...args) {
      const pc = new Orig(...args);
      cap.pcs.push(pc);
      pc.addEventListener('track', (e) => { if (e.track.kind === 'audio') watch(e.track, 'voice'); });
      const note = (what) => cap.events.push([Date.now() / 1000, what]);
      pc.addEventListener('connectionstatechange', () => note('connection ' + pc.connectionState));
      pc.addEventListener('iceconnectionstatechange', () => note('ice ' + pc.iceConnectionState));
      const close = pc.close.bind(pc);
      pc.close = () => {
        note('closed by the page: ' + String(new Error().stack).split('\\n').slice(2, 5).join(' < '));
        close();
      };
      return pc;
    };
    Wrapped.prototype = Orig.prototype;
    Object.setPrototypeOf(Wrapped, Orig);
    window.RTCPeerConnection = Wrapped;
  }
  const md = navigator.mediaDevices;
  if (md && md.getUserMedia) {
    const orig = md.getUserMedia.bind(md);
    md.getUserMedia = async (c) => {
      const s = await orig(c);
      for (const t of s.getAudioTracks()) watch(t, 'mic');
      return s;
    };
  }
})();
""".replace("__THRESHOLD__", f"{VOICED_RMS / 32768:.5f}")

READ_JS = """
async () => {
  const c = window.__cap;
  if (!c || !c.pcs.length) return null;
  const stats = [];
  for (const pc of c.pcs) {
    if (pc.connectionState === 'closed') continue;
    const report = await pc.getStats();
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') stats.push({
        concealed: s.concealedSamples || 0, silent: s.silentConcealedSamples || 0,
        total: s.totalSamplesReceived || 0, jb: s.jitterBufferDelay || 0, jbn: s.jitterBufferEmittedCount || 0});
    });
  }
  return {now: c.ctx ? c.ctx.currentTime : null, runs: c.runs.slice(), open: Object.values(c.open),
          watched: c.watched, errors: c.errors.slice(), events: c.events.slice(),
          connected: c.pcs.some((pc) => pc.connectionState === 'connected'), stats};
}
"""


@dataclass(frozen=True)
class AppUnderTest:
    label: str  # "studio" or "peer"
    script: Path
    start: re.Pattern[str]  # the WebRTC component's start button
    own_engine: bool  # the app starts its local engine itself (the studio) or the bench does (the peer)
    source: str  # where the probe counts what the engine sent: "voiceout" or "pcm"


STUDIO = AppUnderTest("studio", ROOT / "app.py", re.compile(r"^Start conversation$"), True, "voiceout")


def peer_app(path: Path) -> AppUnderTest:
    return AppUnderTest("peer", path.resolve(), re.compile(r"^start$", re.I), False, "pcm")


@dataclass
class Tab:
    page: Page
    frame: Frame | None = None
    a0: float = 0.0  # the window on the tab's audio clock
    stats0: list[dict[str, float]] = field(default_factory=list)


def _cap_frame(page: Page) -> Frame | None:
    for frame in page.frames:
        try:
            if frame.evaluate("() => !!(window.__cap && window.__cap.pcs.length)"):
                return frame
        except Exception:
            continue
    return None


def _read_tab(tab: Tab) -> dict[str, Any]:
    if tab.frame is None:
        tab.frame = _cap_frame(tab.page)
    if tab.frame is None:
        return {}
    return tab.frame.evaluate(READ_JS) or {}


def start_tab(browser: Browser, url: str, app: AppUnderTest, timeout_s: float = 60.0) -> Tab:
    from playwright.sync_api import expect

    from tests.browser.driver import CALL_UP, component_frame, status, wait_loaded
    from tests.browser.harness import VIEWPORT

    context = browser.new_context(viewport=cast(Any, VIEWPORT))
    context.add_init_script(INIT_JS)
    page = context.new_page()
    page.goto(url)
    wait_loaded(page)  # a Start pressed before the component's mount rerun can be undone by it
    component_frame(page).get_by_role("button", name=app.start).click(timeout=timeout_s * 1000)
    if app.label == "studio":
        expect(status(page)).to_contain_text(CALL_UP, timeout=timeout_s * 1000)  # up, if overloaded
    tab = Tab(page)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        data = _read_tab(tab)
        if data.get("connected") and data.get("watched", 0) >= 2:
            return tab
        page.wait_for_timeout(250)
    raise RuntimeError(f"{app.label}: the tab did not connect in {timeout_s:.0f} s")


def _sum_stats(stats: list[dict[str, float]]) -> dict[str, float]:
    keys = ("concealed", "silent", "total", "jb", "jbn")
    return {k: sum(s.get(k, 0.0) for s in stats) for k in keys}


def tab_replies(tab: Tab, data: dict[str, Any]) -> Replies:
    a1 = float(data.get("now") or tab.a0)
    runs = [(k, float(s), float(e)) for k, s, e in data.get("runs", [])]
    runs += [(k, float(s), a1) for k, s in data.get("open", [])]
    mic = sorted((s, e) for k, s, e in runs if k == "mic")
    voice = sorted((s, e) for k, s, e in runs if k == "voice")
    utterances: list[tuple[float, float]] = []
    for s, e in mic:  # the mic's runs, merged across pauses shorter than 0.5 s, are utterances
        if utterances and s - utterances[-1][1] < 0.5:
            utterances[-1] = (utterances[-1][0], max(utterances[-1][1], e))
        else:
            utterances.append((s, e))

    def first_voiced(after: float, until: float) -> float | None:
        return next((s for s, _ in voice if after <= s < until), None)

    def count_bursts(after: float, until: float) -> int:  # the worklet's runs are bursts already
        return sum(1 for s, _ in voice if after <= s < until)

    out = replies_from_timeline(utterances, first_voiced, count_bursts, (tab.a0, a1))
    s0, s1 = _sum_stats(tab.stats0), _sum_stats(data.get("stats", []))
    out.concealed = s1["concealed"] - s0["concealed"]
    out.total = s1["total"] - s0["total"]
    if s1["jbn"] > s0["jbn"]:
        out.jitter_buffer_ms.append((s1["jb"] - s0["jb"]) / (s1["jbn"] - s0["jbn"]) * 1000)
    return out


def start_app(app: AppUnderTest, env: dict[str, str], workdir: Path, timeout: float = 90.0) -> tuple[Any, str]:
    from tests.browser.harness import free_port, wait_healthy

    port = free_port()
    with open(workdir / f"{app.label}.log", "ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(app.script),
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--server.headless",
                "true",
            ],
            cwd=str(ROOT if app.own_engine else app.script.parent),  # the peer: its own (default) config
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    _CHILDREN.append(proc.pid)
    url = f"http://127.0.0.1:{port}"
    outcome = wait_healthy(proc, url, timeout)
    if outcome == "healthy":
        return proc, url
    if outcome == "exited":
        raise RuntimeError(f"{app.label} exited early; see {workdir / (app.label + '.log')}")
    raise RuntimeError(f"{app.label} did not become healthy in {timeout:.0f} s")


def stop_process(proc: Any, timeout: float = 15.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def run_chromium(
    app: AppUnderTest,
    n: int,
    camera: bool,
    seconds: float,
    workdir: Path,
    hook_dir: Path,
    wav: Path,
    sample_ms: float,
    loadgen_nice: int = 0,
) -> RunFigures:
    from playwright.sync_api import sync_playwright

    from bench.relay_latency import KEY
    from tests.browser.harness import CHROMIUM, chromium_args, clean_env

    began = time.monotonic()
    ticker = Ticker(f"chromium {app.label} N={n} {'camera' if camera else 'voice'}", seconds)
    probe_file = workdir / f"{app.label}-probe.json"
    probe_file.unlink(missing_ok=True)
    extra = {
        "PYTHONPATH": os.pathsep.join([str(hook_dir), *filter(None, [os.environ.get("PYTHONPATH")])]),
        PROBE_FILE_ENV: str(probe_file),
        PROBE_SCRIPT_ENV: str(Path(__file__).resolve()),
        PROBE_OPTS_ENV: json.dumps(
            {
                "sample_ms": sample_ms,
                "source": app.source,
                "bridge_paths": [str(ROOT / "realtime"), str(ROOT / "ui")]
                if app.label == "studio"
                else [str(app.script)],
            }
        ),
    }
    engine = None
    proc = None
    if app.own_engine:
        extra["REALTIME_HISTORY_DB"] = str(workdir / f"history-{n}.db")
        extra["REALTIME_CAMERA"] = "on" if camera else "off"
        extra["REALTIME_MAX_CONVERSATIONS"] = str(n)  # all N tabs are measured, past the default limit too
    else:
        engine, engine_url = start_engine(workdir)
        extra.update(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=engine_url)
    args = [a for a in chromium_args(wav, wav) if not a.startswith("--use-file-for-fake-video-capture")]
    try:
        ticker.status("starting the app")
        proc, url = start_app(app, clean_env(**extra), workdir)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
            try:
                ticker.status("warm-up conversation")
                warm = start_tab(browser, url, app, timeout_s=90)
                warm.page.wait_for_timeout(3000)
                warm.page.context.close()
                time.sleep(2.0)
                base = read_probe(probe_file, time.time())
                engine_pid = engine.pid if engine is not None else None
                if engine_pid is None:
                    engine_pid = next((p for p in descendants(proc.pid) if "localengine" in cmdline(p)), None)

                def load_generator() -> list[int]:  # Playwright and Chromium: not the app, its engine or theirs
                    server_tree = {proc.pid, *descendants(proc.pid)}
                    return [p for p in descendants(os.getpid()) if p not in server_tree and p != engine_pid]

                tabs = []
                for i in range(n):
                    if loadgen_nice:  # each tab's renderer is a new process
                        renice(load_generator(), loadgen_nice)
                    ticker.status(f"connecting {i + 1}/{n}")
                    tabs.append(start_tab(browser, url, app))
                time.sleep(1.5)
                loadgen = load_generator()
                for tab in tabs:
                    data = _read_tab(tab)
                    tab.a0, tab.stats0 = float(data.get("now") or 0.0), data.get("stats", [])
                s0 = read_probe(probe_file, time.time())
                if loadgen_nice:
                    renice(loadgen, loadgen_nice)
                e0 = engine_cpu(engine_pid)
                w0 = time.time()
                g0 = sum(proc_cpu_s(p) for p in loadgen)
                t0 = time.monotonic()
                ticker.status("talking")
                for _ in range(round(seconds)):
                    time.sleep(max(0.0, t0 + ticker.bar.n + 1 - time.monotonic()))
                    ticker.step(probe_file)
                s1 = read_probe(probe_file, time.time())
                e1 = engine_cpu(engine_pid)
                w1 = time.time()
                g1 = sum(proc_cpu_s(p) for p in loadgen)
                t1 = time.monotonic()
                replies = Replies()
                notes: list[str] = [f"the tabs ran at nice {loadgen_nice}"] if loadgen_nice else []
                for i, tab in enumerate(tabs):
                    data = _read_tab(tab)
                    dump = {"a0": tab.a0, "stats0": tab.stats0, **data}
                    (workdir / f"{app.label}-n{n}-{'camera' if camera else 'voice'}-tab{i}.json").write_text(
                        json.dumps(dump)
                    )
                    if data.get("errors"):
                        notes.append(f"tab meter errors: {data['errors'][:2]}")
                    replies.add(tab_replies(tab, data))
                ticker.status("hanging up")
                for tab in tabs:
                    tab.page.context.close()
            finally:
                browser.close()
        cpu = split_cpu(s0, s1)
        source = [b for at, b in s1["replies"] if s0["wall"] <= at <= s1["wall"]]
        notes.insert(0, bridge_note(s1.get("bridges", []), base["wall"]))
        if app.own_engine:
            notes.insert(1, turn_note(workdir / f"history-{n}.db", w0, w1 + 5.0))
        if engine_pid is None:
            notes.append("engine process not found")
        return RunFigures(
            mode="chromium",
            app=app.label,
            camera=camera,
            n=n,
            window_s=t1 - t0,
            cpu=cpu,
            engine_cpu_s=sum(t - e0.get(pid, 0.0) for pid, t in e1.items()),
            load_cpu_s=g1 - g0,
            rss_base_mb=base["rss_kb"] / 1024,
            rss_peak_mb=max(ticker.rss_peak_kb, s1["rss_kb"]) / 1024,
            replies=replies,
            source_fragments=source,
            wall_s=0.0,
            notes=notes,
        )
    finally:
        if proc is not None:
            children = descendants(proc.pid)
            stop_process(proc)
            for pid in children:
                _kill(pid)
        if engine is not None:
            stop_process(engine)
        ticker.close()
        ticker.bar.write(f"chromium {app.label} N={n} camera={camera}: {time.monotonic() - began:.0f} s")


# ============================================================================ main

_CHILDREN: list[int] = []  # every process started, killed at exit if still there


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _reap_children() -> None:
    """Kill whatever the bench started that is still running (and its children)."""
    ours = set(descendants(os.getpid()))
    for pid in _CHILDREN:
        if pid in ours:
            for kid in descendants(pid):
                _kill(kid)
            _kill(pid)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    os.kill(os.getpid(), signal.SIGINT)


def _timed_run(fn: Callable[[], RunFigures], label: str, failures: list[str]) -> RunFigures | None:
    """One N's run, timed; a run that fails is reported in ``failures`` and the next N still runs."""
    began = time.monotonic()
    try:
        figures = fn()
    except Exception as exc:  # e.g. a conversation that never connected at N=8: a figure in itself
        failures.append(f"{label}: {type(exc).__name__}: {exc}")
        print(f"{label}: failed after {time.monotonic() - began:.0f} s: {exc}", file=sys.stderr)
        return None
    figures.wall_s = time.monotonic() - began
    return figures


def _run_aiortc_bounded(n: int, camera: bool, seconds: float, seed: int, workdir: Path, sample_ms: float) -> RunFigures:
    bound = seconds + 150 + 10 * n
    return asyncio.run(asyncio.wait_for(run_aiortc(n, camera, seconds, seed, workdir, sample_ms), bound))


def _variants(camera: str) -> list[bool]:
    return {"on": [True], "off": [False], "both": [False, True]}[camera]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--mode", choices=("aiortc", "chromium"), default="aiortc")
    parser.add_argument("--n", default="1,2,4,8", help="concurrent conversations per run, comma list (<= 16)")
    parser.add_argument("--seconds", type=float, default=60.0, help="measured window per N (10..600)")
    parser.add_argument("--camera", nargs="?", const="on", default="on", choices=("on", "off", "both"))
    parser.add_argument("--no-camera", dest="camera", action="store_const", const="off")
    parser.add_argument("--peer", type=Path, help="another Streamlit realtime app, run the same way (chromium)")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        choices=range(1, 11),
        metavar="1..10",
        help="chromium: run each N this many times, the apps taking turns; prints the medians and, with --peer,"
        " the median of each pair's CPU ratio (one run's figure moves by about a tenth)",
    )
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--sample-ms",
        type=float,
        default=10.0,
        help="sample the server loop's stack every N ms to split it between leg, page and bridge (0: off, all leg)",
    )
    parser.add_argument(
        "--loadgen-nice",
        type=int,
        default=0,
        choices=range(20),
        metavar="0..19",
        help="chromium: the tabs run at this niceness, as on their users' own machines (0: they compete equally)",
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--probe-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve_main(args.serve, args.probe_file, args.sample_ms)
        return 0

    ns = sorted({int(x) for x in args.n.split(",") if x.strip()})
    if not ns or ns[0] < 1 or ns[-1] > MAX_N:
        parser.error(f"--n takes numbers 1..{MAX_N}")
    seconds = max(10.0, min(args.seconds, 600.0))
    if args.peer is not None and not args.peer.is_file():
        parser.error(f"--peer: no such file {args.peer}")
    workdir = Path(tempfile.mkdtemp(prefix="capacity-"))
    logging.disable(logging.WARNING)  # Streamlit's "no runtime" warnings when realtime/ is imported bare
    # Ctrl-C (also when started in the background, where SIGINT comes ignored) and kill: a SIGINT, which
    # asyncio.run turns into cancelling the run (its cleanup still has the loop), elsewhere KeyboardInterrupt
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    tables: dict[str, list[RunFigures]] = {}
    rounds: dict[tuple[int, int], dict[str, RunFigures]] = {}  # (N, round) -> app label -> its voice-only run
    failures: list[str] = []
    started = time.monotonic()
    print(f"capacity: mode {args.mode}, N {ns}, {seconds:.0f} s each, camera {args.camera}; logs in {workdir}")
    try:
        if args.mode == "aiortc":
            for n in ns:
                for camera in _variants(args.camera):
                    key = f"aiortc mode, {'camera on' if camera else 'voice only'}"
                    figures = _timed_run(
                        functools.partial(_run_aiortc_bounded, n, camera, seconds, args.seed, workdir, args.sample_ms),
                        f"{key}, N={n}",
                        failures,
                    )
                    if figures is not None:
                        tables.setdefault(key, []).append(figures)
        apps = ([STUDIO] if args.mode == "chromium" else []) + ([peer_app(args.peer)] if args.peer else [])
        if apps:
            from tests.media import speech_wav

            hook_dir = workdir / "hook"
            hook_dir.mkdir()
            (hook_dir / "sitecustomize.py").write_text(SITECUSTOMIZE)
            probe = speech_wav(workdir / "probe.wav", "hello there, can you hear me", tail_silence_ms=0)
            with __import__("wave").open(str(probe)) as w:
                spoken_ms = w.getnframes() * 1000 // w.getframerate()
            wav = speech_wav(
                workdir / "speech.wav",
                "hello there, can you hear me",
                lead_silence_ms=500,
                tail_silence_ms=max(3000, 7000 - spoken_ms),
            )
            # the apps take turns at each N (--repeat), so each pair of runs shares the machine's mood
            for n, rep, app in ((n, rep, app) for n in ns for rep in range(args.repeat) for app in apps):
                for camera in _variants(args.camera) if app.own_engine else [False]:
                    key = f"chromium mode, {app.label} ({app.script.name}), {'camera on' if camera else 'voice only'}"
                    figures = _timed_run(
                        functools.partial(
                            run_chromium,
                            app,
                            n,
                            camera,
                            seconds,
                            workdir,
                            hook_dir,
                            wav,
                            args.sample_ms,
                            args.loadgen_nice,
                        ),
                        f"{key}, N={n}",
                        failures,
                    )
                    if figures is not None:
                        tables.setdefault(key, []).append(figures)
                        if not camera:
                            rounds.setdefault((n, rep), {})[app.label] = figures
    except KeyboardInterrupt:
        print("interrupted: stopping everything", file=sys.stderr)
    finally:
        _reap_children()
    print()
    for title, runs in tables.items():
        print(table(title, runs))
        print()
    summary = repeat_summary(tables, rounds)
    if summary:
        print(summary)
        print()
    for failure in failures:
        print(f"failed: {failure}")
    print(LEGEND)
    print(f"total {time.monotonic() - started:.0f} s; load average {os.getloadavg()[0]:.1f} (2 cores shared)")
    if args.json:
        out = {
            title: [
                {
                    **{k: v for k, v in asdict(r).items() if k not in ("cpu", "replies")},
                    "cpu": asdict(r.cpu),
                    "cpu_s_per_min_per_conversation": {
                        "total": r.per_min_conv(r.cpu.total_s - r.cpu.probe_s),
                        **{b: r.per_min_conv(s) for b, s in r.cpu.buckets.items()},
                    },
                    "latency_ms": {"p50": _pct(r.replies.latencies_ms, 0.5), "p90": _pct(r.replies.latencies_ms, 0.9)},
                    "replies": asdict(r.replies),
                    "rss_mb_per_conversation": (r.rss_peak_mb - r.rss_base_mb) / r.n,
                }
                for r in runs
            ]
            for title, runs in tables.items()
        }
        out["failed"] = failures  # type: ignore[assignment]
        args.json.write_text(json.dumps(out, indent=1, default=str))
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
