"""Offline speech for the local engine: text to speech, speech to text, voice activity.

Everything here is blocking and thread-safe; the engine's IO edge calls ``synthesize`` from a thread
pool and ``transcribe`` in a child process (localengine.recognizer: decoding holds the GIL).
Audio in and out is pcm16 little-endian mono at 24 kHz (the Realtime wire format).

- ``synthesize`` drives libespeak-ng from the ``espeakng-loader`` wheel through ctypes. espeak-ng
  keeps global state and is not thread-safe, so every call is serialized by one lock.
- ``transcribe`` uses pocketsphinx with its bundled en-US model. The decoder is costly to build
  and holds the GIL while it works, so one is built lazily, reused, and callers take turns.
  Accuracy on synthetic speech is modest (see tests/localengine/test_speech.py): it is a stand-in.
- ``SpeechDetector`` is a streaming voice activity detector built on pocketsphinx's ``Vad`` with an
  energy gate and a simple hangover/endpointing rule. It holds no audio beyond one partial frame.
  One detector per audio stream; a detector itself is not meant to be shared between threads.

Nothing is downloaded: both models ship inside their wheels.
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    from pocketsphinx import Decoder

__all__ = [
    "DEFAULT_VOICE",
    "SAMPLE_RATE",
    "VOICES",
    "SpeechDetector",
    "SpeechEdge",
    "synthesize",
    "transcribe",
    "warm_recognizer",
]

SAMPLE_RATE = 24_000
"""Rate of every pcm16 buffer this module takes or returns."""

_RECOGNIZER_RATE = 16_000


# --------------------------------------------------------------------------------------------
# Voices
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _EspeakVoice:
    name: str  # espeak voice "language+variant"
    pitch: int  # espeakPITCH, 0..100 (50 = normal)
    rate: int  # espeakRATE, words per minute (175 = normal)
    pitch_range: int  # espeakRANGE, 0..100 (50 = normal)


# Each provider voice gets its own variant and pitch so a voice change is audible. Pitches are
# spread so that neighbouring voices of the same gender still differ by a clear step.
_VOICE_MAP: dict[str, _EspeakVoice] = {
    "alloy": _EspeakVoice("en-us+m3", 50, 175, 50),
    "ash": _EspeakVoice("en-us+m1", 35, 165, 40),
    "ballad": _EspeakVoice("en-gb-x-rp+m2", 40, 150, 70),
    "coral": _EspeakVoice("en-us+f2", 55, 175, 60),
    "echo": _EspeakVoice("en-us+m5", 0, 170, 30),
    "sage": _EspeakVoice("en+f1", 45, 160, 50),
    "shimmer": _EspeakVoice("en-us+f5", 90, 175, 60),
    "verse": _EspeakVoice("en-us+m7", 70, 180, 60),
    "marin": _EspeakVoice("en-us+f3", 66, 170, 55),
    "cedar": _EspeakVoice("en+m4", 18, 145, 45),
}

VOICES: tuple[str, ...] = tuple(_VOICE_MAP)
"""Provider voice names that map to distinct espeak voices."""

DEFAULT_VOICE = "alloy"


# --------------------------------------------------------------------------------------------
# espeak-ng through ctypes
# --------------------------------------------------------------------------------------------

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE = 1
_PARAM_VOLUME = 2
_PARAM_PITCH = 3
_PARAM_RANGE = 4
_EE_OK = 0

# int callback(short *wav, int numsamples, espeak_EVENT *events); return 0 to continue.
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)

_MAX_TEXT_CHARS = 20_000
_MIN_RATE, _MAX_RATE = 80, 450  # espeakRATE limits, words per minute


class _Espeak:
    """The process-wide espeak-ng library. Every method must be called with ``_ESPEAK_LOCK`` held."""

    def __init__(self) -> None:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.POINTER(ctypes.c_uint),
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.argtypes = []
        lib.espeak_Synchronize.restype = ctypes.c_int

        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0)
        if rate <= 0:
            raise RuntimeError(f"espeak-ng failed to initialize (code {rate})")
        self.rate = rate
        self._lib = lib
        self._chunks: list[bytes] = []
        # Keep a reference: ctypes callbacks must outlive their use by C.
        self._callback = _SYNTH_CALLBACK(self._collect)
        lib.espeak_SetSynthCallback(self._callback)
        self._voice: _EspeakVoice | None = None

    def _collect(
        self, wav: ctypes._Pointer[ctypes.c_short], numsamples: int, _events: int | None
    ) -> int:  # called by C on the synthesizing thread
        if numsamples > 0 and wav:
            self._chunks.append(ctypes.string_at(wav, numsamples * 2))
        return 0

    def _select(self, voice: _EspeakVoice) -> None:
        if voice == self._voice:
            return
        if self._lib.espeak_SetVoiceByName(voice.name.encode()) != _EE_OK:
            # A variant missing from the data set: fall back to the bare language.
            self._lib.espeak_SetVoiceByName(voice.name.split("+")[0].encode())
        self._lib.espeak_SetParameter(_PARAM_RATE, voice.rate, 0)
        self._lib.espeak_SetParameter(_PARAM_PITCH, voice.pitch, 0)
        self._lib.espeak_SetParameter(_PARAM_RANGE, voice.pitch_range, 0)
        self._lib.espeak_SetParameter(_PARAM_VOLUME, 100, 0)
        self._voice = voice

    def synth(self, text: str, voice: _EspeakVoice) -> bytes:
        self._select(voice)
        data = text.encode("utf-8") + b"\0"
        buf = ctypes.create_string_buffer(data, len(data))
        self._chunks = []
        try:
            code = self._lib.espeak_Synth(buf, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            if code != _EE_OK:
                raise RuntimeError(f"espeak-ng could not synthesize (code {code})")
            self._lib.espeak_Synchronize()
            return b"".join(self._chunks)
        finally:
            self._chunks = []


_ESPEAK_LOCK = threading.Lock()
_espeak: _Espeak | None = None


def _clean_text(text: str) -> str:
    # Control characters can make espeak read out odd things; keep line breaks as pauses.
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text)
    return cleaned[:_MAX_TEXT_CHARS].strip()


def synthesize(text: str, voice: str, speed: float = 1.0) -> bytes:
    """Speak ``text`` in the provider voice ``voice``: pcm16 LE mono 24 kHz.

    Unknown voice names use ``DEFAULT_VOICE``. Empty (or whitespace-only) text gives ``b""``.
    Text beyond 20,000 characters is not spoken. ``speed`` (``audio.output.speed``, 0.25..1.5)
    scales the voice's espeak rate (words a minute; espeak keeps it within 80..450).
    """
    global _espeak
    cleaned = _clean_text(text)
    if not cleaned:
        return b""
    spec = _VOICE_MAP.get(voice.lower() if isinstance(voice, str) else "", _VOICE_MAP[DEFAULT_VOICE])
    if speed != 1.0:
        spec = replace(spec, rate=min(_MAX_RATE, max(_MIN_RATE, round(spec.rate * speed))))
    with _ESPEAK_LOCK:
        if _espeak is None:
            _espeak = _Espeak()
        raw = _espeak.synth(cleaned, spec)
        source_rate = _espeak.rate
    return _resample(raw, source_rate, SAMPLE_RATE)


# --------------------------------------------------------------------------------------------
# Resampling (linear interpolation; speech quality is not the point, speed is)
# --------------------------------------------------------------------------------------------


def _resample(pcm16: bytes, src_rate: int, dst_rate: int) -> bytes:
    samples = np.frombuffer(pcm16[: len(pcm16) - len(pcm16) % 2], dtype="<i2")
    return _resample_array(samples, src_rate, dst_rate).astype("<i2").tobytes()


def _resample_array(samples: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    if src_rate == dst_rate or samples.size == 0:
        return samples.astype(np.int16, copy=False)
    x = samples.astype(np.float32)
    if dst_rate < src_rate:
        # Cheap anti-alias: a short moving average before decimating.
        width = max(1, round(src_rate / dst_rate))
        if width > 1:
            x = np.convolve(x, np.full(width, 1.0 / width, dtype=np.float32), mode="same")
    n_out = int(samples.size * dst_rate // src_rate)
    out = np.empty(n_out, dtype=np.int16)
    step = src_rate / dst_rate
    # In blocks, so a long reply needs a few MB of temporaries, not hundreds.
    for start in range(0, n_out, _RESAMPLE_BLOCK):
        stop = min(n_out, start + _RESAMPLE_BLOCK)
        positions = np.arange(start, stop, dtype=np.float64) * step
        lo = int(positions[0])
        hi = min(samples.size, int(positions[-1]) + 2)
        y = np.interp(positions, np.arange(lo, hi, dtype=np.float64), x[lo:hi])
        out[start:stop] = np.clip(np.rint(y), -32768, 32767)
    return out


_RESAMPLE_BLOCK = 1 << 18  # output samples per block (about 11 s at 24 kHz)


# --------------------------------------------------------------------------------------------
# Speech to text: pocketsphinx with its bundled en-US model
# --------------------------------------------------------------------------------------------


class _DecoderPool:
    """Lazily built pocketsphinx decoders, at most ``size`` of them, each used by one thread at a time."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._idle: list[Decoder] = []
        self._created = 0
        self._cond = threading.Condition()

    def acquire(self) -> Decoder:
        with self._cond:
            while True:
                if self._idle:
                    return self._idle.pop()
                if self._created < self._size:
                    self._created += 1
                    break
                self._cond.wait()
        try:
            return _new_decoder()
        except BaseException:
            with self._cond:
                self._created -= 1
                self._cond.notify()
            raise

    def release(self, decoder: Decoder) -> None:
        with self._cond:
            self._idle.append(decoder)
            self._cond.notify()


def _new_decoder() -> Decoder:
    import pocketsphinx

    # Default config = the bundled en-US acoustic model, dictionary and language model. The
    # flat-lexicon second pass and the lattice best path are off: they hold the GIL for hundreds
    # of milliseconds at a time (end_utt / hyp) and made decoding 2-3x slower, while on
    # synthetic speech they recognized no more words than the first pass alone. At most 3000
    # active HMMs per frame (the default allows 30000): on 40 synthesized utterances (10 phrases x
    # 4 voices, 48.9 s) decoding took 0.116 s of CPU per second of audio instead of 0.204, and
    # found 107 of the 196 words, as many as without the cap (2000: 96 words, 4000: 108).
    return pocketsphinx.Decoder(loglevel="FATAL", fwdflat=False, bestpath=False, maxhmmpf=3000)


# Cepstral mean after live adaptation over 80 utterances (20 phrases x 4 voices). Starting each
# utterance from it, 63/80 of those phrases came out at least partly right versus 50/80 from the
# model's default (40,3,-1,0,...); live CMN still adapts within each utterance.
_CMN_PRIOR = "59.55,7.38,-6.04,23.83,-11.58,0.23,-1.29,-14.75,-12.15,-7.27,9.86,-4.03,-7.15"
_FRAME_SAMPLES_24K = SAMPLE_RATE * 30 // 1000
_DECODE_CHUNK_BYTES = _RECOGNIZER_RATE // 100 * 2  # 10 ms of 16 kHz pcm16
# Decoding holds the GIL, so decoders cannot run in parallel. Measured with two at once: the
# pair took 3x as long as one and an asyncio loop in the same process waited up to 300 ms (once
# over 1 s) for the GIL. With one decoder, other callers queue here without the GIL and the
# loop's waits were ~6 ms median, 12-30 ms p95 (worst 80 ms on a heavily loaded 2-core box).
_DECODERS = _DecoderPool(size=1)


_SILENCE_DBFS = -55.0


def warm_recognizer() -> None:
    """Build the decoder now (it takes about a second), so the first ``transcribe`` does not."""
    _DECODERS.release(_DECODERS.acquire())


def new_decoder() -> Decoder:
    """A decoder for `Utterance.bind` (about 90 MB and 0.3 s to build: keep it for many utterances)."""
    return _new_decoder()


class Utterance:
    """One utterance's audio, given in pieces as it is spoken, decoded as it comes once it holds a
    decoder: when it ends, only its last few milliseconds are left to decode.

    Every piece goes through the same steps as one call of ``transcribe`` with all of it (24 -> 16 kHz
    three samples at a time, 10 ms per ``process_raw``, the same silence gate), so the text is the
    same whether the audio came at once or in any pieces. Not thread-safe: one caller at a time.
    """

    def __init__(self) -> None:
        self._samples = 0  # 24 kHz samples given so far
        self._odd = b""  # a trailing odd byte, until the next piece completes its sample
        self._held = np.zeros(0, dtype=np.int16)  # the 1-2 samples of an unfinished triple
        self._context = np.zeros(3, dtype=np.int16)  # the triple before: its last sample smooths the next
        self._frame = np.zeros(0, dtype=np.int16)  # samples of the unfinished 30 ms loudness frame
        self._loudest = 0.0  # mean square of the loudest whole 30 ms frame
        self._pcm16k = bytearray()
        self._decoded = 0  # bytes of _pcm16k given to the decoder
        self._decoder: Decoder | None = None

    @property
    def decoder(self) -> Decoder | None:
        return self._decoder

    @property
    def audio_ms(self) -> int:
        return self._samples * 1000 // SAMPLE_RATE

    @property
    def decoded_ms(self) -> int:
        """How much of it the bound decoder has heard (0 without one)."""
        return self._decoded * 1000 // (_RECOGNIZER_RATE * 2) if self._decoder is not None else 0

    def add(self, pcm24k: bytes) -> None:
        """More audio (pcm16 LE mono 24 kHz); decoded at once if a decoder is bound."""
        data = self._odd + pcm24k
        self._odd = data[len(data) - len(data) % 2 :]
        samples = np.frombuffer(data[: len(data) - len(data) % 2], dtype="<i2")
        if samples.size == 0:
            return
        self._samples += samples.size
        self._measure(samples)
        pending = np.concatenate([self._held, samples])
        whole = pending.size - pending.size % 3
        self._held = pending[whole:].copy()
        if whole:
            self._resample(pending[:whole])
        self._decode(final=False)

    def bind(self, decoder: Decoder) -> None:
        """Start decoding with ``decoder`` (from the first sample, whatever was given before)."""
        if self._decoder is not None:
            raise RuntimeError("this utterance already has a decoder")
        self._decoder = decoder
        self._decoded = 0
        # Live cepstral mean normalization carries over from one utterance to the next, which would
        # make a result depend on what that decoder heard before. Every utterance starts from the same
        # speech-adapted prior instead, so equal audio nearly always gives equal text (some search
        # state still carries over: the utterance before can flip a word).
        decoder.set_cmn(_CMN_PRIOR)
        decoder.start_utt()
        self._decode(final=False)

    def unbind(self) -> Decoder:
        """Stop decoding and hand the decoder back: what it decoded is dropped (a later `bind` redoes it)."""
        decoder, self._decoder = self._decoder, None
        if decoder is None:
            raise RuntimeError("this utterance has no decoder")
        decoder.end_utt()
        return decoder

    def finish(self) -> str:
        """Decode what is left and end the utterance: its words, lowercase ("" for silence or under
        100 ms). Needs a decoder; the caller gets it back (it is no longer bound)."""
        decoder = self._decoder
        if decoder is None:
            raise RuntimeError("bind a decoder first")
        if self._held.size == 2:  # the last partial triple still gives one 16 kHz sample
            self._resample(np.concatenate([self._held, np.zeros(1, dtype=np.int16)]), keep=1)
        self._held = self._held[:0]
        self._decode(final=True)
        self._decoder = None
        decoder.end_utt()
        hyp = decoder.hyp()
        if self.silent:
            return ""
        return " ".join((hyp.hypstr if hyp is not None else "").lower().split())

    @property
    def silent(self) -> bool:
        """Under 100 ms, or nothing above the noise floor: nothing to recognize."""
        if self._samples < SAMPLE_RATE // 10:
            return True
        return 10.0 * float(np.log10(max(self._loudest, 1e-12) / 32768.0**2)) < _SILENCE_DBFS

    def _measure(self, samples: np.ndarray) -> None:
        frames = np.concatenate([self._frame, samples])
        whole = frames.size - frames.size % _FRAME_SAMPLES_24K
        self._frame = frames[whole:].copy()
        if whole:
            power = np.mean(frames[:whole].reshape(-1, _FRAME_SAMPLES_24K).astype(np.float32) ** 2, axis=1).max()
            self._loudest = max(self._loudest, float(power))

    def _resample(self, triples: np.ndarray, keep: int | None = None) -> None:
        # The same arithmetic as `_resample_array` over the whole utterance: its smoothing reaches one
        # sample back, so the triple before goes in first and its two outputs are dropped.
        out = _resample_array(np.concatenate([self._context, triples]), SAMPLE_RATE, _RECOGNIZER_RATE)[2:]
        self._context = triples[-3:].copy()
        self._pcm16k += out[:keep].astype("<i2").tobytes()

    def _decode(self, *, final: bool) -> None:
        decoder = self._decoder
        if decoder is None:
            return
        end = len(self._pcm16k) if final else len(self._pcm16k) - len(self._pcm16k) % _DECODE_CHUNK_BYTES
        view = memoryview(self._pcm16k)
        # pocketsphinx holds the GIL while it decodes: 10 ms at a time lets other threads in between
        # chunks. Live-mode decoding of small chunks also recognizes synthetic speech better than one
        # whole-utterance call.
        for start in range(self._decoded, end, _DECODE_CHUNK_BYTES):
            decoder.process_raw(bytes(view[start : min(end, start + _DECODE_CHUNK_BYTES)]), False, False)
        view.release()
        self._decoded = max(self._decoded, end)


def transcribe(pcm24k: bytes) -> str:
    """Recognize English speech in pcm16 LE mono 24 kHz audio. Lowercase words, "" for silence."""
    utterance = Utterance()
    utterance.add(pcm24k)
    if utterance.silent:  # skip decoding
        return ""
    decoder = _DECODERS.acquire()
    try:
        utterance.bind(decoder)
        text = utterance.finish()
    finally:
        _DECODERS.release(decoder)
    return text


# --------------------------------------------------------------------------------------------
# Voice activity: a streaming detector
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpeechEdge:
    """A change between silence and speech at ``audio_ms`` in the audio fed so far."""

    kind: Literal["started", "stopped"]
    audio_ms: int


_FRAME_MS = 30
_FRAME_SAMPLES = SAMPLE_RATE * _FRAME_MS // 1000  # 720 at 24 kHz -> 480 at 16 kHz
_FRAME_BYTES = _FRAME_SAMPLES * 2
_START_FRAMES = 3  # 90 ms of consecutive speech frames open a speech region


def _energy_gate_dbfs(threshold: float) -> float:
    """Frame RMS (dBFS) a frame needs to count as speech: -70 dBFS at 0, -45 at 0.5, -20 at 1."""
    return -70.0 + 50.0 * threshold


def _vad_mode(threshold: float) -> int:
    # pocketsphinx modes 0 (loose) .. 3 (strict); a higher threshold is stricter.
    return min(3, int(threshold * 4))


class SpeechDetector:
    """Streaming voice activity detection over pcm16 LE mono 24 kHz.

    ``feed`` takes chunks of any size and returns the edges found so far. A region opens after
    90 ms of consecutive speech frames (its ``started`` edge is placed where that run began) and
    closes once ``silence_ms`` of non-speech has followed (its ``stopped`` edge is placed where the
    speech ended; it is reported only after the silence has been seen). ``threshold`` (0..1) sets
    how loud and clear speech must be: it picks pocketsphinx's VAD mode and an energy gate, so a
    higher threshold ignores quieter speech. ``prefix_padding_ms`` is kept for the caller, which
    applies it. Memory is bounded: only a partial frame is carried between calls.
    """

    def __init__(self, threshold: float = 0.5, silence_ms: int = 500, prefix_padding_ms: int = 300) -> None:
        import pocketsphinx

        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be between 0 and 1, got {threshold!r}")
        if silence_ms < 0 or prefix_padding_ms < 0:
            raise ValueError("silence_ms and prefix_padding_ms must not be negative")
        self.threshold = float(threshold)
        self.silence_ms = int(silence_ms)
        self.prefix_padding_ms = int(prefix_padding_ms)
        self._vad = pocketsphinx.Vad(mode=_vad_mode(threshold), sample_rate=_RECOGNIZER_RATE, frame_length=0.03)
        if self._vad.frame_bytes != _FRAME_BYTES * 2 // 3:
            raise RuntimeError(f"unexpected pocketsphinx VAD frame size {self._vad.frame_bytes}")
        # Compare mean squares rather than taking a log per frame.
        self._gate_ms = (32768.0 * 10 ** (_energy_gate_dbfs(threshold) / 20.0)) ** 2
        self._silence_frames = max(1, -(-self.silence_ms // _FRAME_MS))
        self.reset()

    def reset(self) -> None:
        """Forget all audio: back to silence at position 0."""
        self._remainder = b""
        self._frames = 0  # whole frames processed
        self._offset_ms = 0  # caller's position minus ours (see ``feed``'s at_ms)
        self._in_speech = False
        self._run = 0  # consecutive speech frames while silent
        self._quiet = 0  # consecutive non-speech frames while speaking
        self._last_speech_end = 0  # frame index just past the last speech frame

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    @property
    def speech_until_ms(self) -> int | None:
        """While in speech: where the speech heard so far ends. The ``stopped`` edge will be placed
        there or later, so the audio before it belongs to the turn. None when silent."""
        return max(0, self._ms(self._last_speech_end)) if self._in_speech else None

    @property
    def position_ms(self) -> int:
        """Position just past the last audio fed, in the caller's timeline."""
        return (self._frames * _FRAME_SAMPLES + len(self._remainder) // 2) * 1000 // SAMPLE_RATE + self._offset_ms

    def feed(self, pcm24k: bytes, *, at_ms: int | None = None) -> list[SpeechEdge]:
        """Add audio; return the edges it completes.

        ``at_ms``, if given, is where this chunk starts in the caller's timeline (e.g. after the
        caller dropped audio); edge positions are reported in that timeline. Without it, chunks
        are taken to follow each other.
        """
        if at_ms is not None:
            ours = (self._frames * _FRAME_SAMPLES + len(self._remainder) // 2) * 1000 // SAMPLE_RATE
            self._offset_ms = int(at_ms) - ours
        data = self._remainder + bytes(pcm24k)
        whole = len(data) - len(data) % _FRAME_BYTES
        self._remainder = data[whole:]
        if not whole:
            return []
        edges: list[SpeechEdge] = []
        frames = np.frombuffer(data[:whole], dtype="<i2").reshape(-1, _FRAME_SAMPLES)
        energies = np.mean(frames.astype(np.float32) ** 2, axis=1)
        # 24 kHz -> 16 kHz by linear interpolation, frame by frame (3 samples -> 2).
        triples = frames.reshape(frames.shape[0], -1, 3).astype(np.int32)
        pairs = np.empty((frames.shape[0], triples.shape[1], 2), dtype=np.int16)
        pairs[:, :, 0] = triples[:, :, 0]
        pairs[:, :, 1] = (triples[:, :, 1] + triples[:, :, 2]) // 2
        down = pairs.reshape(frames.shape[0], -1)
        for i in range(frames.shape[0]):
            speech = energies[i] >= self._gate_ms and self._vad.is_speech(down[i].tobytes())
            self._step(bool(speech), edges)
            self._frames += 1
        return edges

    def _ms(self, frame_index: int) -> int:
        return frame_index * _FRAME_MS + self._offset_ms

    def _step(self, speech: bool, edges: list[SpeechEdge]) -> None:
        index = self._frames
        if not self._in_speech:
            self._run = self._run + 1 if speech else 0
            if self._run >= _START_FRAMES:
                self._in_speech = True
                self._quiet = 0
                self._last_speech_end = index + 1
                edges.append(SpeechEdge("started", max(0, self._ms(index + 1 - self._run))))
                self._run = 0
            return
        if speech:
            self._quiet = 0
            self._last_speech_end = index + 1
            return
        self._quiet += 1
        if self._quiet >= self._silence_frames:
            self._in_speech = False
            self._run = 0
            edges.append(SpeechEdge("stopped", max(0, self._ms(self._last_speech_end))))
