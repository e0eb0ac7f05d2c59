"""Keep a call up through a brief "disconnected": the browser side of the call's peer connection.

streamlit-webrtc's component (0.79) stops the call as soon as its RTCPeerConnection's
``connectionState`` becomes "disconnected". That state is the transient one (the spec's "failed" is
the end): Chromium enters it when its connectivity checks to the server have gone unanswered for a
few seconds, and leaves it by itself once answers come again. A server that stalls that long (a
loaded machine, a long pause, a network hiccup on the way) therefore ended the user's call. With 4
Chromium tabs on these 2 cores, 1-3 tabs' calls ended in a 30 s run; in the run that recorded why,
both tabs had gone "disconnected" and the component hung up 0.5 s later, while the server still had
their calls. tests/browser/test_leg_steady_browser.py
stops the server for 9 s mid-call (Chromium said "disconnected" 5.6 s into it): the call ended
before, and now comes back and answers.

``STEADY_JS`` wraps ``RTCPeerConnection`` in the component's same-origin iframe (installed by the
self-view's hook, `ui.self_view`, which already reaches that iframe before Start): the component's
"connectionstatechange" listeners hear "disconnected" only once it has lasted ``GRACE_S``, and do not
hear the "connected" that ends a shorter one. "failed" and "closed" reach them at once.
"""

from __future__ import annotations

GRACE_S = 15.0

# Defines steady(win): call it with the component iframe's window, before the component builds its peer.
STEADY_JS = f"""
const STEADY = "__realtimeStudioSteadyPeer";
const GRACE_MS = {round(GRACE_S * 1000)};

function steady(win) {{
  const Original = win.RTCPeerConnection;
  if (!Original || Original[STEADY]) return;
  function Steady(...args) {{
    const pc = new Original(...args);
    const add = pc.addEventListener.bind(pc);
    pc.addEventListener = (type, listener, options) => {{
      if (type !== "connectionstatechange" || typeof listener !== "function") return add(type, listener, options);
      let waiting = null;
      return add(type, (event) => {{
        const state = pc.connectionState;
        if (state === "disconnected") {{
          if (waiting === null) {{
            waiting = win.setTimeout(() => {{
              waiting = null;
              if (pc.connectionState === "disconnected") listener.call(pc, event);
            }}, GRACE_MS);
          }}
          return;
        }}
        if (waiting !== null) {{
          win.clearTimeout(waiting);
          waiting = null;
          if (state === "connected") return;  // it came back: as far as the listener knows, it never left
        }}
        listener.call(pc, event);
      }}, options);
    }};
    return pc;
  }}
  Steady.prototype = Original.prototype;
  Object.setPrototypeOf(Steady, Original);
  Steady[STEADY] = true;
  win.RTCPeerConnection = Steady;
}}
"""
