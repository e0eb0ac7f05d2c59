"""Replay and compare in the real app (issue 14's "tried as a new user would"), local engine, Chromium.

A 5-turn conversation is held in the page: two spoken turns (the fake mic says a sentence, looped),
then with the mic muted two typed turns (one calls a tool) and one with an image from the chat box.
"Replay with…" under the chat box opens its History entry; two presets, whose instructions start
with different "Say:" sentences and whose voices differ, replay it. The comparison must show every
turn under both presets, each reply opening with its preset's sentence, audio players whose voices
differ, latency and cost per cell and totals; the HTML report must open on its own (nothing fetched).
"""

from __future__ import annotations

import io
import json
import re
import sqlite3
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Locator, Page, expect

from realtime.presets import PresetStore, presets_path
from realtime.settings import Settings
from tests.browser.conftest import launch
from tests.browser.driver import LONG, items, open_app, screenshot, start_call, stop_call, type_message
from tests.browser.harness import VIEWPORT, clean_env, start_streamlit
from tests.browser.test_upload_browser import send_with_file

pytestmark = pytest.mark.browser

PRESETS = {"Alpha": ("Say: Alpha here.", "marin"), "Beta": ("Say: Beta here.", "cedar")}


@pytest.fixture(scope="module")
def replay_app(tmp_path_factory):
    db = tmp_path_factory.mktemp("history") / "realtime-studio.db"
    store = PresetStore(presets_path(db))  # what the sidebar's "Save preset" writes
    for name, (instructions, voice) in PRESETS.items():
        store.save(name, Settings().replace(instructions=instructions, voice=voice))
    # the camera off: the one image of the conversation is the one sent from the chat box
    server = start_streamlit("local-replay", clean_env(REALTIME_HISTORY_DB=str(db), REALTIME_CAMERA="off"))
    yield server, db
    server.stop()


def _user_bubbles(page: Page) -> int:
    return items(page, "user").count()


def _wait_replies(page: Page, count: int) -> None:
    expect(items(page, "assistant")).to_have_count(count, timeout=LONG)


def _choose(page: Page, select: Locator, label: str) -> None:
    """Pick ``label`` in a multiselect. Its list may close under a click that lands during a rerun
    (the page was just opened), so the list is opened again until it shows."""
    for _ in range(5):
        select.get_by_role("combobox").click()
        try:
            expect(page.get_by_role("option").filter(has_text=label)).to_be_visible(timeout=3000)
        except AssertionError:
            page.keyboard.press("Escape")
            continue
        page.get_by_role("option").filter(has_text=label).click()
        expect(select).to_contain_text(label)
        return
    raise AssertionError(f"the option {label!r} never showed")


def _wait_clips(db: Path, role: str, count: int, timeout: float = 30.0) -> None:
    """Poll the History file (as another process would) until ``count`` clips of ``role`` are kept."""
    deadline = time.monotonic() + timeout
    kept = 0
    while time.monotonic() < deadline:
        with sqlite3.connect(db) as conn:
            kept = conn.execute("SELECT COUNT(*) FROM audio WHERE role = ?", (role,)).fetchone()[0]
        if kept >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"{kept} {role} clips kept within {timeout} s, expected {count}")


def _audio_bytes(page: Page, src: str) -> bytes:
    url = src if src.startswith("http") else page.url.split("/", 3)[0] + "//" + page.url.split("/")[2] + src
    return page.request.get(url).body()


def _wav_rms(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(pcm * pcm))) if pcm.size else 0.0


def test_a_five_turn_conversation_replayed_with_two_presets_compares_side_by_side(
    replay_app, playwright_instance, media, tmp_path
):
    server, db = replay_app
    red = tmp_path / "red.png"
    Image.new("RGB", (240, 180), (220, 30, 30)).save(red)
    browser = launch(playwright_instance, media["speech"], media["blue"])  # the mic says a sentence, looped
    try:
        context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
        page = context.new_page()
        open_app(page, server.url)
        start_call(page)

        # two spoken turns, then the mic muted before the sentence comes round again
        expect(items(page, "user")).to_have_count(2, timeout=60_000)  # the second turn's speech ended
        page.get_by_text("Mute mic").click()
        _wait_replies(page, 2)
        page.wait_for_timeout(1500)
        spoken = _user_bubbles(page)
        assert spoken == 2, f"{spoken} spoken turns before the mute"

        type_message(page, "echo upper banana")  # a tool call
        expect(items(page, "assistant").filter(has_text="BANANA")).to_be_visible(timeout=LONG)
        _wait_replies(page, 3)
        type_message(page, "what did I say first?")
        _wait_replies(page, 4)
        send_with_file(page, "what do you see?", red)
        expect(items(page, "assistant").filter(has_text=re.compile("red", re.I))).to_be_visible(timeout=LONG)
        _wait_replies(page, 5)
        _wait_clips(db, "assistant", 5)  # the last reply has been heard to its end, as a user would
        stop_call(page)

        # from the conversation just held: its History entry, with "Replay with…" open
        page.get_by_role("button", name="Replay with…").click()
        expect(page.get_by_role("heading", name="History")).to_be_visible(timeout=LONG)
        voice = page.locator(".st-key-history-voice")  # the conversation to listen to again, both sides
        expect(voice.locator("audio")).to_have_count(1, timeout=LONG)
        expect(voice.get_by_role("button", name="Audio (WAV)")).to_be_visible()
        expect(voice).to_contain_text(re.compile(r"Voice kept: \d+s in 7 clips"))  # 2 spoken turns, 5 replies
        voice.scroll_into_view_if_needed()
        screenshot(page, "history-voice")
        setups = page.get_by_test_id("stMultiSelect")
        expect(setups).to_be_visible(timeout=LONG)
        for name in PRESETS:
            _choose(page, setups, f"Preset “{name}”")
        page.keyboard.press("Escape")
        page.get_by_role("button", name="Replay", exact=True).click()
        report = page.get_by_role("button", name="Report (HTML)")
        expect(report).to_be_visible(timeout=120_000)
        screenshot(page, "replay-comparison")

        turns = page.locator("[class*='st-key-replay-turn-']")
        expect(turns).to_have_count(5, timeout=LONG)
        headers = [t.strip() for t in turns.locator("strong").filter(has_text=re.compile(r"^Turn")).all_inner_texts()]
        assert headers == [f"Turn {n}" for n in range(1, 6)], headers
        body = page.locator("[data-testid='stMain']").inner_text()
        assert body.count("replayed as its recorded voice") == 2  # the kept voice, not the transcript
        assert body.count("with an image") == 1
        for n in range(5):
            cells = turns.nth(n).locator("[data-testid='stColumn']")
            expect(cells).to_have_count(3)  # the original, Alpha, Beta
            original, alpha, beta = (cells.nth(i).inner_text() for i in range(3))
            assert "Alpha here." in alpha and "Beta here." in beta, (n, alpha, beta)
            assert "(no reply)" not in original, (n, original)
            for cell in (alpha, beta):
                assert re.search(r"first audio \d+ ms · first text \d+ ms · free", cell), (n, cell)
            # the live call's own figures (a typed turn sent while the last reply still played has no
            # first audio of its own in the turn clock)
            assert re.search(r"first audio (\d+ ms|—) · first text \d+ ms · free", original), (n, original)
            assert cells.nth(1).locator("audio").count() == 1 and cells.nth(2).locator("audio").count() == 1
        assert "echo_upper(" in turns.nth(2).inner_text()
        expect(page.get_by_test_id("stDataFrame").first).to_be_visible()  # the totals per setup

        # the two presets' voices differ: the same turn's audio, fetched as the players fetch it
        first = turns.nth(0).locator("[data-testid='stColumn']")
        alpha_wav = _audio_bytes(page, first.nth(1).locator("audio").get_attribute("src") or "")
        beta_wav = _audio_bytes(page, first.nth(2).locator("audio").get_attribute("src") or "")
        assert alpha_wav[:4] == b"RIFF" and beta_wav[:4] == b"RIFF" and alpha_wav != beta_wav
        assert _wav_rms(alpha_wav) > 300 and _wav_rms(beta_wav) > 300

        # the JSON beside it: totals, replay time per setup
        with page.expect_download() as got:
            page.locator(".st-key-replay_json button").click()
        doc = json.loads(Path(got.value.path()).read_text(encoding="utf-8"))
        runs = {r["name"]: r for r in doc["runs"]}
        assert set(runs) == {"original", "preset:Alpha", "preset:Beta"}
        for name in ("preset:Alpha", "preset:Beta"):
            assert runs[name]["error"] is None and len(runs[name]["results"]) == 5
            print(f"replay of 5 turns, {name}: {runs[name]['seconds']:.2f} s")

        # the HTML report opens on its own: no server, nothing fetched
        with page.expect_download() as got:
            report.click()
        html = tmp_path / "report.html"
        got.value.save_as(html)
        offline = browser.new_context(offline=True)
        fetched: list[str] = []
        offline.on("request", lambda r: fetched.append(r.url))
        doc_page = offline.new_page()
        doc_page.goto(html.as_uri())
        text = doc_page.locator("body").inner_text()
        assert text.count("Alpha here.") >= 5 and text.count("Beta here.") >= 5
        assert doc_page.locator("audio").count() >= 12  # 5 turns × 2 presets, the originals, the user's voice
        assert [u for u in fetched if not u.startswith(("file:", "data:"))] == []
        offline.close()
    finally:
        browser.close()
    # what the voice costs to keep: bytes per minute of kept speech, both sides
    with sqlite3.connect(db) as conn:
        size, seconds = conn.execute("SELECT SUM(LENGTH(data)), SUM(seconds) FROM audio").fetchone()
    print(f"kept voice: {size / 1e3:.0f} kB for {seconds:.1f} s = {size / 1e6 / (seconds / 60):.2f} MB per minute")
