"""local_engine: the real engine as a child process: started once, keyed, restarted, stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import cast

import openai
import pytest
from openai.types.realtime import RealtimeSessionCreateRequestParam

from realtime import local_engine as le
from realtime.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def session_param() -> RealtimeSessionCreateRequestParam:
    """The app's session payload, as the SDK's request param type."""
    return cast(RealtimeSessionCreateRequestParam, Settings().session_payload())


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def gone(pid: int, timeout: float = 5.0) -> bool:
    """True once the process no longer exists (and is not left as a zombie)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            if state == "Z":
                return False  # a zombie is a leak too
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def dead(pid: int) -> bool:
    """True once the process has exited (a zombie not yet reaped counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.fixture(scope="module")
def engine():
    le.stop_local_engine()
    started = time.monotonic()
    engine = le.ensure_local_engine()
    engine_start_s = time.monotonic() - started
    print(f"local engine started in {engine_start_s:.2f} s")
    yield engine
    le.stop_local_engine()


def test_started_once_on_loopback_and_healthy(engine):
    assert engine.base_url.startswith("http://127.0.0.1:") and engine.base_url.endswith("/v1")
    assert healthy(engine.health_url)
    assert le.ensure_local_engine() is engine  # once per process
    assert engine.api_key not in repr(engine)


async def test_random_key_is_required_by_the_engine(engine):
    good = openai.AsyncOpenAI(base_url=engine.base_url, api_key=engine.api_key, max_retries=0, timeout=10)
    bad = openai.AsyncOpenAI(base_url=engine.base_url, api_key="sk-not-the-key", max_retries=0, timeout=10)
    try:
        secret = await good.realtime.client_secrets.create(session=session_param())
        assert secret.value
        with pytest.raises(openai.AuthenticationError):
            await bad.realtime.client_secrets.create(session=session_param())
    finally:
        await good.close()
        await bad.close()
    assert len(engine.api_key) >= 30 and engine.api_key != le.ensure_local_engine.__name__


def test_settings_connection_resolves_to_the_local_engine(engine):
    conn = Settings.from_env({}).connection()
    assert (conn.base_url, conn.api_key) == (engine.base_url, engine.api_key)
    remote = Settings.from_env({"OPENAI_API_KEY": "sk-abcdef123456"}).connection()
    assert remote.base_url == "https://api.openai.com/v1" and remote.api_key == "sk-abcdef123456"


def test_restarted_when_it_died_and_the_dead_one_is_reaped(engine):
    old_pid = engine.pid
    os.kill(old_pid, 9)
    deadline = time.monotonic() + 5
    while not dead(old_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    fresh = le.ensure_local_engine()
    assert fresh.pid != old_pid and healthy(fresh.health_url)
    assert gone(old_pid)
    le.stop_local_engine()
    assert gone(fresh.pid)
    assert not healthy(fresh.health_url)
    le.stop_local_engine()  # idempotent


def test_stopped_when_the_server_process_exits(tmp_path):
    script = textwrap.dedent(
        """
        import sys
        from realtime.local_engine import ensure_local_engine
        engine = ensure_local_engine()
        print(engine.pid, engine.health_url, flush=True)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    pid, url = out.stdout.split()
    assert gone(int(pid)), "the engine outlived the process that started it"
    assert not healthy(url)


def test_stopped_when_the_server_process_is_killed(tmp_path):
    """SIGKILL skips atexit: the engine notices its stdin pipe closing and stops by itself."""
    script = textwrap.dedent(
        """
        import time
        from realtime.local_engine import ensure_local_engine
        engine = ensure_local_engine()
        print(engine.pid, engine.health_url, flush=True)
        time.sleep(120)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None  # stdout=PIPE
    try:
        _pid, url = parent.stdout.readline().split()
        assert healthy(url)
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 10
        while healthy(url) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not healthy(url), "the engine outlived a killed parent"
    finally:
        parent.kill()
        parent.stdout.close()


def test_a_child_that_fails_gives_a_clear_error(monkeypatch):
    le.stop_local_engine()
    monkeypatch.setattr(sys, "executable", "/bin/false")  # the sys module local_engine uses
    with pytest.raises(le.LocalEngineError, match=r"exited \(code 1\) before listening"):
        le.ensure_local_engine(timeout=10)


def test_a_silent_child_times_out_and_is_killed(monkeypatch, tmp_path):
    le.stop_local_engine()
    script = tmp_path / "silent"
    script.write_text("#!/bin/sh\necho 'starting...' >&2\nexec sleep 60\n")
    script.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(script))
    started = time.monotonic()
    with pytest.raises(le.LocalEngineError, match=r"printed nothing within 1 s\.\nLast engine output:\nstarting\.\.\."):
        le.ensure_local_engine(timeout=1.0)
    assert time.monotonic() - started < 8
    out = subprocess.run(["pgrep", "-f", str(script)], capture_output=True, text=True)
    assert out.stdout.strip() == "", "the silent child was left running"
