"""CLI: ``python -m localengine --host 127.0.0.1 --port 0``.

Prints ``localengine listening on http://HOST:PORT/v1`` as its first stdout line (flushed), then
serves until SIGTERM or SIGINT, and shuts down cleanly (calls hung up, sockets closed).
Accepted keys come from ``LOCALENGINE_API_KEYS`` (comma list; unset = any non-empty key). The
maximum session duration comes from ``--max-session-s`` or else ``LOCALENGINE_MAX_SESSION_S``
(seconds, default 3600).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import sys
import threading

from .config import MAX_SESSION_ENV, EngineConfig, parse_session_seconds
from .runner import start_engine


def _stop_at_eof(stop: threading.Event) -> None:
    """Block on stdin until EOF: the parent holding the pipe's other end has closed it or died."""
    # os.read on the descriptor, not sys.stdin.buffer: a daemon thread blocked inside the buffered
    # reader holds its lock, and interpreter shutdown (after SIGTERM) then aborts with a fatal error.
    try:
        while os.read(sys.stdin.fileno(), 4096):
            pass
    except (OSError, ValueError):
        pass
    stop.set()


def _session_seconds(raw: str) -> float:
    try:
        return parse_session_seconds(raw, "--max-session-s")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--max-session-s ")) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localengine", description="Offline server that speaks the OpenAI Realtime protocol."
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="TCP port; 0 picks a free one (default 8765)")
    parser.add_argument(
        "--exit-with-stdin",
        action="store_true",
        help="stop when standard input closes (a parent that dies, even by SIGKILL, ends us)",
    )
    parser.add_argument(
        "--max-session-s",
        type=_session_seconds,
        default=None,
        metavar="SECONDS",
        help=f"maximum session duration in seconds (default: ${MAX_SESSION_ENV}, else 3600)",
    )
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        env = dict(os.environ)
        if args.max_session_s is not None:  # the flag wins over the environment (even a bad value there)
            env.pop(MAX_SESSION_ENV, None)
        config = EngineConfig.from_env(env)
        if args.max_session_s is not None:
            config = dataclasses.replace(config, max_session_seconds=args.max_session_s)
        engine = start_engine(config, host=args.host, port=args.port)
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"localengine: cannot start: {exc}", file=sys.stderr, flush=True)
        return 1
    print(f"localengine listening on {engine.base_url}", flush=True)
    if args.exit_with_stdin:
        threading.Thread(target=_stop_at_eof, args=(stop,), name="localengine-stdin", daemon=True).start()
    try:
        while not stop.wait(0.5):
            if not engine._thread.is_alive():
                print("localengine: server thread ended unexpectedly", file=sys.stderr, flush=True)
                return 1
    finally:
        engine.stop()
    print("localengine stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
