"""The Bridge end to end: fake browser -> streamlit-webrtc tracks -> Bridge -> local engine."""

from __future__ import annotations

import asyncio

import av
import numpy as np
import pytest
from openai.types.realtime import RealtimeClientEvent
from pydantic import TypeAdapter

from realtime import loop as bg
from realtime.bridge import FIRST_FRAME_WAIT_S
from realtime.settings import CameraSettings, Settings, TurnDetection
from tests.fakebrowser import SILENCE_RMS, BridgedCall, SolidVideoTrack, wait_until
from tests.media import speech_wav

CLIENT_EVENT = TypeAdapter(RealtimeClientEvent)


def settings_for(engine, **changes) -> Settings:
    return Settings(api_key="test-key", base_url=engine.base_url, **changes)


def client_events(call: BridgedCall, kind: str | None = None) -> list:
    return [e for e in call.bridge.events.snapshot() if e.direction == "client" and (kind is None or e.type == kind)]


async def test_speech_gets_a_transcript_and_a_spoken_reply_back_at_the_browser(engine, tmp_path):
    wav = speech_wav(tmp_path / "hello.wav", "hello there how are you", tail_silence_ms=0)
    async with BridgedCall(settings_for(engine, camera=CameraSettings(enabled=False))) as call:
        assert call.bridge.snapshot().state == "connected"
        assert call.bridge.snapshot().call_id
        call.browser.speaker.mark()
        call.browser.play_wav(wav)
        ended = await call.browser.mic.wait_spoken()
        heard = await call.browser.speaker.wait_for_audio(timeout=30)
        assert heard > ended  # the voice came after the user stopped talking
        await wait_until(lambda: call.texts("assistant"), 20, "the assistant's transcript")
        user = [i for i in call.bridge.snapshot().transcript if i.role == "user"]
        assert user and user[0].kind == "audio"
        await wait_until(lambda: user[0].id in {i.id for i in call.bridge.snapshot().transcript if i.final}, 10)
        # the reply's voice reached the browser with real energy, for a while
        await asyncio.sleep(1.0)
        assert call.browser.received_rms() > SILENCE_RMS
        snap = await wait_until(lambda: call.bridge.snapshot().turns and call.bridge.snapshot(), 10, "turn metrics")
        assert snap.turns[0].first_audio_ms is not None and snap.turns[0].first_audio_ms > 0
        assert snap.rtc.packets_sent > 0 and snap.rtc.packets_received > 0
        assert call.bridge.voice.stats().dropped_ms == 0  # no reply audio was cut to keep latency down
        for logged in client_events(call):
            CLIENT_EVENT.validate_python(logged.payload)


async def test_push_to_talk_commits_what_was_said_and_gets_a_reply(engine, tmp_path):
    wav = speech_wav(tmp_path / "ptt.wav", "hello there how are you", tail_silence_ms=0)
    settings = settings_for(engine, camera=CameraSettings(enabled=False), turn_detection=TurnDetection(mode="none"))
    async with BridgedCall(settings, rgb=None) as call:
        call.bridge.start_talking()
        call.browser.play_wav(wav)
        await call.browser.mic.wait_spoken()
        await asyncio.sleep(1.0)  # the end of the speech crosses both legs
        assert not call.texts("assistant")  # no VAD: nothing happens until the button
        kinds = [e.type for e in call.bridge.events.snapshot() if e.direction == "server"]
        assert "input_audio_buffer.speech_stopped" not in kinds
        call.bridge.commit_and_respond()
        reply = await call.reply_after(0, timeout=30)
        assert reply.startswith("You said")
        user = [i for i in call.bridge.snapshot().transcript if i.role == "user"]
        assert user and user[0].kind == "audio"
        sent = [e.type for e in client_events(call)]
        assert sent.index("input_audio_buffer.commit") < sent.index("response.create")


async def test_solid_blue_camera_gets_a_reply_naming_blue(engine):
    async with BridgedCall(settings_for(engine), rgb=(0, 0, 255)) as call:
        await wait_until(lambda: call.bridge.snapshot().images_in_context >= 1, 10, "a camera frame to be sent")
        images = [
            e
            for e in client_events(call, "conversation.item.create")
            if e.payload["item"]["content"][0]["type"] == "input_image"
        ]
        assert images and images[0].size < 60 * 1024
        before = len(call.texts("assistant"))
        call.bridge.send_text("what do you see?")
        reply = await call.reply_after(before)
        assert "blue" in reply.lower()


async def test_a_question_asked_before_the_camera_s_first_frame_goes_with_that_frame(engine):
    """Asked the moment the call is up, "what do you see?" waits for the camera's first frame, which
    the browser sends a moment later, instead of going without a picture."""
    async with BridgedCall(settings_for(engine), rgb=None) as call:
        assert not call.bridge.throttle.has_frame
        call.bridge.send_text("what do you see?")
        await asyncio.sleep(1.5)
        assert not call.texts("user")  # held for the picture
        blue = np.zeros((240, 320, 3), np.uint8)
        blue[:, :] = (0, 0, 255)
        call.bridge.on_video_frame(av.VideoFrame.from_ndarray(blue, format="rgb24"))
        assert "blue" in (await call.reply_after(0)).lower()


async def test_without_a_camera_frame_a_question_still_goes_after_the_wait(engine):
    async with BridgedCall(settings_for(engine), rgb=None) as call:
        call.bridge.send_text("hello there")
        assert (await call.reply_after(0, timeout=FIRST_FRAME_WAIT_S + 30)) == "You said: hello there"
        assert not call.bridge.image_log.snapshot()


def repaint(call: BridgedCall, rgb: tuple[int, int, int]) -> None:
    """The camera now sees another colour (the fake browser's solid-colour track)."""
    for transceiver in call.browser.pc.getTransceivers():
        track = transceiver.sender.track
        if isinstance(track, SolidVideoTrack):
            track._image[:, :] = rgb


async def test_at_each_turn_a_question_goes_with_the_frame_of_the_moment_it_was_asked(engine):
    """Frame policy ``turn`` (the default): one frame at the start, then no new one while nobody talks
    (20 s quiet interval), but a question, typed or spoken, takes the current frame with it."""
    async with BridgedCall(settings_for(engine), rgb=(0, 0, 255)) as call:
        await wait_until(lambda: len(call.bridge.image_log) >= 1, 10, "the first camera frame")
        repaint(call, (255, 0, 0))
        await asyncio.sleep(3.0)  # longer than the 2 s interval: under "interval" a red frame would go now
        assert len(call.bridge.image_log) == 1  # quiet: no frame sent
        before = len(call.texts("assistant"))
        call.bridge.send_text("what do you see?")
        reply = await call.reply_after(before)
        assert "red" in reply.lower()
        sent = call.bridge.image_log.snapshot()
        assert len(sent) == 2 and all(i.source == "camera" and i.in_conversation for i in sent)
        manual = call.bridge.settings.replace(camera={"policy": "manual"})
        call.bridge.update_settings(manual)
        repaint(call, (0, 255, 0))
        before = len(call.texts("assistant"))
        call.bridge.send_text("what do you see now?")
        assert "red" in (await call.reply_after(before)).lower()  # manual: only Send frame sends one
        call.bridge.send_frame_now()
        await wait_until(lambda: len(call.bridge.image_log) == 3, 5, "the frame sent on demand")


async def test_typed_delayed_add_runs_the_tool_and_the_reply_says_7(engine):
    async with BridgedCall(settings_for(engine, camera=CameraSettings(enabled=False)), rgb=None) as call:
        before = len(call.texts("assistant"))
        call.bridge.send_text("delayed add 2 and 5")
        reply = await call.reply_after(before, timeout=30)
        assert "7" in reply
        tools = [i for i in call.bridge.snapshot().transcript if i.role == "tool"]
        assert tools[0].tool_name == "delayed_add" and "7" in (tools[0].tool_result or "")
        outputs = client_events(call, "conversation.item.create")
        assert any(e.payload["item"]["type"] == "function_call_output" for e in outputs)


async def test_mid_call_settings_update_changes_the_next_reply(engine):
    settings = settings_for(engine, camera=CameraSettings(enabled=False))
    async with BridgedCall(settings, rgb=None) as call:
        before = len(call.texts("assistant"))
        call.bridge.send_text("hello")
        await call.reply_after(before)
        change = call.bridge.update_settings(settings.replace(instructions="Say: the pineapple is ripe."))
        assert change.applied == ("instructions",) and change.needs_restart == ()
        await wait_until(lambda: client_events(call, "session.update"), 5, "session.update to go out")
        assert len(client_events(call, "session.update")) == 1
        before = len(call.texts("assistant"))
        call.bridge.send_text("how are you")
        reply = await call.reply_after(before)
        assert "pineapple is ripe" in reply.lower()
        # the voice cannot change after the assistant has spoken: reported, not dropped
        change = call.bridge.update_settings(call.bridge.settings.replace(voice="cedar"))
        assert change.needs_restart == ("voice",) and change.applied == ()


async def test_malformed_server_event_becomes_an_error_item_and_the_call_goes_on(engine):
    async with BridgedCall(settings_for(engine, camera=CameraSettings(enabled=False)), rgb=None) as call:
        upstream = call.bridge._upstream
        assert upstream is not None and upstream.dc is not None
        channel = upstream.dc  # as if the data channel delivered them
        bg.call_soon(channel.emit, "message", "{not json")
        bg.call_soon(channel.emit, "message", '{"type": "response.done", "response": 5}')
        errors = await wait_until(
            lambda: [i for i in call.bridge.snapshot().transcript if i.role == "error"], 5, "an error item"
        )
        assert "malformed" in errors[0].text.lower()
        before = len(call.texts("assistant"))
        call.bridge.send_text("hello")
        assert await call.reply_after(before)
        assert call.bridge.snapshot().state == "connected"


async def test_events_sent_before_the_channel_opens_are_queued_not_dropped(engine):
    from streamlit_webrtc.pcm_source import PcmAudioSource

    from realtime.bridge import Bridge

    bridge = Bridge(settings_for(engine, camera=CameraSettings(enabled=False)), PcmAudioSource(sample_rate=48000))
    try:
        bridge.send_text("delayed add 1 and 1")  # before start(): must survive until the channel opens
        bridge.start()
        reply = await wait_until(
            lambda: [i.text for i in bridge.snapshot().transcript if i.role == "assistant" and i.final], 30, "a reply"
        )
        assert "2" in reply[0]
    finally:
        await asyncio.to_thread(bridge.close)


async def test_interrupt_stops_the_assistants_voice_at_the_browser(engine):
    settings = settings_for(
        engine,
        camera=CameraSettings(enabled=False),
        instructions="Say: " + "this is a long answer that keeps going and going. " * 6,
    )
    async with BridgedCall(settings, rgb=None) as call:
        call.browser.speaker.mark()
        call.bridge.send_text("hello")
        await wait_until(lambda: call.bridge.snapshot().activity == "assistant_speaking", 20, "the assistant to speak")
        await call.browser.speaker.wait_for_audio(timeout=10)
        clears = call.bridge.voice.stats().clears
        call.bridge.interrupt()
        await wait_until(lambda: client_events(call, "output_audio_buffer.clear"), 5, "output_audio_buffer.clear")
        await wait_until(
            lambda: [e for e in call.bridge.events.snapshot() if e.type == "output_audio_buffer.cleared"], 5, "cleared"
        )
        assert call.bridge.voice.stats().clears > clears
        # the long reply stops reaching the browser well before it would have ended
        await call.browser.speaker.wait_quiet(0.5, timeout=3)
        assert call.bridge.snapshot().activity == "listening"
        # and the page says the reply was cut off
        replies = [i for i in call.bridge.snapshot().transcript if i.role == "assistant"]
        assert replies and replies[-1].truncated and replies[-1].final


@pytest.mark.parametrize(("codec", "name"), [("pcmu", "PCMU"), ("pcma", "PCMA")])
async def test_a_phone_line_codec_carries_speech_both_ways(engine, tmp_path, codec, name):
    """G.711 upstream: the engine hears the user over 8 kHz and answers in a voice the browser hears."""
    wav = speech_wav(tmp_path / f"{codec}.wav", "hello there how are you", tail_silence_ms=0)
    settings = settings_for(engine, camera=CameraSettings(enabled=False), audio_codec=codec)
    async with BridgedCall(settings, rgb=None) as call:
        call.browser.speaker.mark()
        call.browser.play_wav(wav)
        await call.browser.mic.wait_spoken()
        await wait_until(lambda: [i for i in call.bridge.snapshot().transcript if i.role == "user"], 20, "user turn")
        await call.browser.speaker.wait_for_audio(timeout=30)
        await asyncio.sleep(1.0)
        assert call.browser.received_rms() > SILENCE_RMS
        snap = await wait_until(lambda: call.bridge.snapshot().rtc.codec and call.bridge.snapshot(), 5, "stats")
        assert snap.rtc.codec == name


async def test_speed_and_noise_reduction_apply_mid_call_as_one_session_update(engine):
    settings = settings_for(engine, camera=CameraSettings(enabled=False))
    async with BridgedCall(settings, rgb=None) as call:
        change = call.bridge.update_settings(settings.replace(voice_speed=1.25, noise_reduction="far_field"))
        assert set(change.applied) == {"voice_speed", "noise_reduction"} and change.needs_restart == ()
        updated = await wait_until(
            lambda: [e for e in call.bridge.events.snapshot() if e.type == "session.updated"][1:], 5, "session.updated"
        )  # the first session.updated answers calls.create's session
        (sent,) = client_events(call, "session.update")
        assert sent.payload["session"]["audio"]["output"]["speed"] == 1.25
        assert sent.payload["session"]["audio"]["input"]["noise_reduction"] == {"type": "far_field"}
        session = updated[-1].payload["session"]
        assert session["audio"]["output"]["speed"] == 1.25
        assert session["audio"]["input"]["noise_reduction"] == {"type": "far_field"}


async def test_max_output_tokens_cuts_the_reply_and_the_response_says_incomplete(engine):
    settings = settings_for(engine, camera=CameraSettings(enabled=False), max_output_tokens=5)
    async with BridgedCall(settings, rgb=None) as call:
        call.bridge.send_text("count to 60")
        reply = await call.reply_after(0)
        assert "sixty" not in reply and len(reply.split()) <= 8  # five tokens' worth, not the whole count
        done = await wait_until(
            lambda: [e for e in call.bridge.events.snapshot() if e.type == "response.done"], 10, "response.done"
        )
        response = done[-1].payload["response"]
        assert response["status"] == "incomplete"
        assert response["status_details"]["reason"] == "max_output_tokens"


async def test_idle_timeout_prompts_the_assistant_after_a_silent_pause(engine):
    settings = settings_for(
        engine, camera=CameraSettings(enabled=False), turn_detection=TurnDetection(idle_timeout_ms=1500)
    )
    async with BridgedCall(settings, rgb=None) as call:  # the fake browser's mic is silent
        call.bridge.send_text("hello")
        await call.reply_after(0)
        await wait_until(
            lambda: [e for e in call.bridge.events.snapshot() if e.type == "input_audio_buffer.timeout_triggered"],
            15,
            "timeout_triggered after the reply and 1.5 s of silence",
        )
        await call.reply_after(1, timeout=20)  # and the assistant speaks up
