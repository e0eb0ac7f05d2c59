"""Start and stop the offline local engine as a child process (once per server process).

The engine is reached only through the wire: ``python -m localengine --host 127.0.0.1 --port 0``
runs as a child with a random per-process key in ``LOCALENGINE_API_KEYS``; its first stdout line
(``localengine listening on http://127.0.0.1:PORT/v1``) gives the base URL, and ``GET /healthz``
says when it is ready. The child is stopped at interpreter exit (terminate, then kill) and started
again if it died. This module never imports ``localengine``.
"""

from __future__ import annotations

import atexit
import collections
import os
import re
import secrets
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["LocalEngine", "LocalEngineError", "ensure_local_engine", "stop_local_engine"]

_PROJECT_ROOT = Path(__file__).resolve().parent.parent
_LISTENING = re.compile(r"listening on (https?://\S+?/v1)\s*$")
START_TIMEOUT_S = 30.0


class LocalEngineError(RuntimeError):
    """The local engine could not be started; the message says why (and shows its last stderr)."""


@dataclass(frozen=True)
class LocalEngine:
    base_url: str  # e.g. http://127.0.0.1:41234/v1
    api_key: str = field(repr=False)
    pid: int = 0

    @property
    def health_url(self) -> str:
        return self.base_url.rsplit("/v1", 1)[0] + "/healthz"


class _Child:
    """One running engine process plus the threads draining its pipes."""

    def __init__(self, proc: subprocess.Popen[str]):
        self.proc = proc
        self.first_line: str | None = None
        self.first_line_ready = threading.Event()
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=40)
        self._readers = [
            threading.Thread(target=self._read_stdout, name="localengine-stdout", daemon=True),
            threading.Thread(target=self._read_stderr, name="localengine-stderr", daemon=True),
        ]
        for t in self._readers:
            t.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        try:
            for line in self.proc.stdout:
                if self.first_line is None:
                    self.first_line = line.strip()
                    self.first_line_ready.set()
        except (OSError, ValueError):
            pass
        finally:
            self.first_line_ready.set()  # EOF: the child ended

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        try:
            for line in self.proc.stderr:
                self.stderr_tail.append(line.rstrip())
        except (OSError, ValueError):
            pass

    def alive(self) -> bool:
        if self.proc.poll() is not None:
            return False
        # poll() also answers None while another thread holds Popen's wait lock; a zombie is dead.
        try:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return not os.path.isdir("/proc/self")  # with procfs, no entry means gone
        except (OSError, IndexError):
            return True  # unreadable: trust poll()

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        for t in self._readers:
            t.join(timeout)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()

    def tail(self) -> str:
        lines = [ln for ln in self.stderr_tail if ln.strip()][-8:]
        return ("\nLast engine output:\n" + "\n".join(lines)) if lines else ""


_lock = threading.Lock()
_child: _Child | None = None
_engine: LocalEngine | None = None
_atexit_registered = False


def _wait_healthy(url: str, child: _Child, deadline: float) -> None:
    last = "no answer"
    while time.monotonic() < deadline:
        if not child.alive():
            raise LocalEngineError(
                f"The local engine exited (code {child.proc.returncode}) while starting.{child.tail()}"
            )
        try:
            with urllib.request.urlopen(url, timeout=1.0) as resp:
                if resp.status == 200:
                    return
                last = f"HTTP {resp.status}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.05)
    raise LocalEngineError(f"The local engine did not become healthy at {url} in time ({last}).{child.tail()}")


def _start(timeout: float) -> tuple[_Child, LocalEngine]:
    key = "le-" + secrets.token_urlsafe(24)
    env = dict(os.environ)
    env.pop("OPENAI_API_KEY", None)  # the child never needs the real key
    env["LOCALENGINE_API_KEYS"] = key
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PROJECT_ROOT), env.get("PYTHONPATH", "")) if p)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "localengine", "--host", "127.0.0.1", "--port", "0", "--exit-with-stdin"],
            cwd=str(_PROJECT_ROOT),
            env=env,
            stdin=subprocess.PIPE,  # never written: its EOF tells the child that we are gone
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
    except OSError as exc:
        raise LocalEngineError(f"Could not start the local engine: {exc}") from exc
    child = _Child(proc)
    deadline = time.monotonic() + timeout
    try:
        if not child.first_line_ready.wait(timeout):
            raise LocalEngineError(f"The local engine printed nothing within {timeout:.0f} s.{child.tail()}")
        line = child.first_line or ""
        match = _LISTENING.search(line)
        if not match:
            if child.first_line is None:  # stdout closed: the child is ending
                try:
                    child.proc.wait(max(deadline - time.monotonic(), 1.0))
                except subprocess.TimeoutExpired:
                    pass
            if not child.alive():
                for t in child._readers:
                    t.join(1.0)
                raise LocalEngineError(
                    f"The local engine exited (code {child.proc.returncode}) before listening.{child.tail()}"
                )
            raise LocalEngineError(f"Unexpected first line from the local engine: {line[:200]!r}")
        engine = LocalEngine(base_url=match.group(1), api_key=key, pid=proc.pid)
        _wait_healthy(engine.health_url, child, deadline)
        return child, engine
    except BaseException:
        child.stop()
        raise


def ensure_local_engine(timeout: float = START_TIMEOUT_S) -> LocalEngine:
    """The running local engine, started (or restarted, if it died) as needed. Blocking; thread-safe.
    ``REALTIME_LOCAL_ENGINE=off`` forbids it (a server meant to reach OpenAI only)."""
    global _child, _engine, _atexit_registered
    if os.environ.get("REALTIME_LOCAL_ENGINE", "on").strip().lower() in ("off", "0", "false", "no"):
        raise LocalEngineError("The local engine is turned off on this server (REALTIME_LOCAL_ENGINE=off).")
    with _lock:
        if _child is not None and _engine is not None and _child.alive():
            return _engine
        if _child is not None:
            _child.stop()
            _child, _engine = None, None
        if not _atexit_registered:
            atexit.register(stop_local_engine)
            _atexit_registered = True
        _child, _engine = _start(timeout)
        return _engine


def stop_local_engine() -> None:
    """Stop the child if it runs (idempotent). Called at interpreter exit."""
    global _child, _engine
    with _lock:
        child, _child, _engine = _child, None, None
    if child is not None:
        child.stop()
