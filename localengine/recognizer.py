"""Speech to text in a child process, so pocketsphinx never holds the engine's GIL.

pocketsphinx decodes with the GIL held (``speech.transcribe`` feeds it 10 ms at a time to let
other threads in between). In the engine's own process that still starved its event loop, which
serves every call's RTP and ICE: measured here, a thread transcribing 4.5 s of speech made a
thread sleeping 2 ms at a time wake up to 217 ms late (12 ms late on average). With 4 calls
talking on a loaded 2-core machine the loop fell behind its sockets, their queues grew by seconds
and the calls' ICE consent answers came too late, so the calls dropped and reconnected.

`Recognizer` runs ``python -m localengine.recognizer``, one child that builds its decoder at once
and then answers one utterance at a time over its stdin/stdout (a length-prefixed frame each
way; the child's own stdout is pointed at stderr, so nothing a library prints can corrupt them).
multiprocessing's ``spawn`` was the first try: it re-runs the parent's ``__main__`` in the child,
which in a process that is not a plain script (pytest after Streamlit's AppTest) killed every
worker at start. The child is started by `warm` (the engine calls it on a call's first audio: it
takes a second or two) or by the first job; one that dies fails the job it was doing and is
replaced at the next; it ends when its stdin closes, that is when the engine shuts the recognizer
down or the engine's process is gone (kill -9 included).
"""

from __future__ import annotations

import os
import queue
import struct
import subprocess
import sys
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import IO

__all__ = ["Recognizer", "RecognizerError"]

_HEADER = struct.Struct(">I")  # a frame: its length, then that many bytes
_OK, _FAILED = b"\x00", b"\x01"
_STOP_WAIT_S = 5.0


class RecognizerError(RuntimeError):
    """The recognizer process failed this job (it died, or recognition raised in it)."""


def _read_exactly(stream: IO[bytes], n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            raise EOFError("the stream ended")
        data += chunk
    return data


def _read_frame(stream: IO[bytes]) -> bytes:
    (size,) = _HEADER.unpack(_read_exactly(stream, _HEADER.size))
    return _read_exactly(stream, size)


def _write_frame(stream: IO[bytes], payload: bytes) -> None:
    stream.write(_HEADER.pack(len(payload)) + payload)
    stream.flush()


class Recognizer:
    """Transcribes pcm16 mono 24 kHz in a child process, one utterance at a time, in order."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[bytes, Future[str]] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._child: subprocess.Popen[bytes] | None = None
        self._shut = False

    @property
    def pid(self) -> int | None:
        """The child's pid once it has been started (tests and diagnostics)."""
        child = self._child
        return child.pid if child is not None else None

    def warm(self) -> None:
        """Start the child now, so the first turn does not wait for it."""
        self._ensure_thread(warm=True)

    def transcribe(self, pcm24k: bytes) -> Future[str]:
        future: Future[str] = Future()
        with self._lock:
            if self._shut:
                raise RuntimeError("the recognizer has been shut down")
            self._jobs.put((bytes(pcm24k), future))
        self._ensure_thread(warm=False)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            if self._shut:
                return
            self._shut = True
            thread = self._thread
        if cancel_futures:
            while True:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    job[1].cancel()
        self._jobs.put(None)
        if thread is None:
            return
        if wait:
            thread.join(_STOP_WAIT_S * 2)

    # -- the worker thread: owns the child ---------------------------------------------------

    def _ensure_thread(self, *, warm: bool) -> None:
        with self._lock:
            if self._shut or self._thread is not None:
                return
            self._thread = threading.Thread(target=self._work, args=(warm,), name="recognizer", daemon=True)
            self._thread.start()

    def _spawn(self) -> subprocess.Popen[bytes]:
        root = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        return subprocess.Popen(
            [sys.executable, "-m", "localengine.recognizer"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )

    def _live_child(self) -> subprocess.Popen[bytes]:
        child = self._child
        if child is None or child.poll() is not None:
            child = self._child = self._spawn()
        return child

    def _work(self, warm: bool) -> None:
        try:
            if warm:
                self._live_child()
            while True:
                job = self._jobs.get()
                if job is None:
                    return
                pcm, future = job
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    future.set_result(self._run(pcm))
                except Exception as exc:
                    future.set_exception(exc)
        finally:
            self._stop_child()

    def _run(self, pcm: bytes) -> str:
        child = self._live_child()
        assert child.stdin is not None and child.stdout is not None
        try:
            _write_frame(child.stdin, pcm)
            status = _read_exactly(child.stdout, 1)
            payload = _read_frame(child.stdout).decode("utf-8", "replace")
        except (OSError, EOFError) as exc:
            self._stop_child()
            raise RecognizerError(f"the recognizer process ended ({exc})") from None
        if status != _OK:
            raise RecognizerError(payload)
        return payload

    def _stop_child(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        if child.stdin is not None:
            try:
                child.stdin.close()  # its EOF: the child ends
            except OSError:
                pass
        try:
            child.wait(_STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(_STOP_WAIT_S)
        if child.stdout is not None:
            child.stdout.close()


def serve(requests: IO[bytes], replies: IO[bytes]) -> None:
    """The child: answer each frame of pcm with a status byte and a frame of text, until EOF."""
    from . import speech

    speech.warm_recognizer()
    while True:
        try:
            pcm = _read_frame(requests)
        except EOFError:
            return
        try:
            status, text = _OK, speech.transcribe(pcm)
        except Exception as exc:  # the job fails, the child goes on
            status, text = _FAILED, f"{type(exc).__name__}: {exc}"
        replies.write(status)
        _write_frame(replies, text.encode("utf-8"))


def main() -> None:
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever a library prints goes to stderr, not into the replies
    serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    main()
