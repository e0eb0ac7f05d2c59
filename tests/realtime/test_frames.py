"""Camera frame selection, encoding under the data-channel budget, and the image window."""

from __future__ import annotations

import base64
import functools
import io
import json
import threading
import time

import av
import numpy as np
import pytest
from openai.types.realtime import RealtimeClientEvent
from PIL import Image
from pydantic import TypeAdapter

from realtime.frames import (
    DEFAULT_BUDGET_BYTES,
    EncodedImage,
    Frame,
    FrameThrottle,
    ImageWindow,
    encode_frame,
)

CLIENT_EVENT = TypeAdapter(RealtimeClientEvent)
DATA_CHANNEL_LIMIT = 65_536


def solid(rgb, w=640, h=480) -> np.ndarray:
    img = np.empty((h, w, 3), np.uint8)
    img[:, :] = rgb
    return img


def noisy(w, h, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@functools.lru_cache(maxsize=8)
def _natural(w, h, seed) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([255 * x / w, 255 * y / h, 128 + 100 * np.sin(x / 40) * np.cos(y / 30)], axis=2)
    for _ in range(6):
        cx, cy, r = rng.integers(0, w), rng.integers(0, h), rng.integers(h // 20, h // 5)
        img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.integers(0, 256, 3)
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def natural(w, h, seed=0) -> np.ndarray:
    """Smooth gradients, a few shapes and mild sensor noise: a camera-like frame (a fresh copy)."""
    return _natural(w, h, seed).copy()


def decode_data_url(event: dict) -> Image.Image:
    url = event["item"]["content"][0]["image_url"]
    prefix = "data:image/jpeg;base64,"
    assert url.startswith(prefix)
    img = Image.open(io.BytesIO(base64.b64decode(url[len(prefix) :])))
    img.load()
    return img


class FakeClock:
    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


# --------------------------------------------------------------------------- throttle


def test_first_frame_is_due_at_once_then_interval_holds():
    clock = FakeClock()
    th = FrameThrottle(interval_s=2.0, clock=clock)
    assert th.due() is None  # nothing offered yet
    th.offer(solid((255, 0, 0)))
    first = th.due()
    assert isinstance(first, Frame) and not first.forced
    assert first.to_rgb()[0, 0].tolist() == [255, 0, 0]
    # A very different frame arrives but the interval has not passed.
    th.offer(solid((0, 0, 255)))
    for dt in (0.1, 1.0, 1.99):
        clock.t = 100.0 + dt
        assert th.due() is None
    clock.t = 102.0
    second = th.due()
    assert second is not None and second.to_rgb()[0, 0].tolist() == [0, 0, 255]
    assert second.change is not None and second.change > 20
    assert th.stats().sent == 2


def test_unchanged_frames_are_skipped_and_counted_once_each():
    clock = FakeClock()
    th = FrameThrottle(interval_s=2.0, clock=clock)
    base = natural(640, 480, seed=1)
    th.offer(base)
    assert th.due() is not None
    rng = np.random.default_rng(5)
    for _ in range(5):
        clock.t += 2.5
        # Same scene with a little sensor noise: not worth sending.
        jitter = np.clip(base.astype(np.int16) + rng.integers(-3, 4, base.shape), 0, 255).astype(np.uint8)
        th.offer(jitter)
        assert th.due() is None
        assert th.due() is None  # asking again about the same frame does not recount
    stats = th.stats()
    assert stats.skipped_unchanged == 5 and th.skipped_unchanged == 5
    assert stats.sent == 1 and stats.offered == 6


def test_changed_frame_passes_after_interval_and_small_change_does_not():
    clock = FakeClock()
    th = FrameThrottle(interval_s=1.0, change_threshold=3.0, clock=clock)
    scene = solid((100, 100, 100))
    th.offer(scene)
    assert th.due() is not None
    # A small object appears in a corner: ~1% of the frame, below the threshold.
    small = scene.copy()
    small[:48, :64] = 255
    clock.t += 1.5
    th.offer(small)
    assert th.due() is None
    # Someone steps in front: a quarter of the frame changes a lot.
    big = scene.copy()
    big[:, :160] = 10
    th.offer(big)
    picked = th.due()
    assert picked is not None and picked.change is not None and picked.change >= 3.0
    assert picked.to_rgb()[0, 0].tolist() == [10, 10, 10]


def test_change_is_measured_against_last_sent_not_last_offered():
    """A slow drift made of many small steps still gets sent once it adds up."""
    clock = FakeClock()
    th = FrameThrottle(interval_s=0.5, change_threshold=5.0, clock=clock)
    th.offer(solid((100, 100, 100)))
    assert th.due() is not None
    sent_levels = []
    for level in range(102, 130, 2):
        clock.t += 1.0
        th.offer(solid((level, level, level)))
        f = th.due()
        if f is not None:
            sent_levels.append(level)
    assert sent_levels and sent_levels[0] == 106  # 3 small steps of 2 add up to >= 5


def test_force_ignores_interval_and_change_once():
    clock = FakeClock()
    th = FrameThrottle(interval_s=10.0, clock=clock)
    th.force()
    assert th.due() is None  # no frame yet: the force waits for one
    img = solid((0, 200, 0))
    th.offer(img)
    f = th.due()
    assert f is not None and f.forced
    th.offer(img)  # identical frame, well within the interval
    assert th.due() is None
    th.force()
    f2 = th.due()
    assert f2 is not None and f2.forced and f2.change is None
    assert th.due() is None  # force is one-shot
    assert th.stats().forced == 2


def test_offer_accepts_video_frames_and_is_cheap():
    clock = FakeClock()
    th = FrameThrottle(clock=clock)
    vf = av.VideoFrame.from_ndarray(natural(1920, 1080), format="rgb24").reformat(format="yuv420p")
    t0 = time.perf_counter()
    for _ in range(100):
        th.offer(vf)
    per_offer = (time.perf_counter() - t0) / 100
    assert per_offer < 0.001, f"offer() took {per_offer * 1e3:.2f} ms; it runs on the media loop"
    f = th.due()
    assert f is not None and (f.width, f.height) == (1920, 1080)
    with pytest.raises(TypeError, match=r"av\.VideoFrame or numpy"):
        th.offer(b"not a frame")  # type: ignore[arg-type]  # wrong type on purpose: checks the run-time error


def test_throttle_rejects_bad_settings():
    with pytest.raises(ValueError, match="interval_s"):
        FrameThrottle(interval_s=-1)
    with pytest.raises(ValueError, match="change_threshold"):
        FrameThrottle(change_threshold=float("nan"))


def test_nudge_ignores_the_interval_but_not_the_change():
    clock = FakeClock()
    th = FrameThrottle(interval_s=30.0, clock=clock)
    th.offer(solid((100, 100, 100)))
    assert th.due() is not None
    # Within the interval, a changed frame goes out at once when nudged ...
    clock.t += 1.0
    th.offer(solid((0, 0, 255)))
    assert th.due() is None
    th.nudge()
    assert th.nudge_pending
    f = th.due()
    assert f is not None and f.nudged and not f.forced and f.change is not None and f.change > 20
    assert f.to_rgb()[0, 0].tolist() == [0, 0, 255]
    assert not th.nudge_pending
    # ... but an unchanged one does not, and the nudge is spent all the same.
    clock.t += 1.0
    th.offer(solid((0, 0, 255)))
    th.nudge()
    assert th.due() is None and not th.nudge_pending
    th.offer(solid((255, 0, 0)))  # changed, but no nudge left and the interval holds
    assert th.due() is None
    stats = th.stats()
    assert (stats.sent, stats.nudged, stats.forced, stats.skipped_unchanged) == (2, 1, 0, 1)


def test_a_nudge_waits_for_a_frame_and_a_force_wins_over_it():
    clock = FakeClock()
    th = FrameThrottle(interval_s=30.0, clock=clock)
    th.nudge()
    assert th.due() is None and th.nudge_pending  # nothing to look at yet: kept
    img = solid((0, 200, 0))
    th.offer(img)
    first = th.due()
    assert first is not None and first.nudged and first.change is None  # the first frame is always new
    th.offer(img)
    th.nudge()
    th.force()
    f = th.due()
    assert f is not None and f.forced and not f.nudged  # force sends even the unchanged frame
    assert not th.nudge_pending and not th.force_pending
    assert th.stats().forced == 1 and th.stats().nudged == 1


def test_no_interval_means_no_automatic_frames():
    clock = FakeClock()
    th = FrameThrottle(interval_s=None, clock=clock)
    th.offer(solid((10, 10, 10)))
    assert th.due() is None  # not even the first frame
    clock.t += 1000
    th.offer(solid((250, 250, 250)))
    assert th.due() is None
    th.force()
    f = th.due()
    assert f is not None and f.forced
    th.offer(solid((10, 10, 10)))
    th.nudge()
    f = th.due()
    assert f is not None and f.nudged
    # switching back to an interval (a live settings change) restores automatic frames
    th.interval_s = 2.0
    clock.t += 2.0
    th.offer(solid((250, 250, 250)))
    assert th.due() is not None
    assert th.stats().sent == 3


# --------------------------------------------------------------------------- encoding


def check_encoded(enc: EncodedImage, max_side: int, detail: str, budget: int = DEFAULT_BUDGET_BYTES):
    wire = json.dumps(enc.item_event).encode()
    compact = json.dumps(enc.item_event, separators=(",", ":")).encode()
    assert len(wire) == enc.message_bytes
    assert len(compact) <= len(wire) < budget < DATA_CHANNEL_LIMIT
    CLIENT_EVENT.validate_python(enc.item_event)
    assert enc.item_event["type"] == "conversation.item.create"
    part = enc.item_event["item"]["content"][0]
    assert part["type"] == "input_image" and part["detail"] == detail
    img = decode_data_url(enc.item_event)
    assert img.format == "JPEG" and img.size == (enc.width, enc.height)
    assert max(img.size) <= max_side
    assert Image.open(io.BytesIO(enc.jpeg)).size == img.size
    thumb = Image.open(io.BytesIO(enc.thumbnail))
    assert thumb.format == "JPEG" and max(thumb.size) <= 160
    return img


@pytest.mark.parametrize("max_side", [512, 1024, 1600])
@pytest.mark.parametrize("detail", ["auto", "low", "high"])
def test_noisy_full_hd_fits_the_budget(max_side, detail):
    enc = encode_frame(noisy(1920, 1080), max_side=max_side, detail=detail)
    img = check_encoded(enc, max_side, detail)
    # Aspect ratio survives the shrinking.
    assert abs(img.size[0] / img.size[1] - 16 / 9) < 0.02
    assert enc.encodes <= 8


@pytest.mark.parametrize(
    "make,max_side",
    [
        (lambda: solid((0, 0, 255), 1920, 1080), 1024),
        (lambda: natural(640, 480), 1024),
        (lambda: natural(1920, 1080), 768),
    ],
)
def test_simple_images_keep_size_and_quality(make, max_side):
    enc = encode_frame(make(), max_side=max_side)
    img = check_encoded(enc, max_side, "auto")
    h, w = make().shape[:2]
    expect_long = min(max(w, h), max_side)
    assert max(img.size) == expect_long  # no needless shrinking
    assert enc.quality >= 35


def test_solid_colour_survives_encoding():
    enc = encode_frame(solid((0, 0, 255)))
    img = np.asarray(decode_data_url(enc.item_event).convert("RGB")).astype(int)
    r, g, b = img.reshape(-1, 3).mean(axis=0)
    assert b > 230 and r < 25 and g < 25
    assert enc.quality == 85 and enc.encodes == 1  # easy image: one encode


def test_quality_drops_before_size_does():
    """A detailed 640x480 frame keeps its size and trades quality to fit."""
    detailed = natural(640, 480, seed=3) ^ (noisy(640, 480, seed=4) // 8)
    enc = encode_frame(detailed)
    check_encoded(enc, 1024, "auto")
    assert (enc.width, enc.height) == (640, 480)
    assert 35 < enc.quality < 85
    # Near the best quality that fits: a few steps higher would overflow the budget.
    buf = io.BytesIO()
    Image.fromarray(detailed).save(buf, format="JPEG", quality=enc.quality + 7)
    overhead = enc.message_bytes - len(base64.b64encode(enc.jpeg))
    assert overhead + len(base64.b64encode(buf.getvalue())) >= DEFAULT_BUDGET_BYTES
    assert enc.encodes <= 6


def test_ids_and_previous_item_are_carried_and_budget_respected():
    enc = encode_frame(
        noisy(800, 600),
        budget_bytes=20_000,
        event_id="evt_cam_1",
        previous_item_id="item_prev",
        item_id="img_0001",
    )
    check_encoded(enc, 1024, "auto", budget=20_000)
    ev = enc.item_event
    assert ev["event_id"] == "evt_cam_1" and ev["previous_item_id"] == "item_prev"
    assert ev["item"]["id"] == "img_0001" and enc.item_id == "img_0001"


def test_accepts_video_frames_pil_gray_and_rgba():
    vf = av.VideoFrame.from_ndarray(natural(320, 240), format="rgb24").reformat(format="yuv420p")
    for src in (
        vf,
        Image.fromarray(natural(320, 240)),
        natural(320, 240)[:, :, 0],
        np.dstack([natural(320, 240), np.full((240, 320), 255, np.uint8)]),
    ):
        enc = encode_frame(src)
        check_encoded(enc, 1024, "auto")
        assert (enc.width, enc.height) == (320, 240)


def test_encode_frame_takes_a_throttle_frame():
    th = FrameThrottle(clock=FakeClock())
    th.offer(natural(640, 480))
    picked = th.due()
    assert picked is not None
    enc = encode_frame(picked, max_side=320)
    check_encoded(enc, 320, "auto")
    assert (enc.width, enc.height) == (320, 240)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"detail": "ultra"}, "detail must be one of"),
        ({"max_side": 4}, "max_side"),
        ({"budget_bytes": 100}, "budget_bytes"),
    ],
)
def test_bad_arguments_are_refused_clearly(kwargs, message):
    with pytest.raises(ValueError, match=message):
        encode_frame(solid((1, 2, 3)), **kwargs)


def test_bad_images_are_refused_clearly():
    with pytest.raises(ValueError, match="uint8"):
        encode_frame(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        encode_frame(np.zeros((10, 10, 2), np.uint8))
    with pytest.raises(TypeError, match=r"expected av\.VideoFrame"):
        encode_frame("picture.jpg")  # type: ignore[arg-type]  # wrong type on purpose: checks the run-time error


# --------------------------------------------------------------------------- window


def test_image_window_deletes_the_oldest_beyond_k():
    win = ImageWindow(max_images=3)
    assert [win.added(f"img{i}") for i in range(3)] == [[], [], []]
    assert win.added("img3") == ["img0"]
    assert win.added("img4") == ["img1"]
    assert win.ids == ("img2", "img3", "img4")
    assert win.added("img4") == []  # the same item twice is not a new image
    assert win.removed("img3") and not win.removed("img3")
    assert win.added("img5") == []  # room was freed by the removal
    assert win.added("img6") == ["img2"]
    assert len(win) == 3


def test_image_window_k_of_one_and_bad_input():
    win = ImageWindow(max_images=1)
    assert win.added("a") == []
    assert win.added("b") == ["a"]
    with pytest.raises(ValueError, match="max_images"):
        ImageWindow(max_images=0)
    with pytest.raises(ValueError, match="item_id"):
        win.added("")


@pytest.mark.parametrize("content", ["noisy", "blue"])
def test_camera_video_frames_encode_straight_from_yuv(content):
    """Browser camera frames are yuv420p VideoFrames: scaled by swscale, still under budget."""
    rgb = noisy(1920, 1080) if content == "noisy" else solid((0, 0, 255), 1920, 1080)
    vf = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    th = FrameThrottle(clock=FakeClock())
    th.offer(vf)
    picked = th.due()
    assert picked is not None
    assert isinstance(picked.source, av.VideoFrame) and (picked.width, picked.height) == (1920, 1080)
    enc = encode_frame(picked, max_side=1024, detail="low")
    img = check_encoded(enc, 1024, "low")
    if content == "blue":
        assert img.size == (1024, 576) and enc.quality == 85
        r, g, b = np.asarray(img.convert("RGB")).reshape(-1, 3).mean(axis=0)
        assert b > 220 and r < 30 and g < 30
    else:
        assert abs(img.size[0] / img.size[1] - 16 / 9) < 0.02


def test_force_pending_is_visible_until_honoured():
    th = FrameThrottle(clock=FakeClock())
    assert not th.force_pending
    th.force()
    assert th.force_pending and th.due() is None  # still waiting for a frame
    th.offer(solid((9, 9, 9)))
    assert th.due().forced and not th.force_pending


def test_offer_and_due_on_different_threads():
    """The media loop offers while a worker asks: picks stay in order, counts add up."""
    clock = FakeClock()
    th = FrameThrottle(interval_s=1.0, change_threshold=3.0, clock=clock)
    frames = [
        av.VideoFrame.from_ndarray(solid((v, v, v), 320, 240), format="rgb24").reformat(format="yuv420p")
        for v in range(0, 250, 10)
    ]
    stop = threading.Event()

    def media_loop():
        i = 0
        while not stop.is_set():  # ~15-fps-like cadence, sped up
            th.offer(frames[min(i // 5, len(frames) - 1)])
            i += 1
            time.sleep(0.002)

    producer = threading.Thread(target=media_loop)
    producer.start()
    picked: list[int] = []
    try:
        deadline = time.monotonic() + 5
        while len(picked) < 8 and time.monotonic() < deadline:
            clock.t += 0.25
            time.sleep(0.005)
            f = th.due()
            if f is not None:
                picked.append(int(f.to_rgb()[0, 0, 0]))
    finally:
        stop.set()
        producer.join(5)
    assert len(picked) >= 8, picked
    assert picked == sorted(picked) and len(set(picked)) == len(picked)
    stats = th.stats()
    assert stats.sent == len(picked) and stats.offered > stats.sent
