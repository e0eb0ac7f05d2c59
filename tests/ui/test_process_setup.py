"""The server process's one-time setup: the engine warms up in the background and says how far it got."""

from __future__ import annotations

import threading

from ui.process_setup import EngineWarmup


def test_warmup_reports_starting_then_ready_and_starts_once():
    release, calls = threading.Event(), []

    def ensure():
        calls.append(1)
        assert release.wait(5)

    warmup = EngineWarmup(ensure)
    assert warmup.status().state == "off"
    warmup.start()
    warmup.start()  # idempotent while starting
    assert warmup.status().state == "starting"
    release.set()
    status = warmup.wait(5)
    assert status.state == "ready" and status.seconds is not None
    warmup.start()  # and after it succeeded
    assert warmup.wait(5).state == "ready" and len(calls) == 1


def test_a_failed_start_is_a_message_and_can_be_retried():
    attempts = []

    def ensure():
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("The local engine exited (code 1) while starting.")

    warmup = EngineWarmup(ensure)
    warmup.start()
    failed = warmup.wait(5)
    assert failed.state == "failed" and "exited (code 1)" in failed.message
    warmup.start()
    assert warmup.wait(5).state == "ready" and len(attempts) == 2


_SETUP_PROBE = r"""
import gc, json, time
from streamlit import config
import ui.process_setup as ps

def full_gc_ms():
    t = time.perf_counter(); gc.collect(2); return (time.perf_counter() - t) * 1000

import realtime.bridge, aiortc  # the heap a call needs
before = min(full_gc_ms() for _ in range(3))
setup = ps.prepare_process(backend="openai")
after = min(full_gc_ms() for _ in range(3))
from streamlit_webrtc import shutdown
from streamlit.runtime.app_session import AppSession
again = ps.stale_reruns.install()
print(json.dumps({"stale": setup.drops_stale_fragment_reruns, "again": again,
                  "wrapped": getattr(AppSession.request_rerun, "_studio_stale_reruns", False),
                  "wrapped_twice": hasattr(AppSession.request_rerun.__wrapped__, "_studio_stale_reruns"),
                  "before": before, "after": after, "post_gc": config.get_option("runner.postScriptGC"),
                  "frozen": setup.frozen_objects, "nav": setup.navigation_stops_calls,
                  "page_hash": shutdown._get_current_page_script_hash(object()), "warmup": setup.warmup is None}))
"""


def test_reruns_no_longer_hold_the_gil_for_a_full_collection():
    """Streamlit's gc.collect(2) after every (fragment) run held the GIL 125-225 ms and made the
    voice track miss its 20 ms deadline. After setup: no forced collection, and one that runs anyway
    walks only what calls create. Runs in a child process: the setup changes process-wide state."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    out = subprocess.run(
        [sys.executable, "-c", _SETUP_PROBE],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.returncode == 0, out.stderr[-2000:]
    facts = json.loads(out.stdout.strip().splitlines()[-1])
    assert facts["post_gc"] is False
    assert facts["frozen"] > 100_000
    assert facts["after"] < facts["before"] / 5, facts
    assert facts["nav"] is False and facts["page_hash"] == ""  # a page change no longer ends the call
    assert facts["stale"] and facts["wrapped"] and facts["again"] and not facts["wrapped_twice"]
    assert facts["warmup"]  # with a key (OpenAI) there is no local engine to start
