"""The camera in the call bar: the user's self-view, drawn by the browser, and what the camera sends.

Until issue 15 the self-view was the camera echoed through the server: every frame (640x480, up to
15 a second) was VP8-decoded and re-encoded on the server just to be shown back, while the model needs
about one frame a second. Now streamlit-webrtc sends no video back (its component then plays only the
assistant's <audio>), the server only receives the camera into a video sink (`camera_sink`), and this
components-v2 element shows the picture in the page, mirrored, at the camera's full rate.

How the element sees the camera without a second capture: streamlit-webrtc's component is a same-origin
iframe, so the element wraps that iframe's ``navigator.mediaDevices.getUserMedia``. When the call
captures (Start, or a camera picked in the component's device menu), the wrapper keeps the captured
video track for the preview and hands the component the audio and a *clone* of the video track,
limited to ``SEND_FPS`` frames a second: that clone is what goes to the server. The preview follows
the clone, so it shows what is really sent: the clone disabled (the component's camera button) reads
"Camera off"; the clone stopped (Stop, a new device, the iframe gone) or ended stops the preview's
track too and hides the preview. Only the call's captures are wrapped: their audio and video
constraints carry `MARK` (added by `call_constraints`, removed before the browser sees it), which the
component's device dialog and its probes do not. A capture the browser refuses (`NotAllowedError`)
is rethrown as one that says what to allow (`MIC_DENIED`, `MIC_OR_CAMERA_DENIED`: the component shows
an error as "name: message", and the browser does not say which device was refused); other errors
pass through untouched. Without access
to the iframe the call works as before the element existed, only without a self-view. The same hook
installs `ui.leg_steady` in that iframe.

The pure parts (the constraints, the server-side frame meter and its log line) have unit tests; the
browser behaviour is tested in Chromium (tests/browser/test_self_view_browser.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import streamlit as st
from streamlit.logger import get_logger
from streamlit_webrtc import VideoSinkTrack, create_video_sink_track

from ui.leg_steady import STEADY_JS

if TYPE_CHECKING:
    import av

KEY = "self_view"
SEND_FPS = 5  # frames a second the camera sends to the server (the model gets about one a second)
MARK = "studioSelfView"  # in the call's video constraints: "this capture is the call's", see above
OFF_LABEL = "Camera off"
_METER = "self_view_camera_meter"  # session key: the CameraMeter of this session's calls
_log = get_logger(__name__)


# What the component says when the browser refuses the call's capture, as (name, message).
MIC_DENIED = ("Microphone blocked", "allow the microphone in the browser's site settings, then Start again.")
MIC_OR_CAMERA_DENIED = (
    "Microphone or camera blocked",
    "allow both in the browser's site settings (or turn the camera off in the sidebar), then Start again.",
)


def call_constraints(kind: Mapping[str, Any]) -> dict[str, Any]:
    """The call's audio or video constraints, marked for the self-view's wrapper (which takes the
    mark out); a call without a camera is marked by its audio."""
    return {**kind, MARK: True}


# -- what reaches the server ---------------------------------------------------------------------


@dataclass
class CameraMeter:
    """Counts the camera frames the server receives during one call, for a log line at its end.

    The callback from `counting` runs on streamlit-webrtc's loop for every frame: it must stay cheap
    (a clock read, an increment and two stores)."""

    frames: int = 0
    first_at: float | None = None
    last_at: float | None = None
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)

    def count(self, now: float) -> None:
        if self.first_at is None:
            self.first_at = now
        self.last_at = now
        self.frames += 1

    def counting(self, on_frame: Callable[[av.VideoFrame], object]) -> Callable[[av.VideoFrame], None]:
        """A sink callback that counts each frame, then hands it to ``on_frame``."""

        def frame(f: av.VideoFrame) -> None:
            self.count(self.clock())
            on_frame(f)

        return frame

    def rate(self) -> float | None:
        """Frames a second between the first and the last frame; None before two frames."""
        if self.first_at is None or self.last_at is None or self.frames < 2 or self.last_at <= self.first_at:
            return None
        return (self.frames - 1) / (self.last_at - self.first_at)

    def summary(self) -> str | None:
        """One line for the log ("camera: 150 frames reached the server in 30.0 s (5.0 frames/s, ...)"), or None."""
        rate = self.rate()
        if rate is None or self.first_at is None or self.last_at is None:
            return None
        return (
            f"camera: {self.frames} frames reached the server in {self.last_at - self.first_at:.1f} s "
            f"({rate:.1f} frames/s, the browser sends at most {SEND_FPS})"
        )

    def end(self) -> str | None:
        """The call's camera ended: its summary, and the count starts over for the next call."""
        line = self.summary()
        self.frames, self.first_at, self.last_at = 0, None, None
        return line


def camera_sink(on_frame: Callable[[av.VideoFrame], object], key: str) -> VideoSinkTrack:
    """The server's end of the camera: each frame goes to ``on_frame`` (the conversation, which only
    keeps the latest) and is counted; the count is logged when the browser's camera track ends.

    streamlit-webrtc caches the sink across reruns and takes the newest callbacks on each run; the
    meter lives in the session so a rerun does not restart the count."""
    meter = st.session_state.setdefault(_METER, CameraMeter())

    def ended() -> None:
        line = meter.end()
        if line is not None:
            _log.info(line)

    return create_video_sink_track(meter.counting(on_frame), key=key, on_ended=ended)


# -- the self-view element (trusted, inline: no separate front-end build) ---------------------------

_HTML = f"""<div class="self-view" data-state="none" role="img" aria-label="Your camera, as the assistant gets it"
  title="Your camera, as it is sent (mirrored). The assistant gets a frame now and then.">
  <video class="picture" muted playsinline autoplay></video>
  <div class="off">{OFF_LABEL}</div>
</div>"""

_CSS = """
.self-view {
  position: relative;
  width: 100%;
  aspect-ratio: 4 / 3;
  overflow: hidden;
  border-radius: var(--st-base-radius, 0.5rem);
  background: #0e1117;
}
.self-view[data-state="none"] { display: none; }
.self-view .picture {
  display: block;
  width: 100%;
  height: 100%;
  object-fit: contain;
  transform: scaleX(-1);
}
.self-view[data-state="off"] .picture { visibility: hidden; }
.self-view .off {
  position: absolute;
  inset: 0;
  display: none;
  align-items: center;
  justify-content: center;
  color: #fafafa;
  font-family: var(--st-font);
  font-size: var(--st-base-font-size, 1rem);
}
.self-view[data-state="off"] .off { display: flex; }
"""

# State shared by every mount of the element (module level: the wrappers outlive a remount), and one
# view per mounted element (a WeakMap, as in screen_share.py). The wrapper finds the shared state
# through the iframe's window at call time, so a window wrapped by an earlier copy of this module
# still reports to the current one.
_JS = f"""
{STEADY_JS}
const SEND_FPS = {SEND_FPS};
const MARK = {MARK!r};
const MIC_DENIED = {json.dumps(MIC_DENIED)};
const MIC_OR_CAMERA_DENIED = {json.dumps(MIC_OR_CAMERA_DENIED)};
const HUB = "__realtimeStudioSelfView";
const WRAPPED = "__realtimeStudioSelfViewWrapper";
const FRAME = 'iframe[title*="webrtc_streamer"]';
const TICK_MS = 1000;

const hub = {{captures: [], views: new Set(), frames: new WeakSet(), timer: null, observer: null}};
const views = new WeakMap();

function current() {{
  for (let i = hub.captures.length - 1; i >= 0; i--) {{
    const c = hub.captures[i];
    if (c.clones.some((t) => t.readyState === "live")) return c;
  }}
  return null;
}}

function draw(view) {{
  const c = current();
  const video = view.video;
  if (!c) {{
    view.box.dataset.state = "none";
    if (video.srcObject) video.srcObject = null;
    return;
  }}
  const on = c.clones.some((t) => t.readyState === "live" && t.enabled);
  view.box.dataset.state = on ? "live" : "off";
  if (video.srcObject !== c.preview) video.srcObject = c.preview;
  if (on && video.paused) video.play().catch(() => {{ /* muted: plays once the page may */ }});
  if (!on && !video.paused) video.pause();
}}

function drawAll() {{
  hub.views.forEach(draw);
}}

// The clone went away (Stop, another device, the iframe gone): its preview track goes too.
function retire(capture) {{
  const i = hub.captures.indexOf(capture);
  if (i < 0) return;
  hub.captures.splice(i, 1);
  capture.originals.forEach((t) => t.stop());
  drawAll();
}}

function descriptor(obj, name) {{
  for (let p = obj; p; p = Object.getPrototypeOf(p)) {{
    const d = Object.getOwnPropertyDescriptor(p, name);
    if (d) return d;
  }}
  return null;
}}

// streamlit-webrtc's camera button sets `enabled`, Stop calls `stop()`: neither fires an event.
function follow(capture, track) {{
  const enabled = descriptor(track, "enabled");
  if (enabled && enabled.get && enabled.set) {{
    Object.defineProperty(track, "enabled", {{
      configurable: true,
      enumerable: true,
      get() {{ return enabled.get.call(track); }},
      set(v) {{ enabled.set.call(track, v); drawAll(); }},
    }});
  }}
  const stop = track.stop;
  track.stop = function () {{ stop.call(track); retire(capture); }};
  track.addEventListener("ended", () => retire(capture));
}}

// The call's capture: the component gets the audio and clones of the video limited to SEND_FPS; the
// captured video stays here for the preview. Anything unexpected: the component gets the capture as is.
async function split(frame, win, stream) {{
  const originals = stream.getVideoTracks();
  if (originals.length === 0) return stream;
  let clones = [];
  try {{
    const preview = new MediaStream(originals);
    clones = originals.map((t) => t.clone());
    const sent = new win.MediaStream([...stream.getAudioTracks(), ...clones]);
    await Promise.all(clones.map((t) =>
      t.applyConstraints({{...t.getConstraints(), frameRate: {{max: SEND_FPS}}}})
        .catch((e) => console.warn("self-view: the camera is sent at its full rate", e))));
    const capture = {{frame, win, originals, clones, preview}};
    clones.forEach((t) => follow(capture, t));
    hub.captures.push(capture);
    drawAll();
    return sent;
  }} catch (e) {{
    console.warn("self-view: the camera is sent as captured, without a self-view", e);
    clones.forEach((t) => t.stop());
    return stream;
  }}
}}

function install(frame) {{
  let win, md;
  try {{
    win = frame.contentWindow;
    md = win && win.navigator && win.navigator.mediaDevices;
  }} catch (e) {{
    return;  // not same-origin: the component captures by itself, without a self-view
  }}
  if (win) steady(win);  // ui.leg_steady: a brief "disconnected" does not end the call
  if (!md || typeof md.getUserMedia !== "function") return;
  win[HUB] = hub;
  if (md.getUserMedia[WRAPPED]) return;
  const original = md.getUserMedia;
  const marked = (c) => !!c && typeof c === "object" && MARK in c;
  const unmarked = (c) => {{ const copy = {{...c}}; delete copy[MARK]; return copy; }};
  const wrapper = function (constraints) {{
    const video = constraints && constraints.video, audio = constraints && constraints.audio;
    if (!marked(video) && !marked(audio)) return original.call(md, constraints);
    const asked = {{...constraints}};
    if (marked(video)) asked.video = unmarked(video);
    if (marked(audio)) asked.audio = unmarked(audio);
    return original.call(md, asked).then(
      (stream) => (marked(video) && win[HUB] ? win[HUB].split(frame, win, stream) : stream),
      (err) => {{
        if (!err || (err.name !== "NotAllowedError" && err.name !== "SecurityError")) throw err;
        const [name, message] = video ? MIC_OR_CAMERA_DENIED : MIC_DENIED;
        const said = new Error(message);
        said.name = name;
        throw said;
      }});
  }};
  wrapper[WRAPPED] = true;
  md.getUserMedia = wrapper;
}}
hub.split = split;

// Wrap each component iframe as soon as it is seen and again whenever it loads a document.
function scan() {{
  for (const frame of document.querySelectorAll(FRAME)) {{
    if (!hub.frames.has(frame)) {{
      hub.frames.add(frame);
      frame.addEventListener("load", () => install(frame));
    }}
    install(frame);
  }}
}}

function tick() {{
  scan();
  for (const c of [...hub.captures]) {{
    if (!c.frame.isConnected || c.frame.contentWindow !== c.win || c.clones.every((t) => t.readyState === "ended")) {{
      retire(c);
    }}
  }}
  drawAll();
}}

function watch() {{
  if (hub.timer !== null) return;
  hub.timer = setInterval(tick, TICK_MS);
  hub.observer = new MutationObserver((records) => {{
    for (const r of records) {{
      for (const n of r.addedNodes) {{
        if (n.nodeType === 1 && (n.tagName === "IFRAME" || n.querySelector("iframe"))) {{ scan(); return; }}
      }}
    }}
  }});
  hub.observer.observe(document.body, {{childList: true, subtree: true}});
  scan();
}}

function unwatch() {{
  if (hub.views.size > 0 || hub.timer === null) return;
  clearInterval(hub.timer);
  hub.timer = null;
  hub.observer.disconnect();
  hub.observer = null;
}}

export default function (component) {{
  const root = component.parentElement;
  let view = views.get(root);
  if (!view) {{
    view = {{box: root.querySelector(".self-view"), video: root.querySelector("video.picture")}};
    views.set(root, view);
  }}
  hub.views.add(view);
  watch();
  draw(view);
  return () => {{
    hub.views.delete(view);
    views.delete(root);
    unwatch();
  }};
}}
"""

_component = st.components.v2.component("realtime_studio.self_view", html=_HTML, css=_CSS, js=_JS)


def render_self_view() -> None:
    """The self-view, in every run (before Start too: the wrapper must be in place when the user presses
    it). It shows nothing until the call captures the camera, and nothing at all with the camera off
    in settings (the call then asks for no video)."""
    _component(key=KEY)
