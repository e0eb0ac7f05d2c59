"""Drive one sans-IO ``Session`` on an asyncio loop: the single effect executor for both transports.

The WebSocket edge and the WebRTC edge each give the driver somewhere to send server events (an
``EventSink``: the data channel, a WebSocket, and any sideband WebSockets of a call) and, for
WebRTC, somewhere to play voice (a ``Player``). Everything here runs on the engine's loop; the
blocking speech jobs come back through ``Session.speech_result``: ``Synthesize`` runs in the
engine's bounded thread pool, ``Transcribe`` in its recognizer (a child process: decoding holds the
GIL, and the loop must keep serving every call's packets meanwhile), which also takes a turn's
``StreamSpeech`` as it is spoken.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Protocol

from . import speech
from .conversation import (
    CancelTranscribe,
    ClearPlayback,
    Close,
    Effect,
    Play,
    Send,
    Session,
    StreamSpeech,
    Synthesize,
    Transcribe,
)
from .recognizer import Recognizer

__all__ = ["DriverStats", "EventSink", "Player", "SessionDriver"]

log = logging.getLogger("localengine.driver")


class EventSink(Protocol):
    """Where server events go. ``send`` never blocks (implementations queue)."""

    def send(self, event: dict[str, Any]) -> None: ...

    def close(self, reason: str) -> None: ...


class Player(Protocol):
    """Where the assistant's voice goes (WebRTC only)."""

    def play(self, item_id: str, response_id: str, pcm24k: bytes) -> None: ...

    def clear(self) -> None: ...


@dataclass(frozen=True)
class DriverStats:
    """Cheap counters for tests and benchmarks."""

    audio_in_calls: int
    audio_in_seconds: float
    audio_in_max_seconds: float
    speech_jobs: int
    pending_jobs: int


class SessionDriver:
    """Owns one ``Session``; feeds it input, executes the effects it returns."""

    def __init__(
        self,
        session: Session,
        *,
        executor: Executor,
        recognizer: Recognizer | None = None,
        player: Player | None = None,
        on_closed: Callable[[SessionDriver, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        tick_interval: float = 1.0,
    ) -> None:
        self.session = session
        self._executor = executor
        self._recognizer = recognizer
        self._heard_audio = False
        self._player = player
        self._on_closed = on_closed
        self._clock = clock
        self._tick_interval = tick_interval
        self._sinks: list[EventSink] = []
        self._jobs: dict[str, asyncio.Future[Any]] = {}  # job id -> its future, until it is done
        # Turns streamed and not yet finished: their job ids (with the recognizer) or their audio so far.
        self._streams: dict[str, bytearray] = {}
        self._tick_task: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()
        self.close_reason: str | None = None
        self._audio_calls = 0
        self._audio_seconds = 0.0
        self._audio_max = 0.0
        self._speech_jobs = 0

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def start(self) -> None:
        """Emit the session's opening events and start the once-a-second tick (it also wakes at the limit)."""
        self._run(self.session.start())
        if not self.closed:
            self._tick_task = asyncio.get_running_loop().create_task(self._tick_loop(), name="session-tick")

    def attach(self, sink: EventSink) -> None:
        if self.closed:
            sink.close(self.close_reason or "session closed")
            return
        self._sinks.append(sink)

    def detach(self, sink: EventSink) -> None:
        if sink in self._sinks:
            self._sinks.remove(sink)

    def close(self, reason: str) -> None:
        """Idempotent: stop the tick, drop pending jobs, close every sink, tell the owner."""
        if self.closed:
            return
        self.close_reason = reason
        self._closed.set()
        if self._tick_task is not None and self._tick_task is not asyncio.current_task():
            self._tick_task.cancel()
        for job in list(self._jobs.values()):
            job.cancel()
        self._jobs.clear()
        self._drop_streams(list(self._streams))
        sinks, self._sinks = self._sinks, []
        for sink in sinks:
            sink.close(reason)
        if self._player is not None:
            self._player.clear()
        if self._on_closed is not None:
            self._on_closed(self, reason)

    async def wait_closed(self) -> None:
        await self._closed.wait()
        if self._tick_task is not None:
            await asyncio.gather(self._tick_task, return_exceptions=True)

    # -- input -----------------------------------------------------------------------------

    def receive(self, raw: str | bytes) -> None:
        if not self.closed:
            self._run(self.session.receive(raw, self._clock()))

    def audio_in(self, pcm24k: bytes) -> None:
        if self.closed:
            return
        if not self._heard_audio:  # a turn to transcribe may follow: start the recognizer now
            self._heard_audio = True
            if self._recognizer is not None:
                self._recognizer.warm()
        started = time.perf_counter()
        effects = self.session.audio_in(pcm24k, self._clock())
        spent = time.perf_counter() - started
        self._audio_calls += 1
        self._audio_seconds += spent
        self._audio_max = max(self._audio_max, spent)
        self._run(effects)

    def playback_started(self, item_id: str) -> None:
        if not self.closed:
            self._run(self.session.playback_started(item_id, self._clock()))

    def playback_progress(self, item_id: str, played_ms: int) -> None:
        if not self.closed:
            self._run(self.session.playback_progress(item_id, played_ms, self._clock()))

    def playback_finished(self, item_id: str) -> None:
        if not self.closed:
            self._run(self.session.playback_finished(item_id, self._clock()))

    def stats(self) -> DriverStats:
        return DriverStats(
            audio_in_calls=self._audio_calls,
            audio_in_seconds=self._audio_seconds,
            audio_in_max_seconds=self._audio_max,
            speech_jobs=self._speech_jobs,
            pending_jobs=len(self._jobs),
        )

    # -- effects ---------------------------------------------------------------------------

    def _run(self, effects: Iterable[Effect]) -> None:
        for effect in effects:
            if self.closed:
                return
            if isinstance(effect, Send):
                for sink in list(self._sinks):
                    sink.send(effect.event)
            elif isinstance(effect, StreamSpeech):
                streamed = self._streams.setdefault(effect.job_id, bytearray())
                if self._recognizer is not None:
                    self._recognizer.feed(effect.job_id, effect.pcm24k)
                else:
                    streamed += effect.pcm24k  # transcribed in one go when the turn ends
            elif isinstance(effect, Transcribe):
                streamed = self._streams.pop(effect.job_id, bytearray())
                if self._recognizer is not None:
                    finish = self._recognizer.finish(effect.job_id, effect.pcm24k)
                    self._track(effect.job_id, asyncio.wrap_future(finish))
                else:
                    self._submit(effect.job_id, speech.transcribe, bytes(streamed + effect.pcm24k))
            elif isinstance(effect, CancelTranscribe):
                job = self._jobs.get(effect.job_id)
                if job is not None:
                    job.cancel()  # one still queued is never run; one running finishes unheard
                self._drop_streams([effect.job_id])
            elif isinstance(effect, Synthesize):
                self._submit(effect.job_id, speech.synthesize, effect.text, effect.voice, effect.speed)
            elif isinstance(effect, Play):
                if self._player is not None:
                    self._player.play(effect.item_id, effect.response_id, effect.pcm24k)
            elif isinstance(effect, ClearPlayback):
                if self._player is not None:
                    self._player.clear()
            elif isinstance(effect, Close):
                self.close(effect.reason)
            else:  # pragma: no cover - a contract break, loud on purpose
                raise TypeError(f"unknown effect {effect!r}")

    def _drop_streams(self, job_ids: list[str]) -> None:
        for job_id in job_ids:
            if self._streams.pop(job_id, None) is not None and self._recognizer is not None:
                self._recognizer.drop(job_id)

    def _submit(self, job_id: str, fn: Callable[..., Any], *args: Any) -> None:
        self._track(job_id, asyncio.get_running_loop().run_in_executor(self._executor, fn, *args))

    def _track(self, job_id: str, job: asyncio.Future[Any]) -> None:
        self._speech_jobs += 1
        self._jobs[job_id] = job
        job.add_done_callback(lambda fut: self._job_done(job_id, fut))

    def _job_done(self, job_id: str, fut: asyncio.Future[Any]) -> None:
        self._jobs.pop(job_id, None)
        if fut.cancelled() or self.closed:
            return
        exc = fut.exception()
        if exc is not None:
            log.error("speech job %s failed: %s", job_id, exc)
            result: Any = exc
        else:
            result = fut.result()
        self._run(self.session.speech_result(job_id, result, self._clock()))

    async def _tick_loop(self) -> None:
        while not self.closed:
            # Wake at the session's limit itself, not up to a tick later, so it ends on time.
            until_limit = self.session.expires_at - self._clock()
            await asyncio.sleep(max(0.001, min(self._tick_interval, until_limit)))
            self._run(self.session.tick(self._clock()))
