"""Run the real app (`streamlit run app.py`) and Debian's Chromium with fake media, for browser tests.

Everything is loopback: the app starts its local engine itself (no key in the environment), or a
test points it at a separately started engine. Logs go to artifacts/logs/ for post-mortems.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import wave
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
LOGS = ARTIFACTS / "logs"
CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1280, "height": 800}

# Variables that would make the app leave the local engine, or leak a developer's settings in.
_SCRUBBED = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED and not k.startswith("REALTIME_")}
    env.update({"PYTHONUNBUFFERED": "1", "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false"})
    env.update(extra)
    return env


@dataclass
class StreamlitApp:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_streamlit(name: str, env: Mapping[str, str], timeout: float = 60.0) -> StreamlitApp:
    LOGS.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = LOGS / f"streamlit-{name}.log"
    # The child keeps its own copy of the log's descriptor; ours is closed once it started.
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "app.py",
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--server.headless",
                "true",
                "--logger.level",
                "info",
            ],
            cwd=ROOT,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    outcome = wait_healthy(proc, url, timeout)
    if outcome == "healthy":
        return StreamlitApp(url, proc, log_path)
    if outcome == "exited":
        raise RuntimeError(f"streamlit exited early:\n{log_path.read_text(errors='replace')}")
    proc.kill()
    raise RuntimeError(f"streamlit did not become healthy in {timeout}s")


def wait_healthy(proc: subprocess.Popen, url: str, timeout: float) -> str:
    """Poll a Streamlit server's health route until it answers: "healthy", "exited" or "timeout"."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return "exited"
        with contextlib.suppress(OSError), urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
            if r.status == 200:
                return "healthy"
        time.sleep(0.2)
    return "timeout"


@dataclass
class Engine:
    base_url: str
    process: subprocess.Popen

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_engine_process(env: Mapping[str, str], timeout: float = 60.0, port: int = 0) -> Engine:
    """`python -m localengine --port N` (0: any); its first stdout line names the base URL."""
    LOGS.mkdir(parents=True, exist_ok=True)
    with open(LOGS / "engine.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "localengine", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    line = proc.stdout.readline() if proc.stdout else ""
    match = re.search(r"(http://\S+/v1)", line)
    if not match:
        proc.kill()
        raise RuntimeError(f"local engine did not announce its URL: {line!r}")
    return Engine(match.group(1), proc)


def chromium_args(audio: Path, video: Path) -> list[str]:
    return [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={audio}",
        f"--use-file-for-fake-video-capture={video}",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--autoplay-policy=no-user-gesture-required",
        # tests run in a loopback-only network namespace (scripts/loopback-only)
        "--allow-loopback-in-peer-connection",
        # two tabs side by side: a tab in the background keeps running like a visible window
        "--disable-background-timer-throttling",
        "--disable-backgrounding-occluded-windows",
        "--disable-renderer-backgrounding",
    ]


def pad_wav(src: Path, dst: Path, lead_s: float, tail_s: float) -> Path:
    """Silence before (the call needs a moment to connect) and after (end of turn) a speech WAV."""
    with wave.open(str(src), "rb") as r:
        params = r.getparams()
        frames = r.readframes(r.getnframes())
    frame_bytes = params.sampwidth * params.nchannels
    lead = b"\x00" * (int(params.framerate * lead_s) * frame_bytes)
    tail = b"\x00" * (int(params.framerate * tail_s) * frame_bytes)
    with wave.open(str(dst), "wb") as w:
        w.setparams(params)
        w.writeframes(lead + frames + tail)
    return dst


def silence_wav(dst: Path, seconds: float = 1.0, rate: int = 48000) -> Path:
    with wave.open(str(dst), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x00" * int(rate * seconds))
    return dst


@contextlib.contextmanager
def running(app: StreamlitApp) -> Iterator[StreamlitApp]:
    try:
        yield app
    finally:
        app.stop()
