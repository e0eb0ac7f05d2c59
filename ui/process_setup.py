"""What the Streamlit server process sets up once, before the first call: nothing per session here.

Four things, each measured on the pinned versions (Streamlit 1.67, streamlit-webrtc 0.79):

- **No full garbage collection after every script run.** Streamlit runs `gc.collect(2)` after each
  run, fragment runs included (`runner.postScriptGC`, default on). With aiortc, PyAV, the OpenAI SDK
  and Streamlit loaded the heap holds ~240,000 objects and one full collection holds the GIL for
  125-225 ms; the page's polling fragment reruns every 0.4 s per tab, so the voice track on
  streamlit-webrtc's loop missed its 20 ms deadline by 100-780 ms ("Audio frame callback is too
  slow"), and with two tabs Chromium saw the peer go quiet and dropped the call. We turn that
  option off and `gc.freeze()` what import time built (modules, classes: it is never garbage),
  so the collections Python still runs on its own only walk what calls create.
- **A call survives page navigation.** streamlit-webrtc's `SessionShutdownObserver` stops the
  WebRTC worker and its cached tracks when the session's page hash changes, because in a plain
  multipage app the component unmounts with its page. This app renders the component from the
  entrypoint above `st.navigation(...).run()`, so it stays mounted on every page; and with
  `st.navigation` the first run of every session already "changes page" (the entrypoint's hash,
  then the default page's), which stopped the tracks of a call about to start. The observer keeps
  watching for the session's end (tab closed, server stopping); only the page test is switched off.
- **A page change is not undone by the page being left.** A fragment rerun the tab sends right after
  a click on another page still names the old page, and Streamlit ran it there: a white page
  (`ui.stale_reruns` drops such reruns).
- **The local engine starts with the server**, in a background thread, when no key is configured:
  the first Start connects in seconds instead of waiting 15-23 s for the engine child to boot.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from ui import stale_reruns

__all__ = ["EngineStatus", "EngineWarmup", "ProcessSetup", "prepare_process"]

log = logging.getLogger(__name__)

EngineState = Literal["off", "starting", "ready", "failed"]


@dataclass(frozen=True)
class EngineStatus:
    state: EngineState
    message: str = ""  # why it failed (no key, no traceback)
    seconds: float | None = None  # how long the start took, once ready


class EngineWarmup:
    """Starts the local engine in a daemon thread and says how far it got. Thread-safe."""

    def __init__(self, ensure: Callable[[], object]) -> None:
        self._ensure = ensure
        self._lock = threading.Lock()
        self._status = EngineStatus("off")
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Begin starting the engine (idempotent while a start runs or after it succeeded)."""
        with self._lock:
            if self._status.state in ("starting", "ready"):
                return
            self._status = EngineStatus("starting")
            self._thread = threading.Thread(target=self._run, name="localengine-warmup", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        began = time.monotonic()
        try:
            self._ensure()
        except Exception as exc:
            log.warning("the local engine did not start in the background: %s", exc)
            status = EngineStatus("failed", message=str(exc).strip() or type(exc).__name__)
        else:
            status = EngineStatus("ready", seconds=time.monotonic() - began)
        with self._lock:
            self._status = status

    def status(self) -> EngineStatus:
        with self._lock:
            return self._status

    def wait(self, timeout: float) -> EngineStatus:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.status()


@dataclass(frozen=True)
class ProcessSetup:
    post_script_gc: bool  # Streamlit's forced full collection after each run (False once we are done)
    frozen_objects: int  # objects moved to the permanent generation by gc.freeze()
    navigation_stops_calls: bool  # streamlit-webrtc still stops calls on a page change
    drops_stale_fragment_reruns: bool  # ui.stale_reruns is in place
    warmup: EngineWarmup | None  # None with a key (OpenAI): nothing to start


def _stop_gc_after_each_run() -> bool:
    from streamlit import config

    try:
        config.set_option("runner.postScriptGC", False)
    except Exception as exc:
        log.warning("could not turn off Streamlit's post-run garbage collection: %s", exc)
    return bool(config.get_option("runner.postScriptGC"))


def _freeze_import_time_heap() -> int:
    # What imports built is never garbage; a full collection first so no cycle is frozen for good.
    import aiortc  # noqa: F401 - loaded before freezing: the bridge needs them on the first call

    import realtime.bridge  # noqa: F401

    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def _keep_calls_across_pages() -> bool:
    """Switch off streamlit-webrtc's page-change test (see the module docstring). Returns whether
    page changes still stop calls (True if this streamlit-webrtc has no such test to switch off)."""
    from streamlit_webrtc import shutdown

    if not callable(getattr(shutdown, "_get_current_page_script_hash", None)):
        log.warning("streamlit-webrtc changed: cannot keep calls across page changes")
        return True
    # An empty hash reads as "no page known", which the observer never treats as a page change.
    shutdown._get_current_page_script_hash = lambda app_session: ""
    return False


def prepare_process(*, backend: str, ensure_engine: Callable[[], object] | None = None) -> ProcessSetup:
    """Run once per server process (the app calls it through `st.cache_resource`)."""
    post_gc = _stop_gc_after_each_run()
    frozen = _freeze_import_time_heap()
    navigation = _keep_calls_across_pages()
    stale_guard = stale_reruns.install()
    warmup = None
    if backend == "local":
        if ensure_engine is None:
            from realtime.local_engine import ensure_local_engine

            ensure_engine = ensure_local_engine
        warmup = EngineWarmup(ensure_engine)
        warmup.start()
    return ProcessSetup(
        post_script_gc=post_gc,
        frozen_objects=frozen,
        navigation_stops_calls=navigation,
        drops_stale_fragment_reruns=stale_guard,
        warmup=warmup,
    )
