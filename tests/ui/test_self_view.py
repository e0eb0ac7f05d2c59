"""ui/self_view.py: the call's camera constraints, the server's camera sink and its frame meter, and
the element mounting. What the element does in a browser is tested in Chromium
(tests/browser/test_self_view_browser.py)."""

from __future__ import annotations

import asyncio
import json
from fractions import Fraction

import av
import pytest
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from streamlit.testing.v1 import AppTest
from streamlit_webrtc import VideoSinkTrack

from realtime.settings import CameraSettings, Settings
from ui.conversation import Conversation
from ui.self_view import _JS, MARK, SEND_FPS, CameraMeter, call_constraints
from ui.studio import VIDEO, _media_constraints


def test_the_calls_video_constraints_carry_the_mark_and_nothing_else_changes():
    marked = call_constraints(VIDEO)
    assert marked == {**VIDEO, MARK: True}
    assert MARK not in VIDEO  # the module constant is left alone


def test_the_browser_is_asked_for_a_marked_camera_only_when_the_camera_is_on():
    on = _media_constraints(Conversation(Settings()))
    assert on["video"] == {**VIDEO, MARK: True}
    assert json.loads(json.dumps(on)) == on  # it travels to the component as JSON
    off = _media_constraints(Conversation(Settings(camera=CameraSettings(enabled=False))))
    assert off["video"] is False  # no video, so no capture for the self-view either
    assert on["audio"] == off["audio"]


def test_the_preview_runs_at_the_capture_rate_and_the_server_gets_fewer_frames():
    capture = VIDEO["frameRate"]
    assert isinstance(capture, dict) and 1 <= SEND_FPS < capture["max"]


def test_the_element_script_uses_the_python_constants():
    assert f"const SEND_FPS = {SEND_FPS};" in _JS
    assert f"const MARK = {MARK!r};" in _JS


# -- the meter ---------------------------------------------------------------------------------


def test_a_new_meter_has_no_rate_and_no_line():
    meter = CameraMeter()
    assert meter.rate() is None and meter.summary() is None
    meter.count(10.0)
    assert meter.rate() is None and meter.summary() is None  # one frame is no rate


def test_the_rate_is_frames_between_the_first_and_the_last():
    meter = CameraMeter()
    for i in range(11):
        meter.count(100.0 + i * 0.2)  # 11 frames over 2 s: 5 a second
    assert meter.frames == 11
    assert meter.rate() == pytest.approx(5.0)
    assert meter.summary() == (
        f"camera: 11 frames reached the server in 2.0 s (5.0 frames/s, the browser sends at most {SEND_FPS})"
    )


def test_the_counting_callback_counts_on_the_meters_clock_then_hands_the_frame_on():
    times = iter([3.0, 3.5, 4.0])
    meter = CameraMeter(clock=lambda: next(times))
    handed: list[object] = []
    on_frame = meter.counting(handed.append)
    frames = [av.VideoFrame(16, 16, "yuv420p") for _ in range(3)]
    for f in frames:
        on_frame(f)
    assert handed == frames
    assert (meter.frames, meter.first_at, meter.last_at) == (3, 3.0, 4.0)
    assert meter.rate() == pytest.approx(2.0)


def test_frames_at_the_same_instant_give_no_rate():
    meter = CameraMeter()
    meter.count(5.0)
    meter.count(5.0)
    assert meter.rate() is None


def test_the_end_of_a_call_gives_its_line_and_starts_the_next_call_from_zero():
    meter = CameraMeter()
    meter.count(1.0)
    meter.count(2.0)
    line = meter.summary()
    assert line is not None and meter.end() == line
    assert meter == CameraMeter()
    assert meter.end() is None  # a call without camera frames logs nothing


# -- the server's camera sink (streamlit-webrtc's own VideoSinkTrack, fed by an aiortc track) -----


class _Camera(MediaStreamTrack):
    """The browser leg's camera track as aiortc hands it over: ``frames`` frames, then it ends."""

    kind = "video"

    def __init__(self, frames: int) -> None:
        super().__init__()
        self._left = frames
        self._pts = 0

    async def recv(self) -> av.VideoFrame:
        if self._left == 0:
            self.stop()
            raise MediaStreamError
        self._left -= 1
        await asyncio.sleep(0.01)
        frame = av.VideoFrame(64, 48, "yuv420p")
        frame.pts, frame.time_base = self._pts, Fraction(1, 90_000)
        self._pts += 18_000
        return frame


async def test_a_sink_counts_each_frame_it_hands_on_and_the_end_gives_the_count():
    received: list[av.VideoFrame] = []
    meter = CameraMeter()
    ends: list[str | None] = []
    sink = VideoSinkTrack(callback=meter.counting(received.append))
    sink._on_ended_callback = lambda: ends.append(meter.end())  # as create_video_sink_track(on_ended=...) does
    sink.addTrack(_Camera(frames=6))
    sink.start()
    for _ in range(500):
        if sink.readyState == "ended":
            break
        await asyncio.sleep(0.01)
    assert sink.readyState == "ended"
    assert len(received) == 6 and all(isinstance(f, av.VideoFrame) for f in received)
    (line,) = ends
    assert line is not None and line.startswith("camera: 6 frames reached the server in ")
    assert meter == CameraMeter()  # ready for the next call


# -- the element -------------------------------------------------------------------------------


def _element_script() -> None:
    from ui.self_view import render_self_view

    render_self_view()


def test_the_element_mounts_without_errors_and_draws_no_streamlit_widgets():
    at = AppTest.from_function(_element_script)
    at.run(timeout=30)
    assert not at.exception, [e.message for e in at.exception]
    assert not at.button and not at.markdown  # the browser draws the picture; nothing else is on the page
    at.run(timeout=30)
    assert not at.exception, [e.message for e in at.exception]
