"""The tabs' screen-share intake: a frame posted with a tab's token reaches that tab's conversation."""

from __future__ import annotations

import gc
import io

import httpx2 as httpx
import numpy as np
from PIL import Image
from starlette.applications import Starlette

from api.screen_intake import MAX_SCREEN_FRAME_BYTES, screen_route, screen_targets


class Target:
    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []

    def on_screen_frame(self, frame: np.ndarray) -> None:
        self.frames.append(frame)


def jpeg(size=(320, 180), rgb=(20, 180, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, rgb).save(buf, format="JPEG")
    return buf.getvalue()


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=Starlette(routes=[screen_route()])), base_url="http://x")


async def test_a_frame_reaches_its_conversation():
    target = Target()
    token = screen_targets().register(target)
    async with client() as c:
        r = await c.post(f"/studio/screen/{token}", content=jpeg(), headers={"Content-Type": "image/jpeg"})
    assert r.status_code == 204
    (frame,) = target.frames
    assert frame.shape == (180, 320, 3) and frame.dtype == np.uint8
    assert abs(int(frame[90, 160, 1]) - 180) < 8  # the green it was


async def test_bad_frames_and_unknown_tokens_are_refused_with_a_reason():
    target = Target()
    token = screen_targets().register(target)
    async with client() as c:
        unknown = await c.post("/studio/screen/not-a-token", content=jpeg())
        text = await c.post(f"/studio/screen/{token}", content=b"plain text")
        huge = await c.post(f"/studio/screen/{token}", content=b"\xff" * (MAX_SCREEN_FRAME_BYTES + 1))
    assert unknown.status_code == 404 and "reload the page" in unknown.json()["error"]
    assert text.status_code == 400 and "not a readable JPEG or PNG" in text.json()["error"]
    assert huge.status_code == 413
    assert target.frames == []


async def test_a_token_does_not_outlive_its_conversation():
    target = Target()
    token = screen_targets().register(target)
    del target
    gc.collect()
    async with client() as c:
        r = await c.post(f"/studio/screen/{token}", content=jpeg())
    assert r.status_code == 404
