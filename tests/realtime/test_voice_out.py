"""VoiceOut: the provider's voice into streamlit-webrtc's PcmAudioSource, with a capped buffer."""

from __future__ import annotations

import asyncio

import av
import numpy as np
import pytest
from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from streamlit_webrtc.pcm_source import PcmAudioSource

from realtime.mic_track import MicTrack
from realtime.voice_out import VoiceOut

FRAME_MS = 20


def decoded_frame(left, right=None, n=960) -> av.AudioFrame:
    """What aiortc's Opus decoder yields: s16 interleaved stereo 48 kHz."""
    left = np.broadcast_to(np.asarray(left, np.int16), (n,))
    right = left if right is None else np.broadcast_to(np.asarray(right, np.int16), (n,))
    inter = np.empty(2 * n, np.int16)
    inter[0::2], inter[1::2] = left, right
    frame = av.AudioFrame.from_ndarray(inter.reshape(1, -1), format="s16", layout="stereo")
    frame.sample_rate = 48000
    return frame


async def next_audio(track: MediaStreamTrack) -> av.AudioFrame:
    """The next frame of an audio track (recv() is typed as any media frame)."""
    frame = await track.recv()
    assert isinstance(frame, av.AudioFrame)
    return frame


class BurstTrack(MediaStreamTrack):
    """An upstream remote track that delivers frames as fast as it is asked, then ends."""

    kind = "audio"

    def __init__(self, frames: list[av.AudioFrame]) -> None:
        super().__init__()
        self._frames = list(frames)

    async def recv(self):
        await asyncio.sleep(0)
        if not self._frames:
            self.stop()
            raise MediaStreamError
        return self._frames.pop(0)


class Recorder:
    """A sink with no visible buffer (exercises VoiceOut's own accounting)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.clears = 0

    def push(self, pcm: bytes) -> None:
        self.chunks.append(pcm)

    def clear(self) -> None:
        self.clears += 1


def test_pcm_audio_source_works_outside_streamlit_and_exposes_its_fifo():
    """The pinned streamlit-webrtc keeps a fifo + lock we can measure exactly."""
    source = PcmAudioSource(sample_rate=48000)
    voice = VoiceOut(source)
    assert voice.exact_gauge
    assert voice.buffer_ms() == 0
    voice.push_frame(decoded_frame(1000))
    assert voice.buffer_ms() == pytest.approx(20.0)
    source.clear()  # clear() replaces the fifo: the gauge must follow it
    assert voice.buffer_ms() == 0


async def test_stereo_is_downmixed_and_played_in_order():
    source = PcmAudioSource(sample_rate=48000)
    voice = VoiceOut(source)
    voice.push_frame(decoded_frame(1000, 3000))
    voice.push_frame(decoded_frame(-500, -1500))
    played = [await next_audio(source.track) for _ in range(3)]
    try:
        values = [set(f.to_ndarray().reshape(-1).tolist()) for f in played]
        assert values == [{2000}, {-1000}, {0}]  # then silence on underrun
        assert all(f.layout.name == "mono" and f.sample_rate == 48000 for f in played)
    finally:
        source.track.stop()


async def test_a_burst_is_bounded_by_the_burst_ceiling_and_keeps_the_newest_audio(monkeypatch):
    source = PcmAudioSource(sample_rate=48000)
    voice = VoiceOut(source, max_buffer_ms=400, max_burst_ms=1000)
    # 3 s of audio, each 20 ms frame tagged with 100 x its index, arriving in a burst.
    upstream = BurstTrack([decoded_frame(100 * (i + 1)) for i in range(150)])
    seen: list[float] = []

    original = voice.push_frame

    def watched(frame):
        original(frame)
        seen.append(voice.buffer_ms())

    monkeypatch.setattr(voice, "push_frame", watched)  # observe the buffer after every frame
    player = source.track
    played: list[int] = []

    async def browser():  # the browser leg pulls 20 ms frames in real time
        while True:
            frame = await next_audio(player)
            played.append(int(frame.to_ndarray()[0, 0]) // 100)

    consumer = asyncio.ensure_future(browser())
    try:
        await asyncio.wait_for(voice.run(upstream), 5)
        burst_done_at = len(played)

        async def until_last_frame_heard():
            while 150 not in played:
                await asyncio.sleep(0.02)

        await asyncio.wait_for(until_last_frame_heard(), 4)
    finally:
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
        player.stop()
    assert len(seen) == 150
    assert max(seen) <= 1000 + FRAME_MS
    stats = voice.stats()
    assert stats.frames == 150 and stats.pushed_ms == pytest.approx(3000)
    # What was not kept was dropped, and accounted for.
    assert stats.dropped_ms >= 3000 - 1000 - FRAME_MS * len(played) - FRAME_MS
    # The oldest audio went: the browser then hears the newest second, in order, not a 3 s
    # backlog. (The source track reads its fifo before it sleeps, so one frame taken during
    # the burst may be returned after it.)
    after_burst = [v for v in played[burst_done_at:] if v]
    assert after_burst[-49:] == list(range(102, 151))
    assert len(after_burst) <= 51


def test_clear_empties_the_buffer_for_barge_in():
    source = PcmAudioSource(sample_rate=48000)
    voice = VoiceOut(source)
    for _ in range(10):
        voice.push_frame(decoded_frame(4000))
    assert voice.buffer_ms() == pytest.approx(200.0)
    voice.clear()
    stats = voice.stats()
    assert stats.current_buffer_ms == 0 and stats.clears == 1 and stats.level == 0
    voice.push_frame(decoded_frame(4000))  # the next response plays normally
    assert voice.buffer_ms() == pytest.approx(20.0)


def test_level_is_rms_of_the_last_200_ms():
    now = [50.0]
    source = PcmAudioSource(sample_rate=48000)
    voice = VoiceOut(source, clock=lambda: now[0])
    assert voice.level() == 0
    t = np.arange(960) / 48000
    for i in range(20):  # 400 ms: quiet first, then a loud tone for the last 200 ms
        amp = 0.01 if i < 10 else 0.5
        samples = (amp * 32767 * np.sin(2 * np.pi * 500 * (t + i * 0.02))).astype(np.int16)
        voice.push_frame(decoded_frame(samples))
        now[0] += 0.02
    assert voice.level() == pytest.approx(0.5 / np.sqrt(2), rel=0.05)
    now[0] += 0.3  # the assistant stopped talking: no frames for 300 ms
    assert voice.stats().level == 0


def test_opaque_sink_uses_own_accounting_and_keeps_the_cap():
    now = [0.0]
    sink = Recorder()
    voice = VoiceOut(sink, max_buffer_ms=400, max_burst_ms=400, clock=lambda: now[0])
    assert not voice.exact_gauge
    for _ in range(50):  # 1 s in a burst
        voice.push_frame(decoded_frame(700))
    accepted = sum(len(c) for c in sink.chunks) // 2
    assert accepted == 400 * 48  # 400 ms of mono samples
    assert voice.stats().dropped_ms == pytest.approx(600)
    now[0] += 0.2  # the sink played 200 ms
    assert voice.buffer_ms() == pytest.approx(200)
    for _ in range(20):
        voice.push_frame(decoded_frame(700))
    assert sum(len(c) for c in sink.chunks) // 2 == 600 * 48
    voice.clear()
    assert sink.clears == 1 and voice.buffer_ms() == 0


def test_bad_sinks_and_settings_are_refused_clearly():
    with pytest.raises(TypeError, match="push"):
        VoiceOut(object())  # type: ignore[arg-type]  # not a sink on purpose: checks the run-time error
    with pytest.raises(ValueError, match="24000 Hz"):
        VoiceOut(PcmAudioSource(sample_rate=24000))
    with pytest.raises(ValueError, match="max_buffer_ms"):
        VoiceOut(Recorder(), max_buffer_ms=0)


async def test_other_rates_are_resampled():
    source = PcmAudioSource(sample_rate=48000)
    voice = VoiceOut(source)
    wave = (0.5 * np.sin(2 * np.pi * 300 * np.arange(2400) / 24000)).astype(np.float32)
    frame = av.AudioFrame.from_ndarray(wave.reshape(1, -1), format="flt", layout="mono")
    frame.sample_rate = 24000  # 100 ms at 24 kHz
    voice.push_frame(frame)
    assert 80 <= voice.buffer_ms() <= 100
    source.track.stop()


async def test_relays_a_real_upstream_peer_into_the_browser_source():
    """aiortc decodes the provider's Opus; VoiceOut turns it into audible browser audio."""
    upstream, bridge_pc = RTCPeerConnection(), RTCPeerConnection()
    provider_voice = MicTrack()  # a paced track we can feed: the "provider"
    source = PcmAudioSource(sample_rate=48000)
    voice = VoiceOut(source, max_buffer_ms=400)
    got: asyncio.Future = asyncio.get_running_loop().create_future()

    def on_track(t):
        if not got.done():
            got.set_result(t)

    bridge_pc.on("track", on_track)
    relay = None
    try:
        upstream.addTrack(provider_voice)
        await upstream.setLocalDescription(await upstream.createOffer())
        await bridge_pc.setRemoteDescription(upstream.localDescription)
        await bridge_pc.setLocalDescription(await bridge_pc.createAnswer())
        await upstream.setRemoteDescription(bridge_pc.localDescription)
        remote = await asyncio.wait_for(got, 10)
        first = await asyncio.wait_for(remote.recv(), 10)
        # What aiortc's decoder actually delivers:
        assert (first.format.name, first.layout.name, first.sample_rate) == ("s16", "stereo", 48000)
        relay = asyncio.ensure_future(voice.run(remote))
        t = np.arange(960) / 48000
        loud = 0
        for i in range(150):
            s = (12000 * np.sin(2 * np.pi * 440 * (t + i * 0.02))).astype(np.int16)
            provider_voice.push(decoded_frame(s))
            frame = await asyncio.wait_for(next_audio(source.track), 2)
            x = frame.to_ndarray().reshape(-1).astype(np.float64) / 32768
            if np.sqrt(np.mean(x**2)) > 0.1:
                loud += 1
            assert voice.buffer_ms() <= 400 + FRAME_MS
            if loud >= 20:
                break
        assert loud >= 20, f"browser source played only {loud} loud frames"
        assert voice.stats().level > 0.1
    finally:
        if relay is not None:
            relay.cancel()
            await asyncio.gather(relay, return_exceptions=True)
        provider_voice.stop()
        source.track.stop()
        await upstream.close()
        await bridge_pc.close()


def test_silence_drains_a_backlog_without_cutting_speech():
    source = PcmAudioSource(sample_rate=48000)
    voice = VoiceOut(source, max_buffer_ms=400, silence_skip_ms=60)
    for _ in range(15):  # 300 ms of speech arrives in a burst
        voice.push_frame(decoded_frame(5000))
    assert voice.buffer_ms() == pytest.approx(300)
    quiet = np.random.default_rng(0).integers(-8, 9, 960)  # decoded "silence": -72 dBFS
    for _ in range(20):  # the pause after the sentence is not queued behind it
        voice.push_frame(decoded_frame(quiet))
    stats = voice.stats()
    assert stats.current_buffer_ms == pytest.approx(300)
    assert stats.skipped_silence_ms == pytest.approx(400) and stats.dropped_ms == 0
    # Quiet speech is never mistaken for silence.
    for _ in range(10):
        voice.push_frame(decoded_frame(200))  # -44 dBFS
    assert voice.buffer_ms() == pytest.approx(500)


def test_short_pauses_inside_speech_keep_their_length_but_silence_between_replies_is_not_queued():
    source = PcmAudioSource(sample_rate=48000)
    voice = VoiceOut(source, silence_skip_ms=60, hangover_ms=200)
    quiet = np.zeros(960, np.int16)
    for _ in range(50):  # the provider's idle stream: nothing is queued in front of the next reply
        voice.push_frame(decoded_frame(quiet))
    assert voice.buffer_ms() == 0
    voice.push_frame(decoded_frame(3000))  # the first word lands in an empty buffer: heard next tick
    assert voice.buffer_ms() == pytest.approx(20)
    source.clear()  # (played out)
    for _ in range(3):  # a 60 ms pause between words is kept
        voice.push_frame(decoded_frame(quiet))
    voice.push_frame(decoded_frame(3000))
    assert voice.buffer_ms() == pytest.approx(80)
    source.clear()
    for _ in range(30):  # after the reply: only the hangover's worth could be queued
        voice.push_frame(decoded_frame(quiet))
    assert voice.buffer_ms() <= 60 + FRAME_MS
    assert voice.stats().dropped_ms == 0


def test_a_standing_backlog_is_trimmed_to_the_cap_after_the_window_but_a_burst_is_not_cut():
    now = [100.0]
    source = PcmAudioSource(sample_rate=48000)
    voice = VoiceOut(source, max_buffer_ms=400, cap_window_ms=1000, max_burst_ms=1000, clock=lambda: now[0])
    for i in range(35):  # a 700 ms catch-up burst from a sender whose loop stalled
        voice.push_frame(decoded_frame(1000 + i))
    assert voice.buffer_ms() == pytest.approx(700)
    assert voice.stats().dropped_ms == 0  # nothing cut out of the reply
    for i in range(60):  # then speech goes on in real time: the backlog stands
        with source._lock:
            source._fifo.read(960)  # the browser leg played 20 ms
        now[0] += 0.02
        voice.push_frame(decoded_frame(2000 + i))
        if now[0] - 100.0 < 0.99:
            assert voice.buffer_ms() == pytest.approx(700)
    assert voice.buffer_ms() <= 400 + FRAME_MS  # stood for 1 s: trimmed to the cap
    assert voice.stats().dropped_ms == pytest.approx(300, abs=FRAME_MS)
    # the newest audio is what remains: the last frame pushed is at the end
    with source._lock:
        last = source._fifo.read(source._fifo.samples)
    assert last is not None
    rest = last.to_ndarray().reshape(-1)
    assert int(rest[-1]) == 2059


async def test_a_frame_that_cannot_be_converted_is_skipped_and_the_relay_goes_on(caplog):
    source = PcmAudioSource(sample_rate=48000)
    voice = VoiceOut(source)
    bad = av.AudioFrame(format="s16", layout="stereo", samples=960)  # no sample rate: unconvertible
    bad.sample_rate = 0
    upstream = BurstTrack([decoded_frame(3000), bad, bad, decoded_frame(3000)])
    await asyncio.wait_for(voice.run(upstream), 5)
    stats = voice.stats()
    assert stats.bad_frames == 2 and stats.frames == 2
    assert voice.buffer_ms() == pytest.approx(40)
    assert caplog.text.count("could not convert") == 1


class Player:
    """The browser leg's track: every 20 ms it takes a frame from the source (a short read is a gap heard)."""

    def __init__(self, source: PcmAudioSource, now: list[float]) -> None:
        self.source, self.now = source, now
        self.short_reads = 0

    def tick(self) -> None:
        self.now[0] += 0.02
        with self.source._lock:
            frame = self.source._fifo.read(960, partial=True)
        if frame is None or frame.samples < 960:
            self.short_reads += 1


def test_underruns_are_counted_only_when_the_voice_runs_out_mid_utterance():
    now = [100.0]
    source = PcmAudioSource(sample_rate=48000)
    voice = VoiceOut(source, hangover_ms=200, clock=lambda: now[0])
    player = Player(source, now)
    quiet = np.zeros(960, np.int16)

    def frame_then_read(pcm=3000) -> None:
        voice.push_frame(decoded_frame(pcm))
        player.tick()

    for _ in range(100):  # a reply arriving in real time: never runs out
        frame_then_read()
    assert (voice.stats().underruns, voice.stats().starved_ms, player.short_reads) == (0, 0, 0)

    for _ in range(10):  # this loop stalls 200 ms mid-word: the player reads nothing
        player.tick()
    frame_then_read()
    stats = voice.stats()
    assert player.short_reads == 10 and stats.underruns == 1
    assert 140 <= stats.starved_ms <= 200  # 200 ms heard as a gap; counted at least 140 of it (a lower bound)

    for _ in range(60):  # the reply ends: its tail of silence, then the idle stream
        frame_then_read(quiet)
    for _ in range(25):  # the idle stream stalls too: nothing is playing, nothing is missed
        player.tick()
    for _ in range(20):
        frame_then_read(quiet)
    frame_then_read()  # the next reply starts after the pause
    for _ in range(50):
        frame_then_read()
    assert voice.stats().underruns == 1  # unchanged
    assert player.short_reads > 10  # (the player did run dry in the pause, on purpose)


def test_a_voice_stream_that_stops_mid_word_counts_at_most_a_second_and_clear_forgets_it():
    now = [100.0]
    voice = VoiceOut(PcmAudioSource(sample_rate=48000), clock=lambda: now[0])
    voice.push_frame(decoded_frame(3000))
    now[0] += 30.0  # the stream stopped mid-word and came back much later
    voice.push_frame(decoded_frame(3000))
    assert (voice.stats().underruns, voice.stats().starved_ms) == (1, pytest.approx(1000))
    voice.clear()  # Interrupt: what comes after is not late for what was cleared
    now[0] += 0.5
    voice.push_frame(decoded_frame(3000))
    assert voice.stats().underruns == 1


def test_a_burst_after_a_stall_counts_the_stall_once():
    now = [100.0]
    source = PcmAudioSource(sample_rate=48000)
    voice = VoiceOut(source, clock=lambda: now[0])
    player = Player(source, now)
    voice.push_frame(decoded_frame(3000))
    player.tick()
    for _ in range(15):  # 300 ms with nothing from the provider
        player.tick()
    for _ in range(15):  # then the late frames all at once
        voice.push_frame(decoded_frame(3000))
    stats = voice.stats()
    assert stats.underruns == 1 and stats.starved_ms == pytest.approx(300 - 20, abs=1)
