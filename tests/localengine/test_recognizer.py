"""localengine.recognizer: speech recognition in a child process that is replaced when it dies
and ends when the engine's process does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from localengine import speech
from localengine.recognizer import Recognizer, RecognizerError, _Streams

ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split(") ")[-1].startswith("Z"))


def _wait(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_it_recognizes_what_the_engine_would_in_another_process():
    pcm = speech.synthesize("what do you see", "alloy")
    recognizer = Recognizer()
    try:
        recognizer.warm()
        assert _wait(lambda: bool(recognizer.pids), 10)
        child = recognizer.pids[0]
        assert child != os.getpid()
        assert recognizer.transcribe(pcm).result(timeout=60) == "what do you see"
        assert recognizer.transcribe(b"").result(timeout=30) == ""  # silence: nothing, and the child goes on
        assert recognizer.pids == (child,)
    finally:
        recognizer.shutdown(wait=True)
    assert child is not None and _wait(lambda: not _alive(child), 5), "the child outlived shutdown"


def test_a_killed_child_fails_its_job_and_the_next_job_gets_a_new_one():
    pcm = speech.synthesize("what do you see", "alloy")
    recognizer = Recognizer()
    try:
        assert recognizer.transcribe(pcm).result(timeout=60) == "what do you see"
        (first,) = recognizer.pids
        os.kill(first, signal.SIGSTOP)  # it cannot answer the next job...
        running = recognizer.transcribe(pcm)
        time.sleep(0.5)
        os.kill(first, signal.SIGKILL)  # ...and dies in the middle of it
        with pytest.raises(RecognizerError, match="ended"):
            running.result(timeout=30)
        assert recognizer.transcribe(pcm).result(timeout=60) == "what do you see"
        assert len(recognizer.pids) == 1 and first not in recognizer.pids
    finally:
        recognizer.shutdown(wait=True)


def test_the_child_ends_when_the_engine_process_is_killed():
    script = (
        "import time\n"
        "from localengine.recognizer import Recognizer\n"
        "r = Recognizer()\n"
        "r.transcribe(b'').result(timeout=60)\n"
        "print(r.pids[0], flush=True)\n"
        "time.sleep(120)\n"
    )
    engine = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert engine.stdout is not None
        child = int(engine.stdout.readline())
        assert _alive(child)
        engine.kill()  # no shutdown, no atexit: as kill -9 of the engine
        engine.wait(timeout=10)
        assert _wait(lambda: not _alive(child), 5), "the child outlived the engine"
    finally:
        engine.kill()


def test_after_shutdown_it_refuses_work_and_cancels_what_waited():
    recognizer = Recognizer()
    waiting = [recognizer.transcribe(speech.synthesize("one two three", "alloy")) for _ in range(3)]
    recognizer.shutdown(wait=True, cancel_futures=True)
    assert all(f.done() for f in waiting)
    with pytest.raises(RuntimeError, match="shut down"):
        recognizer.transcribe(b"")


def test_one_turn_at_a_time_needs_one_child_and_turns_at_once_get_a_second():
    pcm = speech.synthesize("what do you see", "alloy")
    recognizer = Recognizer(workers=2)
    try:
        for _ in range(3):  # each job waits for the one before: the first child does them all
            assert recognizer.transcribe(pcm).result(timeout=60) == "what do you see"
        assert len(recognizer.pids) == 1
        together = [recognizer.transcribe(pcm) for _ in range(4)]  # several calls' turns at once
        assert [f.result(timeout=120) for f in together] == ["what do you see"] * 4
        children = recognizer.pids
        assert len(children) == 2 and os.getpid() not in children
    finally:
        recognizer.shutdown(wait=True)
    assert _wait(lambda: not any(_alive(pid) for pid in children), 5), "a child outlived shutdown"


def test_workers_are_at_least_one():
    with pytest.raises(ValueError, match="at least 1"):
        Recognizer(workers=0)


# ------------------------------------------------------------------ streams: a turn decoded while spoken


PHRASES = ("what do you see", "one two three", "i like green apples")


@pytest.fixture(scope="module")
def spoken() -> dict[str, bytes]:
    return {phrase: speech.synthesize(phrase, "alloy") for phrase in PHRASES}


def pieces(pcm: bytes, n: int) -> list[bytes]:
    size = -(-len(pcm) // n)
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


def test_a_stream_fed_as_it_is_spoken_says_what_one_transcription_would(spoken):
    recognizer = Recognizer(workers=1)
    try:
        for phrase, pcm in spoken.items():
            *head, last = pieces(pcm, 7)
            for piece in head:
                recognizer.feed(phrase, piece)
            assert recognizer.finish(phrase, last).result(timeout=60) == phrase
    finally:
        recognizer.shutdown(wait=True)


def test_streams_spoken_at_once_in_one_child_each_get_their_own_words(spoken):
    """More streams than the child has decoders, their audio interleaved, finished in another order: the
    ones without a decoder catch up when one frees, or take one when they finish."""
    streams = _Streams(max_decoders=2)
    split = {phrase: pieces(pcm, 5) for phrase, pcm in spoken.items()}
    for i in range(5):
        for n, phrase in enumerate(PHRASES):
            streams.feed(n, split[phrase][i])
    for n in (2, 0, 1):  # the youngest first: it has no decoder of its own
        text, decoder = streams.finish(n, b"")
        assert text == PHRASES[n]
        streams.give(decoder)
    assert streams.drop(0) is None  # done: nothing left to drop


def test_a_dropped_stream_frees_its_decoder_for_the_stream_waiting(spoken):
    streams = _Streams(max_decoders=1)
    streams.feed(1, spoken[PHRASES[0]])
    streams.feed(2, spoken[PHRASES[1]])  # no decoder left: it keeps its audio
    streams.give(streams.drop(1))  # the waiting stream takes the decoder and catches up
    text, decoder = streams.finish(2, b"")
    assert text == PHRASES[1] and decoder is not None


def test_a_cancelled_finish_drops_the_stream_and_the_child_goes_on(spoken):
    recognizer = Recognizer(workers=1)
    try:
        pcm = spoken[PHRASES[0]]
        recognizer.feed("a", pcm)
        recognizer.finish("a").cancel()
        recognizer.feed("b", pcm[: len(pcm) // 2])
        recognizer.drop("b")
        recognizer.drop("never fed")
        assert recognizer.finish("c", pcm).result(timeout=60) == PHRASES[0]
    finally:
        recognizer.shutdown(wait=True)


def test_a_stream_whose_child_died_fails_clearly_and_the_next_one_works(spoken):
    pcm = spoken[PHRASES[0]]
    recognizer = Recognizer(workers=1)
    try:
        recognizer.feed("turn", pcm[: len(pcm) // 2])
        assert recognizer.transcribe(b"").result(timeout=60) == ""  # the child has heard the first half
        os.kill(recognizer.pids[0], signal.SIGKILL)
        assert _wait(lambda: not _alive(recognizer.pids[0]), 5)
        recognizer.feed("turn", pcm[len(pcm) // 2 :])  # to a new child, or to the dying one
        with pytest.raises(RecognizerError, match=r"recognizer process (was replaced|ended)"):
            recognizer.finish("turn").result(timeout=60)
        assert recognizer.finish("next", pcm).result(timeout=60) == PHRASES[0]
    finally:
        recognizer.shutdown(wait=True)
