"""Share screen: a small components-v2 control in the call bar that captures the user's screen
(`getDisplayMedia`) in the browser and makes it the conversation's image source while it is shared.

streamlit-webrtc carries only the camera, so the browser looks at the shared screen about once a second
and, when the picture changed (or every 20 s to say it is still shared), posts it as a JPEG to
``/studio/screen/<token>`` beside the app (``api.screen_intake``), which hands it to
`Conversation.on_screen_frame`; the bridge's throttle, change detection and encoding do the rest.
Frames never rerun the page: only starting and stopping a share do (the component's ``status`` state),
and a refusal by the browser comes back the same way with its reason. Stopping (the button, or the
browser's own "Stop sharing") goes back to the camera.

Nothing happens until the user presses the button: no permission prompt on page load. The pure parts
(reading the state, the refusal's message) are plain functions with unit tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import streamlit as st

if TYPE_CHECKING:
    from ui.conversation import Conversation

KEY = "screen_share"
_TOKEN = "screen_share_token"  # session key: (id of the conversation, its frame token)
INTERVAL_MS = 1000  # a look a second; a frame goes only when the picture changed (the bridge's throttle keeps it)
KEEPALIVE_MS = 20_000  # an unchanged screen is sent again this often: the bridge drops a silent share after 60 s
MAX_SIDE = 1280  # the browser scales the longest side down to this
JPEG_QUALITY = 0.8
SHARE_LABEL = "Share screen"
STOP_LABEL = "Stop sharing"


@dataclass(frozen=True)
class ShareStatus:
    """The component's state: sharing or not, and the name of the browser's error when it refused."""

    sharing: bool = False
    error: str | None = None


def parse_status(value: object) -> ShareStatus:
    """The component's ``status`` state (JSON from the browser) as a ShareStatus; junk reads as idle."""
    if not isinstance(value, dict):
        return ShareStatus()
    error = value.get("error")
    return ShareStatus(
        sharing=value.get("sharing") is True,
        error=error[:80] if isinstance(error, str) and error else None,
    )


_REFUSALS = {
    "NotAllowedError": "Screen sharing was not allowed.",
    "SecurityError": "Screen sharing was not allowed.",
    "Unsupported": "This browser cannot share a screen.",
    "NotFoundError": "There is no screen or window to share.",
    "NotReadableError": "The screen could not be captured.",
    "AbortError": "Screen sharing stopped before it began.",
    "NoFrame": "The shared screen gave no picture.",
    "Expired": "The page lost track of this call's screen share: reload the page.",
}


def refusal_message(error: str) -> str:
    """A clear sentence for the error the browser gave instead of a screen. The camera stays the source."""
    text = _REFUSALS.get(error, f"Screen sharing failed ({error}).")
    return f"{text} The camera stays the image source."  # short: it is shown in a third of the call bar


# -- the component (trusted, inline: no separate front-end build) ------------------------------------

_HTML = f'<button type="button" class="share" data-state="idle">{SHARE_LABEL}</button>'

_CSS = """
.share {
  width: 100%;
  min-height: 2.5rem;
  padding: 0.25rem 0.75rem;
  font: inherit;
  font-family: var(--st-font);
  font-size: var(--st-base-font-size, 1rem);
  color: var(--st-text-color);
  background: var(--st-background-color);
  border: 1px solid var(--st-border-color, rgba(49, 51, 63, 0.2));
  border-radius: var(--st-button-radius, 0.5rem);
  cursor: pointer;
}
.share:hover { border-color: var(--st-primary-color); color: var(--st-primary-color); }
.share:disabled { opacity: 0.6; cursor: progress; }
.share[data-state="sharing"] {
  background: var(--st-primary-color);
  border-color: var(--st-primary-color);
  color: white;
}
"""

# The default export runs again whenever the element's props change, and the cleanup it returns
# runs only when the element goes away: so one session per mounted element, kept in a WeakMap, and
# every run just hands it the newest setters.
_JS = f"""
const sessions = new WeakMap();
const INTERVAL_MS = {INTERVAL_MS};
const KEEPALIVE_MS = {KEEPALIVE_MS};
const MAX_SIDE = {MAX_SIDE};
const QUALITY = {JPEG_QUALITY};
const SHARE = {SHARE_LABEL!r};
const STOP = {STOP_LABEL!r};

function session(root) {{
  let s = sessions.get(root);
  if (s) return s;
  s = {{api: null, url: null, stream: null, video: null, canvas: null, timer: null, starting: false, posting: false}};
  sessions.set(root, s);
  return s;
}}

function draw(s) {{
  const button = s.button;
  if (!button) return;
  const sharing = s.stream !== null;
  button.textContent = sharing ? STOP : SHARE;
  button.dataset.state = sharing ? "sharing" : "idle";
  button.disabled = s.starting;
  button.title = sharing
    ? "Stop sharing: the camera is the image source again."
    : "Show the assistant your screen instead of the camera while it is shared.";
}}

function grab(s) {{
  const v = s.video;
  if (!v || !v.videoWidth || !v.videoHeight || s.posting || !s.url) return;
  const scale = Math.min(1, MAX_SIDE / Math.max(v.videoWidth, v.videoHeight));
  const w = Math.max(1, Math.round(v.videoWidth * scale));
  const h = Math.max(1, Math.round(v.videoHeight * scale));
  const c = s.canvas || (s.canvas = document.createElement("canvas"));
  if (c.width !== w || c.height !== h) {{ c.width = w; c.height = h; }}
  c.getContext("2d").drawImage(v, 0, 0, w, h);
  // Send a frame only when the picture changed (a 32x18 thumbnail, mean difference over 2 of 255),
  // or to keep the share alive.
  const t = s.thumb || (s.thumb = document.createElement("canvas"));
  t.width = 32; t.height = 18;
  const tc = t.getContext("2d", {{willReadFrequently: true}});
  tc.drawImage(c, 0, 0, 32, 18);
  const px = tc.getImageData(0, 0, 32, 18).data;
  let diff = s.lastThumb ? 0 : Infinity;
  if (s.lastThumb) {{
    const last = s.lastThumb;
    for (let i = 0; i < px.length; i += 4) {{
      diff += Math.abs(px[i] - last[i]) + Math.abs(px[i + 1] - last[i + 1]) + Math.abs(px[i + 2] - last[i + 2]);
    }}
    diff /= (px.length / 4) * 3;
  }}
  const now = Date.now();
  if (diff < 2 && now - (s.lastSent || 0) < KEEPALIVE_MS) return;
  s.lastThumb = px;
  s.lastSent = now;
  s.posting = true;
  const url = s.url;
  c.toBlob((blob) => {{
    if (!blob) {{ s.posting = false; return; }}
    fetch(url, {{method: "POST", body: blob, headers: {{"Content-Type": "image/jpeg"}}}})
      .then((r) => {{ if (r.status === 404 && s.stream) stop(s, true, "Expired"); }})
      .catch(() => {{ /* the next look tries again */ }})
      .finally(() => {{ s.posting = false; }});
  }}, "image/jpeg", QUALITY);
}}

function stop(s, tell, error) {{
  if (s.timer !== null) {{ clearInterval(s.timer); s.timer = null; }}
  s.lastThumb = null;
  const stream = s.stream;
  s.stream = null;
  if (stream) stream.getTracks().forEach((t) => t.stop());
  if (s.video) {{ s.video.srcObject = null; s.video = null; }}
  if (tell && s.api) s.api.setStateValue("status", {{sharing: false, error: error || null}});
  draw(s);
}}

async function start(s) {{
  const md = navigator.mediaDevices;
  if (!md || typeof md.getDisplayMedia !== "function") {{
    s.api.setStateValue("status", {{sharing: false, error: "Unsupported"}});
    return;
  }}
  s.starting = true;
  draw(s);
  let stream;
  try {{
    stream = await md.getDisplayMedia({{video: true, audio: false}});
  }} catch (e) {{
    s.starting = false;
    draw(s);
    s.api.setStateValue("status", {{sharing: false, error: (e && e.name) || "Error"}});
    return;
  }}
  s.starting = false;
  const track = stream.getVideoTracks()[0];
  if (!track) {{
    stream.getTracks().forEach((t) => t.stop());
    draw(s);
    s.api.setStateValue("status", {{sharing: false, error: "NoFrame"}});
    return;
  }}
  s.stream = stream;
  // the browser's own "Stop sharing" ends the track
  track.addEventListener("ended", () => {{ if (s.stream === stream) stop(s, true); }});
  const video = document.createElement("video");
  video.muted = true;
  video.playsInline = true;
  video.srcObject = stream;
  s.video = video;
  try {{ await video.play(); }} catch (e) {{ /* frames still arrive once it can play */ }}
  s.api.setStateValue("status", {{sharing: true, error: null}});
  draw(s);
  s.timer = setInterval(() => grab(s), INTERVAL_MS);
}}

export default function (component) {{
  const root = component.parentElement;
  const s = session(root);
  s.api = component;
  s.url = (component.data && component.data.url) || null;
  const button = root.querySelector("button.share");
  if (button && button !== s.button) {{
    s.button = button;
    button.addEventListener("click", () => {{
      if (s.starting) return;
      if (s.stream) stop(s, true);
      else start(s);
    }});
  }}
  draw(s);
  return () => {{ stop(s, false); sessions.delete(root); }};
}}
"""

_component = st.components.v2.component("realtime_studio.screen_share", html=_HTML, css=_CSS, js=_JS)


def _changed() -> None:
    """on_status_change must be given for the state to reach Python; the run reads it."""


def _frame_url(conv: Conversation) -> str:
    """Where this tab's page posts its screen: a token naming this conversation, made once per session."""
    from api.screen_intake import ROUTE, screen_targets

    held = st.session_state.get(_TOKEN)
    if not (isinstance(held, tuple) and held[0] == id(conv) and screen_targets().get(held[1]) is conv):
        held = (id(conv), screen_targets().register(conv))
        st.session_state[_TOKEN] = held
    return ROUTE.format(token=held[1])


def render_screen_share(conv: Conversation) -> None:
    """Share screen / Stop sharing while a call is live (a disabled button otherwise)."""
    if conv.bridge is None:
        st.button(
            SHARE_LABEL,
            key="share_screen_idle",
            icon=":material/screen_share:",
            disabled=True,
            width="stretch",
            help="Show the assistant your screen instead of the camera (during a call).",
        )
        return
    with st.container(key="screen-share"):
        result = _component(key=KEY, data={"url": _frame_url(conv)}, on_status_change=_changed)
        apply(conv, parse_status(result.get("status")))


def apply(conv: Conversation, status: ShareStatus) -> str | None:
    """What a run does with the component's state: a stopped share returns to the camera, a refusal is
    shown. Returns the warning it showed, if any."""
    if not status.sharing:
        conv.stop_screen_share()
    if status.error is not None:
        message = refusal_message(status.error)
        st.warning(message, icon=":material/desktop_access_disabled:")
        return message
    return None
