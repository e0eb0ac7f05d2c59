"""Speech to text in a child process, so pocketsphinx never holds the engine's GIL.

pocketsphinx decodes with the GIL held (``speech.transcribe`` feeds it 10 ms at a time to let
other threads in between). In the engine's own process that still starved its event loop, which
serves every call's RTP and ICE: measured here, a thread transcribing 4.5 s of speech made a
thread sleeping 2 ms at a time wake up to 217 ms late (12 ms late on average). With 4 calls
talking on a loaded 2-core machine the loop fell behind its sockets, their queues grew by seconds
and the calls' ICE consent answers came too late, so the calls dropped and reconnected.

`Recognizer` runs ``python -m localengine.recognizer`` children, each of which builds its decoder at
once and then answers one utterance at a time over its stdin/stdout (a length-prefixed frame each
way; the child's own stdout is pointed at stderr, so nothing a library prints can corrupt them).
multiprocessing's ``spawn`` was the first try: it re-runs the parent's ``__main__`` in the child,
which in a process that is not a plain script (pytest after Streamlit's AppTest) killed every
worker at start. The first child is started by `warm` (the engine calls it on a call's first audio:
it takes a second or two) or by the first job; a second only when a job finds the first busy
(several calls' turns at once). A child that dies fails the job it was doing and is replaced at the
next; each ends when its stdin closes, that is when the engine shuts the recognizer down or the
engine's process is gone (kill -9 included).
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


class _Worker:
    """One thread and the child it owns: takes jobs from the shared queue until told to stop."""

    def __init__(self) -> None:
        self.child: subprocess.Popen[bytes] | None = None
        self.thread: threading.Thread | None = None

    def live_child(self) -> subprocess.Popen[bytes]:
        child = self.child
        if child is None or child.poll() is not None:
            child = self.child = _spawn()
        return child

    def run(self, pcm: bytes) -> str:
        child = self.live_child()
        assert child.stdin is not None and child.stdout is not None
        try:
            _write_frame(child.stdin, pcm)
            status = _read_exactly(child.stdout, 1)
            payload = _read_frame(child.stdout).decode("utf-8", "replace")
        except (OSError, EOFError) as exc:
            self.stop_child()
            raise RecognizerError(f"the recognizer process ended ({exc})") from None
        if status != _OK:
            raise RecognizerError(payload)
        return payload

    def stop_child(self) -> None:
        child, self.child = self.child, None
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


def _spawn() -> subprocess.Popen[bytes]:
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen(
        [sys.executable, "-m", "localengine.recognizer"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )


def default_workers() -> int:
    """One child per core, at most two: a second keeps several calls' turns from queueing behind
    one another, a third would only compete with the calls' own media for the same cores."""
    return max(1, min(2, os.cpu_count() or 1))


class Recognizer:
    """Transcribes pcm16 mono 24 kHz in child processes, one utterance per child at a time, jobs
    taken in the order they came. The first child starts with `warm` or the first job; another
    (up to ``workers``) only when a job finds every child busy."""

    def __init__(self, workers: int | None = None) -> None:
        self._max = default_workers() if workers is None else workers
        if self._max < 1:
            raise ValueError(f"workers must be at least 1, got {workers!r}")
        self._jobs: queue.SimpleQueue[tuple[bytes, Future[str]] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        self._idle = 0  # workers not on a job (starting their child counts: they take the next one)
        self._shut = False

    @property
    def pid(self) -> int | None:
        """The first child's pid once it has been started (tests and diagnostics)."""
        pids = self.pids
        return pids[0] if pids else None

    @property
    def pids(self) -> tuple[int, ...]:
        """Every running child's pid, the first child's first."""
        with self._lock:
            workers = list(self._workers)
        return tuple(w.child.pid for w in workers if w.child is not None)

    def warm(self) -> None:
        """Start the first child now, so the first turn does not wait for it."""
        with self._lock:
            if not self._workers and not self._shut:  # after shutdown nobody would stop it
                self._start_worker(warm=True)

    def transcribe(self, pcm24k: bytes) -> Future[str]:
        future: Future[str] = Future()
        with self._lock:
            if self._shut:
                raise RuntimeError("the recognizer has been shut down")
            self._jobs.put((bytes(pcm24k), future))
            if self._jobs.qsize() > self._idle and len(self._workers) < self._max:
                self._start_worker(warm=False)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            if self._shut:
                return
            self._shut = True
            threads = [w.thread for w in self._workers if w.thread is not None]
        if cancel_futures:
            while True:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    job[1].cancel()
        for _ in threads:
            self._jobs.put(None)
        if wait:
            for thread in threads:
                thread.join(_STOP_WAIT_S * 2)

    # -- the worker threads: each owns one child ----------------------------------------------

    def _start_worker(self, *, warm: bool) -> None:
        """Under ``self._lock``."""
        worker = _Worker()
        worker.thread = threading.Thread(
            target=self._work, args=(worker, warm), name=f"recognizer-{len(self._workers)}", daemon=True
        )
        self._workers.append(worker)
        self._idle += 1
        worker.thread.start()

    def _work(self, worker: _Worker, warm: bool) -> None:
        try:
            if warm:
                worker.live_child()
            while True:
                job = self._jobs.get()
                with self._lock:
                    self._idle -= 1
                if job is None:
                    return
                pcm, future = job
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(worker.run(pcm))
                    except Exception as exc:
                        future.set_exception(exc)
                with self._lock:
                    self._idle += 1
        finally:
            worker.stop_child()


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
