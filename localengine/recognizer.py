"""Speech to text in child processes, so pocketsphinx never holds the engine's GIL.

pocketsphinx decodes with the GIL held (``speech.Utterance`` feeds it 10 ms at a time to let other
threads in between). In the engine's own process that still starved its event loop, which serves
every call's RTP and ICE: measured here, a thread transcribing 4.5 s of speech made a thread
sleeping 2 ms at a time wake up to 217 ms late (12 ms late on average). With 4 calls talking on a
loaded 2-core machine the loop fell behind its sockets, their queues grew by seconds and the calls'
ICE consent answers came too late, so the calls dropped and reconnected.

A turn is decoded while it is spoken: the engine `feed`s its audio as it comes and `finish`es it
when the turn ends, so what is left then is its last ~100 ms. With several calls on a loaded
machine, decoding a whole turn only once it had ended took 0.3-0.4 s after the silence.

`Recognizer` runs ``python -m localengine.recognizer`` children. Each answers requests on its stdin
in order (a length-prefixed frame each way; its own stdout is pointed at stderr, so nothing a
library prints can corrupt the replies): feed a stream, finish a stream (the one request with a
reply: its text), drop a stream. A stream stays with the child that got its first audio. A child
holds a few decoders (about 90 MB each, so they are built only when several of its streams are
spoken at once); a stream without one keeps its audio and is decoded from the start when a decoder
frees, or at once when it is finished, taking one from the stream that has decoded least.
multiprocessing's ``spawn`` was the first try: it re-runs the parent's ``__main__`` in the child,
which in a process that is not a plain script (pytest after Streamlit's AppTest) killed every
worker at start. The first child is started by `warm` (the engine calls it on a call's first
audio: it takes a second or two) or by the first stream; another only when a new stream finds every
child with work. A child that dies fails its streams and is replaced at the next request; each ends
when its stdin closes, that is when the engine shuts the recognizer down or the engine's process is
gone (kill -9 included).
"""

from __future__ import annotations

import itertools
import os
import queue
import struct
import subprocess
import sys
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from . import speech

if TYPE_CHECKING:
    from pocketsphinx import Decoder

__all__ = ["Recognizer", "RecognizerError"]

_HEADER = struct.Struct(">I")  # a frame: its length, then that many bytes
_REQUEST = struct.Struct(">cI")  # a request frame starts with: what to do, which stream
_FEED, _FINISH, _DROP = b"f", b"e", b"d"
_OK, _FAILED = b"\x00", b"\x01"
_STOP_WAIT_S = 5.0
DECODERS_PER_CHILD = 2
"""Streams one child decodes at the same time (a decoder is about 90 MB: built only when needed)."""


class RecognizerError(RuntimeError):
    """The recognizer process failed this stream (it died, or recognition raised in it)."""


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


@dataclass(frozen=True)
class _Request:
    op: bytes  # _FEED | _FINISH | _DROP
    wire_id: int
    opens: bool  # the stream's first request: the child has not heard of it yet
    pcm: bytes = field(default=b"", repr=False)
    future: Future[str] | None = None  # _FINISH: its text


class _Worker:
    """One thread and the child it owns: sends its queue's requests in order until told to stop."""

    def __init__(self) -> None:
        self.requests: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self.streams = 0  # streams given to this child and not yet finished or dropped (under the lock)
        self.child: subprocess.Popen[bytes] | None = None
        self.thread: threading.Thread | None = None
        self._known: set[int] = set()  # streams the running child has heard of

    def live_child(self) -> subprocess.Popen[bytes]:
        child = self.child
        if child is None or child.poll() is not None:
            self._known.clear()  # a new child: streams begun in the one before are lost
            child = self.child = _spawn()
        return child

    def send(self, request: _Request) -> str | BaseException | None:
        """Do one request; a finish's text or failure (None for the rest and for a cancelled finish)."""
        op = request.op
        if op == _FINISH and request.future is not None and not request.future.set_running_or_notify_cancel():
            op = _DROP  # nobody waits for the text: only free the stream
        child = self.live_child()
        if request.opens:
            if op == _DROP:
                return None  # the child never heard of it
        elif request.wire_id not in self._known:
            lost = RecognizerError("the recognizer process was replaced in the middle of this turn")
            return lost if op == _FINISH else None
        if op == _FEED:
            self._known.add(request.wire_id)
        else:
            self._known.discard(request.wire_id)
        assert child.stdin is not None and child.stdout is not None
        try:
            _write_frame(child.stdin, _REQUEST.pack(op, request.wire_id) + request.pcm)
            if op != _FINISH:
                return None
            status = _read_exactly(child.stdout, 1)
            payload = _read_frame(child.stdout).decode("utf-8", "replace")
        except (OSError, EOFError) as exc:
            self.stop_child()
            return RecognizerError(f"the recognizer process ended ({exc})") if op == _FINISH else None
        return payload if status == _OK else RecognizerError(payload)

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
    """Transcribes pcm16 mono 24 kHz in child processes. A stream (a turn) is `feed` as it is
    spoken and `finish`ed when it ends; `transcribe` is a stream given all at once. The first child
    starts with `warm` or the first stream; another (up to ``workers``) only when a new stream finds
    every child with streams of its own."""

    def __init__(self, workers: int | None = None) -> None:
        self._max = default_workers() if workers is None else workers
        if self._max < 1:
            raise ValueError(f"workers must be at least 1, got {workers!r}")
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        self._streams: dict[str, tuple[_Worker, int]] = {}  # open stream -> its child, its id on the wire
        self._wire_ids = itertools.count(1)
        self._shut = False

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

    def feed(self, stream: str, pcm24k: bytes) -> None:
        """More audio of ``stream`` (opened by its first audio), decoded as it comes."""
        with self._lock:
            self._send(stream, _FEED, bytes(pcm24k), None)

    def finish(self, stream: str, pcm24k: bytes = b"") -> Future[str]:
        """The rest of ``stream``'s audio; the future gets the text of all of it. Cancelling the
        future drops the stream."""
        future: Future[str] = Future()
        with self._lock:
            self._send(stream, _FINISH, bytes(pcm24k), future)
        return future

    def drop(self, stream: str) -> None:
        """Forget ``stream`` without its text (nothing happens if it was never fed or is done)."""
        with self._lock:
            if stream in self._streams and not self._shut:
                self._send(stream, _DROP, b"", None)

    def transcribe(self, pcm24k: bytes) -> Future[str]:
        """One utterance given all at once."""
        return self.finish(f"utterance-{next(self._wire_ids)}", pcm24k)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            if self._shut:
                return
            self._shut = True
            workers = list(self._workers)
            self._streams.clear()
        for worker in workers:
            if cancel_futures:
                while True:
                    try:
                        request = worker.requests.get_nowait()
                    except queue.Empty:
                        break
                    if request is not None and request.future is not None:
                        request.future.cancel()
            worker.requests.put(None)
        if wait:
            for worker in workers:
                if worker.thread is not None:
                    worker.thread.join(_STOP_WAIT_S * 2)

    # -- under self._lock ----------------------------------------------------------------------

    def _send(self, stream: str, op: bytes, pcm: bytes, future: Future[str] | None) -> None:
        if self._shut:
            raise RuntimeError("the recognizer has been shut down")
        opens = stream not in self._streams
        if opens:
            worker = self._pick_worker()
            worker.streams += 1
            self._streams[stream] = (worker, next(self._wire_ids))
        worker, wire_id = self._streams[stream]
        if op != _FEED:
            del self._streams[stream]
        worker.requests.put(_Request(op, wire_id, opens, pcm, future))

    def _pick_worker(self) -> _Worker:
        idle = [w for w in self._workers if w.streams == 0]
        if idle:
            return idle[0]
        if len(self._workers) < self._max:
            return self._start_worker(warm=False)
        return min(self._workers, key=lambda w: w.streams)

    def _start_worker(self, *, warm: bool) -> _Worker:
        worker = _Worker()
        worker.thread = threading.Thread(
            target=self._work, args=(worker, warm), name=f"recognizer-{len(self._workers)}", daemon=True
        )
        self._workers.append(worker)
        worker.thread.start()
        return worker

    # -- the worker threads: each owns one child ----------------------------------------------

    def _work(self, worker: _Worker, warm: bool) -> None:
        try:
            if warm:
                worker.live_child()
            while True:
                request = worker.requests.get()
                if request is None:
                    return
                outcome = worker.send(request)
                if request.op != _FEED:
                    with self._lock:  # before the text is out, so the caller's next stream sees this child free
                        worker.streams -= 1
                future = request.future
                if future is not None and outcome is not None:
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            worker.stop_child()


# -- the child ------------------------------------------------------------------------------------


class _Streams:
    """The child's streams and decoders: the oldest streams decode as they come, up to
    ``max_decoders`` at once; a finished stream without a decoder takes one from the stream that
    decoded least."""

    def __init__(self, max_decoders: int) -> None:
        self._max = max_decoders
        self._free: list[Decoder] = [speech.new_decoder()]  # built now: the first turn need not wait
        self._built = 1
        self._streams: dict[int, speech.Utterance] = {}  # by age: the oldest first

    def feed(self, wire_id: int, pcm: bytes) -> None:
        utterance = self._streams.get(wire_id)
        if utterance is None:
            utterance = self._streams[wire_id] = speech.Utterance()
            decoder = self._spare()
            if decoder is not None:
                utterance.bind(decoder)
        utterance.add(pcm)

    def finish(self, wire_id: int, pcm: bytes) -> tuple[str, Decoder | None]:
        """Its text, and the decoder it freed: pass it to `give` once the reply is out."""
        utterance = self._streams.pop(wire_id, None) or speech.Utterance()
        utterance.add(pcm)
        decoder = utterance.decoder
        if decoder is None:
            if utterance.silent:
                return "", None  # nothing to decode
            decoder = self._spare() or self._take()
            utterance.bind(decoder)
        try:
            return utterance.finish(), decoder
        except Exception:
            self._built -= 1  # a decoder that failed is not reused: the next stream builds another
            raise

    def drop(self, wire_id: int) -> Decoder | None:
        utterance = self._streams.pop(wire_id, None)
        if utterance is None or utterance.decoder is None:
            return None
        return utterance.unbind()

    def give(self, decoder: Decoder | None) -> None:
        """A freed decoder goes to the oldest stream waiting for one (it catches up at once)."""
        if decoder is None:
            return
        for utterance in self._streams.values():
            if utterance.decoder is None:
                utterance.bind(decoder)
                return
        self._free.append(decoder)

    def _spare(self) -> Decoder | None:
        if self._free:
            return self._free.pop()
        if self._built < self._max:
            self._built += 1
            return speech.new_decoder()
        return None

    def _take(self) -> Decoder:
        decoding = [u for u in self._streams.values() if u.decoder is not None]
        return min(decoding, key=lambda u: u.decoded_ms).unbind()


def serve(requests: IO[bytes], replies: IO[bytes], max_decoders: int = DECODERS_PER_CHILD) -> None:
    """The child: do each request in order; answer each finish with a status byte and a frame of
    text; until EOF."""
    streams = _Streams(max_decoders)
    while True:
        try:
            frame = _read_frame(requests)
        except EOFError:
            return
        op, wire_id = _REQUEST.unpack_from(frame)
        pcm = frame[_REQUEST.size :]
        freed: Decoder | None = None
        try:
            if op == _FEED:
                streams.feed(wire_id, pcm)
            elif op == _DROP:
                freed = streams.drop(wire_id)
            else:
                text, freed = streams.finish(wire_id, pcm)
                replies.write(_OK)
                _write_frame(replies, text.encode("utf-8"))
        except Exception as exc:  # the stream fails, the child goes on
            if op == _FINISH:
                replies.write(_FAILED)
                _write_frame(replies, f"{type(exc).__name__}: {exc}".encode())
        streams.give(freed)


def main() -> None:
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever a library prints goes to stderr, not into the replies
    serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    main()
