"""Fixtures for the real-browser suite: generated media, the app server, Debian's Chromium."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.harness import CHROMIUM, StreamlitApp, chromium_args, clean_env, silence_wav, start_streamlit
from tests.media import solid_y4m, speech_wav

BLUE = (20, 60, 230)
SPOKEN = "hello there, can you hear me"


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> dict[str, Path]:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail("Debian's Chromium is required for the browser tests (make chromium)")
    d = tmp_path_factory.mktemp("media")
    return {
        # Lead silence: the call needs a moment to connect before the words start.
        "speech": speech_wav(d / "speech.wav", SPOKEN, lead_silence_ms=3000, tail_silence_ms=3000),
        "silence": silence_wav(d / "silence.wav", seconds=1.0),
        "blue": solid_y4m(d / "blue.y4m", BLUE, seconds=1),
    }


@pytest.fixture(scope="module")
def app(request, tmp_path_factory) -> Iterator[StreamlitApp]:
    # History goes to a throwaway database, never the checkout's data/ folder.
    db = tmp_path_factory.mktemp("history") / "realtime-studio.db"
    # One log per test module (artifacts/logs/streamlit-local-<module>.log), kept for post-mortems.
    name = "local-" + request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    server = start_streamlit(name, clean_env(REALTIME_HISTORY_DB=str(db)))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def playwright_instance():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def launch(playwright_instance, audio: Path, video: Path):
    return playwright_instance.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=chromium_args(audio, video)
    )


@pytest.fixture(scope="module")
def silent_browser(playwright_instance, media):
    """Chromium whose fake mic plays silence and whose fake camera (and fake desktop) is solid blue."""
    browser = launch(playwright_instance, media["silence"], media["blue"])
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def speaking_browser(playwright_instance, media):
    """Chromium whose fake mic says SPOKEN (looped, with silence around it); the camera is solid blue."""
    browser = launch(playwright_instance, media["speech"], media["blue"])
    yield browser
    browser.close()
