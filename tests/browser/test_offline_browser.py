"""Offline means offline (issue 15): the page loads nothing from outside the server.

The real app (local engine) in Chromium: open the page, start a call, visit every page. Every request the
page, its iframes (the WebRTC component) and its workers make is recorded; one that leaves the server's
origin fails the test with its URL. The suite runs under scripts/loopback-only, where such a request fails
with net::ERR_INTERNET_DISCONNECTED; Playwright still reports it, and the route below aborts it the same
way when the test runs outside the namespace, so the test means the same in both.

What a user would notice offline is checked too: no console error about a font or icon that did not load,
Material icons drawn as glyphs (a missing icon font shows the ligature's name, e.g. "forum", as text) and a
tab icon (favicon) that loads.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import ConsoleMessage, Page, Request, WebSocket, expect

from tests.browser.driver import LONG, go_to, open_app, start_call, stop_call
from tests.browser.harness import VIEWPORT

pytestmark = pytest.mark.browser

PAGES = ("Events", "Diagnostics", "History", "Vision", "Conversation")
_INTERNAL_SCHEMES = {"data", "blob", "about"}
_LOAD_ERROR = re.compile(r"font|icon|woff|svg|gstatic|googleapis|failed to load|net::ERR_", re.I)

# Every visible Material icon: its text (the ligature), font family, width and font size in px.
_ICONS = """
() => [...document.querySelectorAll('[data-testid="stIconMaterial"]')]
  .filter(el => el.getClientRects().length > 0)
  .map(el => {
    const cs = getComputedStyle(el);
    return {name: el.textContent, family: cs.fontFamily, width: el.getBoundingClientRect().width,
            size: parseFloat(cs.fontSize)};
  })
"""

# The Material Symbols font face once the document's fonts settled, and the URLs it came from.
_ICON_FONT = """
async () => {
  await document.fonts.ready;
  const faces = [...document.fonts].filter(f => f.family.replaceAll('"', '').startsWith('Material Symbols'));
  const files = performance.getEntriesByType('resource').map(e => e.name).filter(n => /MaterialSymbols/.test(n));
  return {status: faces.map(f => f.status), files};
}
"""

# The tab icon: its URL and whether the browser can draw it (a favicon that failed to load cannot).
_FAVICON = """
async () => {
  const link = document.querySelector("link[rel~='icon']");
  if (!link) return {href: null, width: 0};
  const img = new Image();
  img.src = link.href;
  try { await img.decode(); } catch (e) { return {href: link.href, width: 0}; }
  return {href: link.href, width: img.naturalWidth};
}
"""


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return scheme, parts.netloc


def _leaves(url: str, server: tuple[str, str]) -> bool:
    """True for a URL outside the server's origin (data:, blob: and about: never leave the browser)."""
    return urlsplit(url).scheme not in _INTERNAL_SCHEMES and _origin(url) != server


def _check_icons(page: Page, where: str) -> int:
    icons = page.evaluate(_ICONS)
    broken = [
        i for i in icons if "Material Symbols" not in i["family"] or not 0 < i["width"] <= 1.5 * max(i["size"], 1)
    ]
    assert not broken, f"{where}: Material icons not drawn as glyphs (their names show as text): {broken}"
    return len(icons)


def test_the_page_loads_nothing_from_outside_the_server(app, silent_browser):
    server = _origin(app.url)
    seen: list[str] = []
    off_origin: list[str] = []
    console_errors: list[str] = []

    def on_request(request: Request) -> None:
        seen.append(request.url)
        if _leaves(request.url, server):
            off_origin.append(f"{request.resource_type} {request.url} (from {request.frame.url})")

    def on_websocket(ws: WebSocket) -> None:
        if _leaves(ws.url, server):
            off_origin.append(f"websocket {ws.url}")

    def on_console(msg: ConsoleMessage) -> None:
        where = msg.location.get("url", "") if msg.location else ""
        if msg.type == "error" and (_LOAD_ERROR.search(msg.text) or _leaves(where or app.url, server)):
            console_errors.append(f"{msg.text} [{where}]")

    context = silent_browser.new_context(viewport=VIEWPORT)
    context.on("request", on_request)
    context.route(lambda url: _leaves(url, server), lambda route: route.abort("internetdisconnected"))
    page = context.new_page()
    page.on("websocket", on_websocket)
    page.on("console", on_console)

    def on_page_error(exc: Exception) -> None:
        if _LOAD_ERROR.search(str(exc)):
            console_errors.append(f"uncaught: {exc}")

    page.on("pageerror", on_page_error)

    open_app(page, app.url)
    start_call(page)
    icons = _check_icons(page, "Conversation")
    assert icons > 0, "the conversation page should show Material icons (title, page list, sidebar)"

    for name in PAGES:
        go_to(page, name)
        heading = "Realtime Studio" if name == "Conversation" else name
        expect(page.get_by_role("heading", name=heading).first).to_be_visible(timeout=LONG)
        page.wait_for_timeout(1500)  # lazily loaded chunks, fonts and the favicon of this page
        _check_icons(page, name)

    font = page.evaluate(_ICON_FONT)
    leaked = list(off_origin)  # before the favicon check below, which loads the favicon once more itself
    favicon = page.evaluate(_FAVICON)
    stop_call(page)
    context.close()

    assert any(url.startswith(app.url) for url in seen), "no request was recorded: the listener did not work"
    assert not leaked, "requests left the server's origin " + app.url + ":\n" + "\n".join(leaked)
    assert not console_errors, "console errors about loading fonts, icons or resources:\n" + "\n".join(console_errors)
    assert font["status"] and all(s == "loaded" for s in font["status"]), f"the icon font did not load: {font}"
    assert font["files"] and all(f.startswith(app.url) for f in font["files"]), f"icon font not served locally: {font}"
    assert favicon["href"] and not _leaves(favicon["href"], server), f"the tab icon is not local: {favicon}"
    assert favicon["width"] > 0, f"the tab icon does not load: {favicon}"
