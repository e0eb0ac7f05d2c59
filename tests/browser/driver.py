"""What a user does on the page, as Playwright steps (sync API), plus in-page audio measurement."""

from __future__ import annotations

import re
import time
from collections import Counter, deque

from playwright.sync_api import ConsoleMessage, Frame, Page, WebSocket, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.browser.harness import SCREENSHOTS
from ui.format import STREAMING_MARK
from ui.status import OVERLOADED

# The call is up: "Connected", or, while the machine cannot keep up, the badge that says so instead.
CALL_UP = re.compile(f"Connected|{re.escape(OVERLOADED)}")
START = "Start conversation"
STOP = "Stop (hang up)"
LONG = 60_000  # ms: the first call also starts the local engine


# id(page) -> what its console said, where it navigated, its websockets opening and closing: for report_page
_NOTES: dict[int, deque[str]] = {}


def _watch(page: Page) -> None:
    if id(page) in _NOTES:
        return
    notes: deque[str] = deque(maxlen=500)
    _NOTES[id(page)] = notes

    def console(m: ConsoleMessage) -> None:
        if m.type in ("error", "warning"):
            notes.append(f"console {m.type}: {m.text[:200]}")

    def navigated(f: Frame) -> None:
        if f == page.main_frame:
            notes.append(f"{time.strftime('%H:%M:%S')} navigated: {f.url}")

    def error(e: Exception) -> None:
        notes.append(f"pageerror: {str(e)[:300]}")

    def closed(_p: Page) -> None:
        _NOTES.pop(id(page), None)

    def socket(ws: WebSocket) -> None:
        path = ws.url.split("//", 1)[-1].split("/", 1)[-1][:40]
        notes.append(f"{time.strftime('%H:%M:%S')} socket opened: {path}")
        ws.on("close", lambda _ws: notes.append(f"{time.strftime('%H:%M:%S')} socket closed: {path}"))

    page.on("websocket", socket)
    page.on("console", console)
    page.on("pageerror", error)
    page.on("framenavigated", navigated)
    page.on("close", closed)


def open_app(page: Page, url: str, path: str = "/") -> None:
    _watch(page)
    page.goto(url + path)
    expect(page.get_by_text("Realtime Studio").first).to_be_visible(timeout=LONG)
    wait_loaded(page)


# True once the app's script has been idle for `quiet_ms` in a row (polled; the attribute is Streamlit's own).
_IDLE_FOR = """(quiet_ms) => {
  const state = document.querySelector("[data-testid='stApp']")?.getAttribute("data-test-script-state");
  const now = performance.now();
  if (state !== "notRunning") { window.__idleSince = null; return false; }
  window.__idleSince ??= now;
  return now - window.__idleSince >= quiet_ms;
}"""


def wait_loaded(page: Page, quiet_ms: int = 500) -> None:
    """Until the page has finished loading as a user sees it: the call component has mounted and the
    app is idle.

    streamlit-webrtc's component resets its value when it mounts, a full rerun about half a second
    after the page shows. A click before that rerun can be undone by it (the rerun carries the page's
    old widget values and page): a preset loaded reverts, a page change is lost."""
    page.wait_for_function(_IDLE_FOR, arg=quiet_ms, polling=100, timeout=LONG)  # the first run drew the page
    iframe = page.locator("iframe[title*='webrtc_streamer']")
    if iframe.count():
        expect(iframe.first.content_frame.locator("#root > *").first).to_be_attached(timeout=LONG)  # it mounted
    page.wait_for_function(_IDLE_FOR, arg=quiet_ms, polling=100, timeout=LONG)


def _page_shown(page: Page, name: str):
    """What only page `name` draws: its title, or the Conversation page's chat box."""
    if name == "Conversation":
        return page.get_by_test_id("stChatInputTextArea")
    return page.get_by_role("heading", name=name, exact=True)


def go_to(page: Page, name: str) -> None:
    """Open the app page `name` from the sidebar, as a user does, and wait until it is drawn.

    Streamlit loses a page change when a full rerun from the page being left (a component's first
    value) reaches the server right behind it: the rerun names the old page and wins (about 1 load in
    10 when the click comes before the call component has mounted). A fragment rerun from that page no
    longer does (`ui.stale_reruns`). The address bar
    may show the new page all the same, so this waits for what the page itself draws. A user whose
    click was lost clicks again; so does this, once."""
    link = page.get_by_test_id("stSidebarNav").get_by_role("link", name=name, exact=True)
    href = link.get_attribute("href")
    assert href, f"no page link {name!r} in the sidebar"
    for attempt in range(2):
        try:
            timeout = 10_000 if attempt == 0 else LONG
            link.click(timeout=timeout)
            page.wait_for_url(re.compile(re.escape(href) + r"(\?.*)?$"), timeout=timeout)
            expect(_page_shown(page, name).first).to_be_visible(timeout=timeout)
            return
        except (PlaywrightTimeoutError, AssertionError):
            if attempt:
                report_page(page, f"the page {name!r} did not show")
                raise


def component_frame(page: Page) -> Frame:
    """The streamlit-webrtc component's iframe (its buttons and media elements live there)."""
    iframe = page.locator("iframe[title*='webrtc_streamer']")
    expect(iframe).to_be_attached(timeout=LONG)
    frame = iframe.element_handle().content_frame()
    assert frame is not None, "the WebRTC component has no document"
    frame.wait_for_load_state()
    return frame


def status(page: Page):
    return page.locator(".st-key-status")


def start_call(page: Page) -> float:
    """Press Start and wait until the call is connected. Returns the seconds that took."""
    began = time.monotonic()
    component_frame(page).get_by_role("button", name=START).click()
    expect(status(page)).to_contain_text(CALL_UP, timeout=LONG)
    return time.monotonic() - began


def stop_call(page: Page) -> None:
    component_frame(page).get_by_role("button", name=STOP).click()
    expect(component_frame(page).get_by_role("button", name=START)).to_be_visible(timeout=LONG)


def items(page: Page, role: str):
    """Transcript bubbles of one role: user, assistant, tool, error."""
    return page.locator(f"[class*='st-key-item-{role}-']")


def type_message(page: Page, text: str) -> None:
    box = page.get_by_test_id("stChatInputTextArea")
    expect(box).to_be_enabled(timeout=LONG)
    box.fill(text)
    box.press("Enter")


def wait_assistant_text(page: Page, pattern: str, timeout: float = LONG):
    """The last assistant bubble whose text matches `pattern` (regex, case-insensitive)."""
    loc = items(page, "assistant").filter(has_text=re.compile(pattern, re.I)).last
    try:
        expect(loc).to_be_visible(timeout=timeout)
    except AssertionError:
        report_page(page, f"no reply matching {pattern!r}")
        raise
    return loc


# What the page was doing when a wait failed: Streamlit's script state and how many elements it
# shows as stale (left from a run that has not finished), to tell a page that stopped updating
# from a reply that never came.
_PAGE_STATE = """() => ({
  script: document.querySelector("[data-testid='stApp']")?.getAttribute("data-test-script-state"),
  stale: document.querySelectorAll("[data-stale='true']").length,
  assistant: [...document.querySelectorAll("[class*='st-key-item-assistant-']")].slice(-2).map(e => e.innerText),
  url: location.pathname,
  nav: [...document.querySelectorAll("[data-testid='stSidebarNav'] a")].map(a => a.innerText),
  sidebar: document.querySelector("[data-testid='stSidebar']")?.getAttribute("aria-expanded"),
  body: document.body ? document.body.innerHTML.length + " chars: " + document.body.innerText.slice(0, 120) : null,
})"""


def report_page(page: Page, what: str) -> None:
    """Print the page's state and keep a screenshot of it (a failed test's evidence, in CI's log)."""
    name = f"failed-{time.strftime('%H%M%S')}"
    try:
        state = page.evaluate(_PAGE_STATE)
        screenshot(page, name)
    except Exception as exc:  # the page may be gone: the failure itself is what matters
        state = f"unreadable ({type(exc).__name__})"
    said = dict(Counter(_NOTES.get(id(page), ())))
    print(f"PAGE when {what}: {state}; screenshot {name}.png; notes (times said): {said}")


def wait_replies_finished(page: Page, timeout: float = LONG) -> None:
    """Until no assistant bubble is still streaming (its text ends with the streaming mark): a test that
    reads a reply's words must not read them half-way."""
    streaming = items(page, "assistant").filter(has_text=re.compile(re.escape(STREAMING_MARK.strip()) + r"\s*$"))
    expect(streaming).to_have_count(0, timeout=timeout)


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


# Installed into the component iframe: the stream the page is playing (the component's unmuted
# <video>/<audio>, captured with captureStream so we measure what the element outputs) into an
# AnalyserNode, recording the peak RMS (0..1) every 50 ms. The analyser is pulled through a zero
# gain into the destination so Chromium keeps processing the graph in headless mode.
_LEVEL_METER = """
async () => {
  if (window.__meter) return true;
  const ctx = new AudioContext();
  await ctx.resume();
  const m = window.__meter = {peak: 0, samples: 0, elements: 0, ctx, reset() { this.peak = 0; }};
  const seen = new WeakSet();
  const watch = () => {
    for (const el of document.querySelectorAll('audio, video')) {
      if (seen.has(el) || el.muted || !el.srcObject || el.srcObject.getAudioTracks().length === 0) continue;
      seen.add(el); m.elements++;
      const src = ctx.createMediaStreamSource(el.captureStream());
      const an = ctx.createAnalyser(); an.fftSize = 2048;
      const zero = ctx.createGain(); zero.gain.value = 0;
      src.connect(an); an.connect(zero); zero.connect(ctx.destination);
      const buf = new Float32Array(an.fftSize);
      setInterval(() => {
        an.getFloatTimeDomainData(buf);
        let sum = 0; for (const v of buf) sum += v * v;
        const rms = Math.sqrt(sum / buf.length);
        m.samples++; if (rms > m.peak) m.peak = rms;
      }, 50);
    }
  };
  setInterval(watch, 200); watch();
  return true;
}
"""


def install_level_meter(page: Page) -> Frame:
    return install_meter(component_frame(page))


def install_meter(frame: Frame) -> Frame:
    """The level meter in any frame (e.g. a page of its own that plays the voice)."""
    frame.evaluate(_LEVEL_METER)
    return frame


def played_level(frame: Frame) -> dict:
    """{peak, samples, elements, state} of what the page has played since the last reset."""
    return frame.evaluate(
        "() => ({peak: window.__meter.peak, samples: window.__meter.samples, "
        "elements: window.__meter.elements, state: window.__meter.ctx.state})"
    )


def reset_level(frame: Frame) -> None:
    frame.evaluate("() => window.__meter.reset()")


def seconds_until_quiet(
    page: Page, frame: Frame, *, quiet_peak: float = 0.01, window_ms: int = 250, timeout_s: float = 10.0
) -> float:
    """Seconds until the page plays a whole `window_ms` window below `quiet_peak` (RMS), polled
    window by window from now. Raises AssertionError with the levels seen if that never happens."""
    began, seen = time.monotonic(), []
    while time.monotonic() - began < timeout_s:
        reset_level(frame)
        page.wait_for_timeout(window_ms)
        peak = played_level(frame)["peak"]
        seen.append(round(peak, 3))
        if peak < quiet_peak:
            print(f"quiet after {time.monotonic() - began - window_ms / 1000:.2f}s; window peaks {seen}")
            return time.monotonic() - began - window_ms / 1000
    raise AssertionError(f"the page never went quiet within {timeout_s}s: window peaks {seen}")


def event_count(page: Page) -> int:
    """The Events page's "N events in this conversation"."""
    caption = page.get_by_text(re.compile(r"[\d,]+ events in this conversation")).first
    expect(caption).to_be_visible(timeout=LONG)
    count = re.match(r"([\d,]+)", caption.inner_text())
    assert count is not None, "the caption starts with the event count"
    return int(count.group(1).replace(",", ""))
