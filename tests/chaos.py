"""Chaos helpers: an engine child process that can be killed with SIGKILL and started again on the
same port, and a loopback proxy in front of an engine that refuses or slows down new calls.

Everything is loopback. Child processes are always killed (``EngineProcess.kill`` in a finally).
"""

from __future__ import annotations

import contextlib
import json
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path

from tests.browser.harness import clean_env, free_port
from tests.fakebrowser import LoopbackServer

ROOT = Path(__file__).resolve().parents[1]
LOGS = ROOT / "artifacts" / "logs"


class EngineProcess:
    """``python -m localengine --host 127.0.0.1 --port P`` as a child; ``start`` waits for ``/healthz``.

    The port is fixed for the object's life so the engine can be killed and started again at the
    same address. ``--exit-with-stdin`` ties the child to us: if this test process dies, it ends too.
    """

    def __init__(self, port: int | None = None, extra_args: Iterable[str] = ()) -> None:
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log_path = LOGS / f"chaos-engine-{self.port}.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as reply:
                return reply.status == 200
        except OSError:
            return False

    def health(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as reply:
            return json.loads(reply.read())

    def start(self, timeout: float = 30.0) -> float:
        """Start the child and return the monotonic time its ``/healthz`` first answered."""
        assert self.process is None or self.process.poll() is not None, "already running"
        env = clean_env()
        self.starts += 1
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "localengine",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--exit-with-stdin",
                    *self.extra_args,
                ],
                cwd=ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"localengine exited early ({self.process.returncode}); see {self.log_path}")
            if self.healthy():
                return time.monotonic()
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"localengine on port {self.port} was not healthy within {timeout:.0f}s")

    def kill9(self) -> None:
        """SIGKILL: no hang-ups, no closing of peers; the process is simply gone."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)

    def kill(self) -> None:
        """Make sure the child is gone (safe to call in a finally, any number of times)."""
        proc = self.process
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()

    def __enter__(self) -> EngineProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.kill()


class FlakyProxy(LoopbackServer):
    """A loopback HTTP proxy in front of an engine's API that can refuse or slow down new calls.

    Forwards every ``/v1/...`` request to ``upstream``. ``POST /v1/realtime/calls`` (placing a call)
    is answered with 503 and an OpenAI-shaped JSON error while refusing (``refuse_for(seconds)``),
    and is held ``create_delay_s`` seconds before it is forwarded. Counts what it saw. A
    ``tests.fakebrowser.LoopbackServer``: use as a context manager.
    """

    def __init__(self, upstream: str) -> None:
        import asyncio

        from starlette.applications import Starlette
        from starlette.responses import JSONResponse, Response
        from starlette.routing import Route

        self.upstream = upstream.rstrip("/")
        self.refuse_until = 0.0
        self.create_delay_s = 0.0
        self.creates = 0  # POST /realtime/calls seen
        self.refused = 0  # ... answered with 503
        self.forwarded_creates = 0  # ... forwarded to the engine
        self.refused_at: list[float] = []

        async def forward(request):
            import httpx2

            tail = request.url.path.removeprefix("/v1")
            body = await request.body()
            if request.method == "POST" and tail.rstrip("/") == "/realtime/calls":
                self.creates += 1
                if time.monotonic() < self.refuse_until:
                    self.refused += 1
                    self.refused_at.append(time.monotonic())
                    error = {
                        "error": {
                            "message": "The server is overloaded or not ready yet.",
                            "type": "server_error",
                            "param": None,
                            "code": "service_unavailable",
                        }
                    }
                    return JSONResponse(error, status_code=503)
                if self.create_delay_s > 0:
                    await asyncio.sleep(self.create_delay_s)
                self.forwarded_creates += 1
            headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
            async with httpx2.AsyncClient(timeout=30) as client:
                reply = await client.request(request.method, self.upstream + tail, content=body, headers=headers)
            out_headers = {k: v for k, v in reply.headers.items() if k.lower() in ("location", "content-type")}
            return Response(reply.content, status_code=reply.status_code, headers=out_headers)

        super().__init__(Starlette(routes=[Route("/v1/{path:path}", forward, methods=["GET", "POST", "DELETE"])]))

    def refuse_for(self, seconds: float) -> float:
        """Refuse new calls (503) from now for ``seconds``; returns when the window ends (monotonic)."""
        self.refuse_until = time.monotonic() + seconds
        return self.refuse_until


def report(name: str, replaced: Iterable) -> tuple[float, float]:
    """Print (stdout, prefixed ``CHAOS:``) each replacement's time and items restored, and the
    median and worst time; return (median, worst)."""
    entries = list(replaced)
    times = [r.took_s for r in entries]
    for n, r in enumerate(entries, 1):
        print(
            f"CHAOS: {name} #{n} kind={r.kind} took_s={r.took_s:.3f} attempts={r.attempts} "
            f"restored={r.restored} cut={r.cut} reason={r.reason!r}"
        )
    median = statistics.median(times) if times else 0.0
    worst = max(times) if times else 0.0
    print(f"CHAOS: {name} reconnects={len(times)} took_s median={median:.3f} worst={worst:.3f}")
    return median, worst


@contextlib.contextmanager
def timed(name: str) -> Iterator[None]:
    began = time.monotonic()
    try:
        yield
    finally:
        print(f"CHAOS: {name} test ran {time.monotonic() - began:.1f} s")
