"""localengine.speech: real espeak-ng synthesis, real pocketsphinx recognition and VAD."""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from localengine import speech
from localengine.speech import VOICES, SpeechDetector, SpeechEdge, synthesize, transcribe
from tests.media import rms, silence_pcm24k, speech_pcm24k

RATE = 24_000
SENTENCE = "Please tell me what the weather is like in the city today."
# Phrases pocketsphinx got fully right on espeak audio in every voice tried (alloy, coral, echo, ash).
ROBUST_PHRASES = ("what is the weather like", "what do you see", "i like green apples")


def duration_ms(pcm: bytes) -> float:
    return len(pcm) / 2 / RATE * 1000


def median_pitch_hz(pcm: bytes) -> float:
    """Median F0 over voiced 40 ms frames, by autocorrelation (60-400 Hz)."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    n, hop = int(0.04 * RATE), int(0.01 * RATE)
    lo, hi = RATE // 400, RATE // 60
    pitches = []
    for start in range(0, x.size - n, hop):
        frame = x[start : start + n] - x[start : start + n].mean()
        if np.sqrt(np.mean(frame**2)) < 500:
            continue
        spectrum = np.fft.rfft(frame, 2 * n)
        ac = np.fft.irfft(spectrum * np.conj(spectrum))[:n]
        if ac[0] <= 0:
            continue
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] / ac[0] > 0.5:
            pitches.append(RATE / lag)
    assert len(pitches) > 20, "too few voiced frames to measure pitch"
    return float(np.median(pitches))


def speech_span_ms(pcm: bytes) -> tuple[int, int]:
    """Where the signal is audibly non-silent (10 ms windows above -50 dBFS)."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    win = RATE // 100
    frames = x[: x.size - x.size % win].reshape(-1, win)
    loud = np.flatnonzero(np.sqrt(np.mean(frames**2, axis=1)) > 32768 * 10 ** (-50 / 20))
    return int(loud[0]) * 10, int(loud[-1] + 1) * 10


def feed_in_chunks(detector: SpeechDetector, pcm: bytes, chunk: int) -> list[SpeechEdge]:
    edges: list[SpeechEdge] = []
    for start in range(0, len(pcm), chunk):
        edges += detector.feed(pcm[start : start + chunk])
    return edges


def scaled(pcm: bytes, gain: float) -> bytes:
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64) * gain
    return np.clip(np.rint(x), -32768, 32767).astype("<i2").tobytes()


@pytest.fixture(scope="module")
def sentence_audio() -> bytes:
    return synthesize(SENTENCE, "alloy")


# ------------------------------------------------------------------ synthesize


def test_synthesize_gives_audible_speech_whose_length_follows_the_text():
    short = synthesize("Hello.", "alloy")
    long = synthesize("Hello. This sentence is a good deal longer than the first one was.", "alloy")
    assert len(short) % 2 == 0 and len(long) % 2 == 0
    assert 200 < duration_ms(short) < 2000
    assert duration_ms(long) > 3 * duration_ms(short)
    assert rms(short) > 1000 and rms(long) > 1000  # clearly audible, not near-silence
    peak = np.abs(np.frombuffer(long, dtype="<i2")).max()
    assert peak < 32767, "clipped"


def test_synthesize_empty_text_is_silent_and_ignores_control_characters():
    assert synthesize("", "alloy") == b""
    assert synthesize("  \n\t ", "coral") == b""
    with_controls = synthesize("one\x00two\x07three", "alloy")
    assert 500 < duration_ms(with_controls) < 4000


def test_voices_are_the_provider_names():
    assert VOICES == ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")


def test_every_voice_sounds_different_from_every_other():
    features = {}
    for voice in VOICES:
        pcm = synthesize(SENTENCE, voice)
        features[voice] = (median_pitch_hz(pcm), duration_ms(pcm))
    for a, b in itertools.combinations(VOICES, 2):
        (pa, da), (pb, db) = features[a], features[b]
        pitch_step = abs(pa - pb) / min(pa, pb)
        tempo_step = abs(da - db) / min(da, db)
        assert max(pitch_step, tempo_step) >= 0.06, f"{a} and {b} sound alike: {features[a]} vs {features[b]}"
    # Male and female voices are an octave-ish apart, as a listener would expect.
    assert features["shimmer"][0] > 1.8 * features["echo"][0]


def test_unknown_voice_falls_back_to_the_default(sentence_audio):
    fallback = synthesize(SENTENCE, "no-such-voice")
    assert median_pitch_hz(fallback) == pytest.approx(median_pitch_hz(sentence_audio), rel=0.03)
    assert duration_ms(fallback) == pytest.approx(duration_ms(sentence_audio), rel=0.02)
    assert synthesize(SENTENCE, "SHIMMER") and median_pitch_hz(synthesize(SENTENCE, "SHIMMER")) > 200


# ------------------------------------------------------------------ transcribe


@pytest.mark.parametrize(
    ("phrase", "voice"), [(ROBUST_PHRASES[0], "alloy"), (ROBUST_PHRASES[1], "coral"), (ROBUST_PHRASES[2], "echo")]
)
def test_transcribe_recognizes_synthesized_phrases(phrase, voice):
    audio = silence_pcm24k(500) + speech_pcm24k(phrase, voice) + silence_pcm24k(500)
    text = transcribe(audio)
    assert text == text.lower() and text.strip() == text
    shared = set(text.split()) & set(phrase.split()) - {"the", "a", "is"}
    assert shared, f"heard {text!r} for {phrase!r}"


def test_transcribe_silence_and_tiny_input_give_empty_text():
    assert transcribe(silence_pcm24k(2000)) == ""
    assert transcribe(b"") == ""
    assert transcribe(b"\x01") == ""  # odd byte count: no crash
    assert transcribe(silence_pcm24k(50)) == ""


def test_transcribe_is_independent_of_what_was_heard_before():
    a = silence_pcm24k(300) + speech_pcm24k(ROBUST_PHRASES[0]) + silence_pcm24k(300)
    b = silence_pcm24k(300) + speech_pcm24k("good night and sleep well", "shimmer") + silence_pcm24k(300)
    first = transcribe(a)
    transcribe(b)
    transcribe(b)
    assert transcribe(a) == first


# ------------------------------------------------------------------ SpeechDetector


@pytest.mark.parametrize("chunk", [7, 960, 4_801, 10**9])
def test_detector_finds_one_turn_in_speech_wrapped_in_silence(sentence_audio, chunk):
    lead, tail = 1000, 1500
    audio = silence_pcm24k(lead) + sentence_audio + silence_pcm24k(tail)
    start, end = speech_span_ms(sentence_audio)
    edges = feed_in_chunks(SpeechDetector(), audio, chunk)
    assert [e.kind for e in edges] == ["started", "stopped"], edges
    assert abs(edges[0].audio_ms - (lead + start)) <= 300
    assert abs(edges[1].audio_ms - (lead + end)) <= 300


def test_detector_says_how_far_the_speech_goes_before_the_silence_confirms_its_end(sentence_audio):
    detector = SpeechDetector(silence_ms=600)
    assert detector.speech_until_ms is None  # silent
    audio = silence_pcm24k(500) + sentence_audio + silence_pcm24k(800)
    until: list[int] = []
    edges: list[SpeechEdge] = []
    for start in range(0, len(audio), 960):  # 20 ms at a time, as a call delivers it
        edges += detector.feed(audio[start : start + 960])
        if detector.speech_until_ms is not None:
            assert detector.speech_until_ms <= detector.position_ms  # only audio already heard
            until.append(detector.speech_until_ms)
    assert [e.kind for e in edges] == ["started", "stopped"]
    assert until == sorted(until) and until[-1] - until[0] > 1000  # it follows the speech as it goes on
    assert until[-1] == edges[1].audio_ms  # the turn ends where the speech heard last ended
    assert detector.speech_until_ms is None  # silent again


def test_detector_ignores_silence_and_faint_noise():
    detector = SpeechDetector()
    assert detector.feed(silence_pcm24k(3000)) == []
    noise = np.random.default_rng(1).normal(0, 32768 * 10 ** (-60 / 20), RATE * 3)
    assert detector.feed(noise.astype("<i2").tobytes()) == []
    assert not detector.in_speech


def test_detector_waits_for_silence_ms_before_stopping(sentence_audio):
    detector = SpeechDetector(silence_ms=800)
    edges = detector.feed(silence_pcm24k(500) + sentence_audio + silence_pcm24k(500))
    assert [e.kind for e in edges] == ["started"]
    assert detector.in_speech
    edges = detector.feed(silence_pcm24k(500))
    assert [e.kind for e in edges] == ["stopped"]


def test_detector_silence_ms_decides_whether_a_pause_splits_the_turn():
    part = speech_pcm24k("one two three")
    audio = silence_pcm24k(500) + part + silence_pcm24k(600) + part + silence_pcm24k(1500)
    short = SpeechDetector(silence_ms=300).feed(audio)
    long = SpeechDetector(silence_ms=1000).feed(audio)
    assert [e.kind for e in short] == ["started", "stopped", "started", "stopped"]
    assert [e.kind for e in long] == ["started", "stopped"]


def test_detector_threshold_sets_how_loud_speech_must_be(sentence_audio):
    quiet = silence_pcm24k(500) + scaled(sentence_audio, 0.02) + silence_pcm24k(1000)  # about -34 dB
    loud = silence_pcm24k(500) + sentence_audio + silence_pcm24k(1000)
    assert [e.kind for e in SpeechDetector(threshold=0.2).feed(quiet)] == ["started", "stopped"]
    assert SpeechDetector(threshold=0.8).feed(quiet) == []
    assert [e.kind for e in SpeechDetector(threshold=0.8).feed(loud)] == ["started", "stopped"]


def test_detector_reports_positions_in_the_callers_timeline(sentence_audio):
    detector = SpeechDetector()
    assert detector.feed(silence_pcm24k(1000), at_ms=0) == []
    # The caller dropped 5 s of audio: the next chunk starts at 6000 ms.
    edges = detector.feed(silence_pcm24k(200) + sentence_audio + silence_pcm24k(1000), at_ms=6000)
    start, _ = speech_span_ms(sentence_audio)
    assert edges[0].kind == "started" and abs(edges[0].audio_ms - (6200 + start)) <= 300
    assert detector.position_ms == pytest.approx(6200 + duration_ms(sentence_audio) + 1000, abs=1)


def test_detector_reset_forgets_a_turn_in_progress(sentence_audio):
    detector = SpeechDetector()
    assert [e.kind for e in detector.feed(silence_pcm24k(300) + sentence_audio)] == ["started"]
    detector.reset()
    assert not detector.in_speech and detector.position_ms == 0
    assert detector.feed(silence_pcm24k(2000)) == []


def test_detector_stays_small_over_a_long_stream():
    detector = SpeechDetector()
    second = silence_pcm24k(1000)
    for _ in range(300):  # five minutes in odd-sized pieces
        detector.feed(second[:1001])
        detector.feed(second[1001:])
    assert detector.position_ms == 300_000
    assert len(detector._remainder) < 1440  # at most one partial 30 ms frame is carried


def test_detector_rejects_bad_settings():
    with pytest.raises(ValueError, match="threshold"):
        SpeechDetector(threshold=1.5)
    with pytest.raises(ValueError):
        SpeechDetector(silence_ms=-1)


# ------------------------------------------------------------------ threads


def test_concurrent_callers_get_the_same_results_as_serial_ones():
    texts = [
        "what is the weather like",
        "I like green apples",
        "what do you see",
        "one two three four five",
        "yes",
        "how are you today",
        "please help me",
        "good morning everybody",
    ]
    voices = VOICES[: len(texts)]
    inputs = [silence_pcm24k(300) + synthesize(t, v) + silence_pcm24k(300) for t, v in zip(texts, voices, strict=False)]
    serial_text = [transcribe(pcm) for pcm in inputs]
    serial_audio = [synthesize(t, v) for t, v in zip(texts, voices, strict=False)]

    barrier = threading.Barrier(8)

    def work(i: int) -> tuple[str, bytes]:
        barrier.wait()
        audio = synthesize(texts[i], voices[i])
        return transcribe(inputs[i]), audio

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(8)))

    # The decoder keeps a little state between utterances (which utterance came before can flip a
    # word: "what do you see" / "well do you see"), so the order of calls may change a word or two.
    # Crossed or mixed buffers would give another input's words, or none: each transcript must be
    # closest to its own serial transcript.
    def overlap(a: str, b: str) -> float:
        x, y = set(a.split()), set(b.split())
        return len(x & y) / len(x | y) if x | y else 1.0

    for i, (text, _) in enumerate(results):
        own = overlap(text, serial_text[i])
        others = [overlap(text, serial_text[j]) for j in range(len(texts)) if j != i]
        assert text == serial_text[i] or own > max(others), (i, text, serial_text)
    for (_, audio), expected in zip(results, serial_audio, strict=False):
        # espeak-ng adds a little jitter of its own; crossed or mixed buffers would be far off.
        assert duration_ms(audio) == pytest.approx(duration_ms(expected), rel=0.02)
        assert rms(audio) == pytest.approx(rms(expected), rel=0.1)
    assert speech._DECODERS._created == 1


def test_transcribe_of_faint_noise_is_empty():
    noise = np.random.default_rng(2).normal(0, 32768 * 10 ** (-70 / 20), RATE * 2)
    assert transcribe(noise.astype("<i2").tobytes()) == ""
