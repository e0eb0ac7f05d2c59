"""Camera frame encoding cost: median encode time and resulting message sizes.

Run: .venv/bin/python bench/frames_encode.py [--repeats N]

Prints one row per (frame size, content, input kind, max_side): median and worst encode_frame time,
the number of JPEG encodes the size search took, the chosen size and quality, and the
size of the whole conversation.item.create message (must stay under 60 KiB). Also the
per-frame cost of FrameThrottle.offer (on the media loop) and .due (off it).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from realtime.frames import DEFAULT_BUDGET_BYTES, FrameThrottle, encode_frame


def noisy(w: int, h: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)


def natural(w: int, h: int) -> np.ndarray:
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([255 * x / w, 255 * y / h, 128 + 100 * np.sin(x / 40) * np.cos(y / 30)], axis=2)
    for _ in range(8):
        cx, cy, r = rng.integers(0, w), rng.integers(0, h), rng.integers(h // 20, h // 5)
        img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.integers(0, 256, 3)
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()

    print(f"budget {DEFAULT_BUDGET_BYTES} bytes per message; {args.repeats} runs each")
    header = (
        f"{'frame':>10} {'content':>8} {'input':>8} {'max_side':>8} {'median ms':>9} {'max ms':>7} "
        f"{'encodes':>7} {'out':>9} {'q':>3} {'msg bytes':>9}"
    )
    print(header)
    print("-" * len(header))
    for w, h in ((640, 480), (1920, 1080)):
        for name, make in (("natural", natural), ("noisy", noisy)):
            rgb = make(w, h)
            # The browser's camera frames arrive as yuv420p VideoFrames; tests often use arrays.
            yuv = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            for (kind, image), max_side in [(k, m) for k in (("yuv420p", yuv), ("ndarray", rgb)) for m in (512, 1024)]:
                times = []
                enc = None
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    enc = encode_frame(image, max_side=max_side)
                    times.append((time.perf_counter() - t0) * 1000)
                assert enc is not None and enc.message_bytes < DEFAULT_BUDGET_BYTES
                print(
                    f"{w}x{h:<5} {name:>8} {kind:>8} {max_side:>8} {statistics.median(times):>9.1f} {max(times):>7.1f} "
                    f"{enc.encodes:>7} {f'{enc.width}x{enc.height}':>9} {enc.quality:>3} {enc.message_bytes:>9}"
                )

    vf = av.VideoFrame.from_ndarray(natural(1920, 1080), format="rgb24").reformat(format="yuv420p")
    throttle = FrameThrottle(interval_s=0.0, change_threshold=0.0)
    t0 = time.perf_counter()
    for _ in range(1000):
        throttle.offer(vf)
    offer_us = (time.perf_counter() - t0) / 1000 * 1e6
    dues = []
    for _ in range(args.repeats):
        throttle.force()
        t0 = time.perf_counter()
        frame = throttle.due()
        dues.append((time.perf_counter() - t0) * 1000)
        assert frame is not None
    print(f"FrameThrottle.offer (1920x1080 yuv420p): {offer_us:.1f} us per frame")
    print(f"FrameThrottle.due   (1920x1080 yuv420p -> rgb + thumbnail): median {statistics.median(dues):.1f} ms")


if __name__ == "__main__":
    main()
