"""What the frame policy saves: images and image tokens per minute, ``interval`` vs ``turn`` (and ``manual``).

    .venv/bin/python bench/frame_policy.py [--minutes 3] [--interval 2] [--size 640x480] [--max-side 1024]

No bridge, no network: a scripted conversation is played at the sans-IO level, through the same
pieces and in the same order as the bridge's camera loop (``realtime.frame_policy.FramePolicy`` and
``realtime.frames.FrameThrottle``) with a fake clock:

- the camera offers a frame at 15 fps: a camera-like scene with a little sensor noise, and a new
  scene every 30 s (``--scene-every``). Two cameras: ``still`` (only that: the change detection
  already skips the noise, so both policies send about the same few frames, at different times) and
  ``moving`` (the same, plus someone in the picture, a 25% x 40% block, swaying 100 px every 6 s,
  as in a video call: the picture always changes enough, and ``interval`` sends one every N s);
- the user speaks for 3 s every 20 s, starting 5 s in (``Speech`` started / stopped); the assistant
  answers for the next 5 s; otherwise it is quiet. The assistant's reply does not drive the policy:
  only the user's speech does (a frame sent during the reply cannot change it);
- every 0.25 s (the bridge's ``CAMERA_TICK_S``), and at once after a nudge, the loop sets
  ``throttle.interval_s`` from the policy and asks ``throttle.due()``.

Each frame sent is encoded with ``encode_frame`` (``--max-side``), as the bridge does, and its image
tokens are counted from its encoded width and height by OpenAI's published rule for GPT-4o-class
vision input (the vision guide, "Calculating costs"; the Realtime docs publish no separate rule, so
this is an estimate of what the realtime models bill):

- ``detail: "low"``: 85 tokens, whatever the size;
- ``detail: "high"``: scale to fit in 2048 x 2048, then so the shortest side is 768 px (only down:
  smaller images are not scaled up); count the 512 px tiles; 85 + 170 per tile. A 640 x 480 frame
  is 2 tiles = 425 tokens, a 1024 x 576 one 4 tiles = 765;
- ``"auto"`` is billed as ``"high"``: "`auto` will default to `high`" (the pinned SDK's docstring of
  ``RealtimeConversationItemUserMessage.Content.detail``).

These are the tokens the images add to the conversation. Every response then reads the images still
in it (at most ``REALTIME_MAX_IMAGES``, 3 by default) as input again, so fewer, better-timed images
also cost less per answer; that depends on the number of responses and is not counted here.

"Question sees its scene": at each end of the user's speech (when the server VAD makes the response),
whether the newest image already in the conversation shows the scene that was on camera when the
user started asking.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from realtime.frame_policy import FrameMode, FramePolicy
from realtime.frames import FrameThrottle, encode_frame

FPS = 15
TICK_S = 0.25  # realtime.bridge.CAMERA_TICK_S
NOISE_VARIANTS = 6  # noisy copies per scene, cycled (fresh noise every frame would dominate the run time)


# --------------------------------------------------------------------------- token rule


def image_tokens(width: int, height: int, detail: str) -> int:
    """Image input tokens for one image of ``width`` x ``height`` at ``detail`` (see the module docstring)."""
    if detail == "low":
        return 85
    w, h = float(width), float(height)
    if max(w, h) > 2048:
        s = 2048 / max(w, h)
        w, h = w * s, h * s
    if min(w, h) > 768:
        s = 768 / min(w, h)
        w, h = w * s, h * s
    tiles = math.ceil(w / 512) * math.ceil(h / 512)
    return 85 + 170 * tiles


# --------------------------------------------------------------------------- the scripted conversation


def natural(w: int, h: int, seed: int) -> np.ndarray:
    """Smooth gradients and a few shapes: a camera-like scene (as in bench/frames_encode.py)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    phase = rng.uniform(0, 6.28)
    img = np.stack([255 * x / w, 255 * y / h, 128 + 100 * np.sin(x / 40 + phase) * np.cos(y / 30)], axis=2)
    for _ in range(8):
        cx, cy, r = rng.integers(0, w), rng.integers(0, h), rng.integers(h // 20, h // 5)
        img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.integers(0, 256, 3)
    return img


@dataclass(frozen=True)
class Script:
    seconds: float
    turn_every_s: float = 20.0
    first_turn_s: float = 5.0
    user_s: float = 3.0
    reply_s: float = 5.0
    scene_every_s: float = 30.0

    def scene_at(self, t: float) -> int:
        return int(t // self.scene_every_s)

    def speech(self) -> list[tuple[float, str]]:
        """(time, phase) of the user's Speech events."""
        events: list[tuple[float, str]] = []
        t = self.first_turn_s
        while t + self.user_s <= self.seconds:
            events += [(t, "started"), (t + self.user_s, "stopped")]
            t += self.turn_every_s
        return events


class Camera:
    def __init__(self, script: Script, size: tuple[int, int], moving: bool) -> None:
        w, h = size
        self.name = "moving" if moving else "still"
        self._moving = moving
        self._person = (int(w * 0.25), int(h * 0.4))
        self._size = size
        rng = np.random.default_rng(7)
        self._frames: dict[int, list[np.ndarray]] = {}
        for scene in range(script.scene_at(script.seconds) + 1):
            base = natural(w, h, seed=100 + scene)
            self._frames[scene] = [
                np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8) for _ in range(NOISE_VARIANTS)
            ]

    def frame(self, scene: int, i: int) -> np.ndarray:
        img = self._frames[scene][i % NOISE_VARIANTS]
        if not self._moving:
            return img
        (w, h), (pw, ph) = self._size, self._person
        x = int(w / 2 - pw / 2 + 100 * math.sin(2 * math.pi * i / (6 * FPS)))
        y = h - ph
        img = img.copy()
        img[y:h, max(0, x) : x + pw] = (200, 160, 140)
        return img


# --------------------------------------------------------------------------- one run


@dataclass
class Sent:
    at: float
    scene: int
    nudged: bool
    width: int
    height: int
    message_bytes: int


@dataclass
class Result:
    mode: FrameMode
    sent: list[Sent] = field(default_factory=list)
    questions: int = 0
    questions_seeing_their_scene: int = 0
    staleness_s: list[float] = field(default_factory=list)  # age of the newest image at each question
    cpu_s: float = 0.0


def play(mode: FrameMode, script: Script, camera: Camera, interval_s: float, max_side: int) -> Result:
    policy = FramePolicy(mode, interval_s)
    now = 0.0
    throttle = FrameThrottle(interval_s=policy.interval(False), clock=lambda: now)
    result = Result(mode)
    speech = script.speech()
    speaking = False
    scene = 0
    asked_scene = 0
    next_tick = 0.0
    next_report = 60.0
    t0 = time.process_time()

    def tick() -> None:
        throttle.interval_s = policy.interval(speaking)
        frame = throttle.due(now)
        if frame is None:
            return
        enc = encode_frame(frame, max_side=max_side)
        result.sent.append(Sent(now, scene, frame.nudged, enc.width, enc.height, enc.message_bytes))

    for i in range(int(script.seconds * FPS) + 1):
        now = i / FPS
        scene = script.scene_at(now)
        throttle.offer(camera.frame(scene, i))
        while speech and speech[0][0] <= now:
            _, phase = speech.pop(0)
            if phase == "stopped":  # the question is asked: what does the newest image show?
                result.questions += 1
                newest = result.sent[-1] if result.sent else None
                result.questions_seeing_their_scene += int(newest is not None and newest.scene == asked_scene)
                result.staleness_s.append(now - newest.at if newest else math.inf)
            else:
                asked_scene = scene
            speaking = phase == "started"
            if policy.on_speech("started" if speaking else "stopped"):
                throttle.nudge()
                tick()  # the bridge wakes its camera loop (a stop frame comes after the question was measured)
        if now >= next_tick:
            tick()
            next_tick += TICK_S
        if now >= next_report:
            print(f"  [{mode:8}] {now:5.0f}/{script.seconds:.0f} s  images sent {len(result.sent):3d}", flush=True)
            next_report += 60.0
    result.cpu_s = time.process_time() - t0
    return result


# --------------------------------------------------------------------------- report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--interval", type=float, default=2.0, help="the camera interval N (s)")
    ap.add_argument("--size", default="640x480", help="camera frame size, WxH")
    ap.add_argument("--max-side", type=int, default=1024)
    ap.add_argument("--scene-every", type=float, default=30.0)
    ap.add_argument("--turn-every", type=float, default=20.0)
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    script = Script(seconds=args.minutes * 60, turn_every_s=args.turn_every, scene_every_s=args.scene_every)
    quiet = FramePolicy("turn", args.interval).quiet_s
    print(
        f"scripted conversation: {args.minutes:g} min, camera {w}x{h} at {FPS} fps, new scene every "
        f"{script.scene_every_s:g} s; the user speaks {script.user_s:g} s every {script.turn_every_s:g} s, the "
        f"assistant answers {script.reply_s:g} s; interval N = {args.interval:g} s, turn's quiet interval {quiet:g} s"
    )
    for moving in (False, True):
        print(f"preparing the {'moving' if moving else 'still'} camera's frames ...", flush=True)
        camera = Camera(script, (w, h), moving)
        results = []
        for mode in ("interval", "turn", "manual"):
            print(f"playing the conversation with frame policy '{mode}' ...", flush=True)
            results.append(play(mode, script, camera, args.interval, args.max_side))
        report(camera.name, results, args.minutes)


def report(camera: str, results: list[Result], minutes: float) -> None:
    print(f"\ncamera: {camera}")
    header = (
        f"{'policy':8} | {'images/min':>10} | {'of them on speech':>17} | {'tokens/min high|auto':>20} | "
        f"{'tokens/min low':>14} | {'KiB/min sent':>12} | {'question sees its scene':>23} | "
        f"{'newest image age (median)':>25}"
    )
    print(header)
    print("-" * len(header))
    rows = {}
    for r in results:
        n = len(r.sent)
        high = sum(image_tokens(s.width, s.height, "high") for s in r.sent)
        low = 85 * n
        kib = sum(s.message_bytes for s in r.sent) / 1024
        rows[r.mode] = (n / minutes, high / minutes, low / minutes, kib / minutes)
        finite = [a for a in r.staleness_s if math.isfinite(a)]
        age = f"{statistics.median(finite):.1f} s" if finite else "no image"
        print(
            f"{r.mode:8} | {n / minutes:10.1f} | {sum(s.nudged for s in r.sent) / minutes:15.1f}/m | "
            f"{high / minutes:20.0f} | {low / minutes:14.0f} | {kib / minutes:12.0f} | "
            f"{r.questions_seeing_their_scene:>2} of {r.questions:<2}{'':17} | {age:>25}"
        )
    it, tu = rows["interval"], rows["turn"]
    print("-" * len(header))
    print(
        f"turn / interval: images {tu[0] / it[0]:.2f}, tokens {tu[1] / it[1]:.2f} (high|auto) "
        f"{tu[2] / it[2]:.2f} (low), bytes {tu[3] / it[3]:.2f}"
    )
    sizes = sorted({(s.width, s.height) for r in results for s in r.sent})
    rule = ", ".join(f"{sw}x{sh}: {image_tokens(sw, sh, 'high')} tokens (high), 85 (low)" for sw, sh in sizes)
    print(f"encoded sizes and token rule: {rule}")
    print(f"CPU of the simulation (s): {', '.join(f'{r.mode} {r.cpu_s:.1f}' for r in results)}")


if __name__ == "__main__":
    main()
