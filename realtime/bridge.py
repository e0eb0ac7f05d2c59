"""One conversation's upstream side: the calls to the realtime provider that carry it.

The Bridge owns, per conversation, the browser mic (`MicTrack`), the voice to the browser
(`VoiceOut`), the transcript, the turn clock and the current `UpstreamCall` (an aiortc peer with
one sendrecv audio transceiver and the `oai-events` data channel). A call that ends without the
user asking is replaced: the fold in `realtime.call_state` decides when (`Reconnect`), the new call
gets the same settings and then the conversation so far (`realtime.restore`) before anything queued
goes out. Calls are also replaced before the provider's session cap (a rollover: the next call is
readied in the background and takes over at a turn boundary) and hung up when idle (a pause).

It is the IO edge around three folds: provider events are read once by `realtime.events`, then fed
to the call's state (whose effects the Bridge carries out), the `Transcript` and the `TurnClock`.

Everything runs on the process's one background loop (`realtime.loop`). The public methods are
called from Streamlit threads or the browser leg's media loop: they only hand work over
(`call_soon` / `run_coro`) and never block, except `close()`, which waits at most `timeout`
seconds. The page reads `snapshot()`, an immutable value built when it is read.

Once a second the stats loop also feeds `realtime.overload`'s watch from counters the media path
keeps anyway (the loop's lateness, the voice running out, late mic and voice frames): while it says
the audio is degraded, `BridgeSnapshot.overloaded` says why, and the event log notes each change.

Closing waits for everything the conversation started: its tasks (also those started while it was
closing) and every call's hang-up (retried once when it times out; one that still fails is said in
the transcript and the event log). Bridges still running when the process exits are closed first.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import logging
import threading
import time
import uuid
import weakref
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import av
import numpy as np
from aiortc import MediaStreamTrack

from realtime import loop as bg
from realtime.agent_link import (
    AgentActive,
    AgentEvent,
    AgentFailed,
    AgentLink,
    ApprovalNeeded,
    GuardrailTripped,
    HandedOff,
    ToolFinished,
    model_settings_from_session,
)
from realtime.audio_tape import AudioTape, VoiceClip
from realtime.call_state import (
    DEFAULT_POLICY,
    Act,
    Activity,
    CallCreated,
    CallState,
    Effect,
    Failure,
    ForgetImage,
    Lifecycle,
    Note,
    Reconnect,
    ReconnectPolicy,
    Restore,
    RunTool,
    Signal,
    State,
    TellEnded,
    transition,
)
from realtime.errors import BridgeError, classify
from realtime.eventlog import EventLog
from realtime.events import (
    AudioBuffer,
    ItemCreate,
    ServerEvent,
    Speech,
    Unreadable,
    decode_message,
    read_client_event,
    read_server_event,
)
from realtime.frame_policy import FramePolicy
from realtime.frames import FrameThrottle, ImageWindow, encode_frame
from realtime.image_log import ImageLog, SentImage, uploaded_images
from realtime.metrics import TurnClock, TurnMetrics
from realtime.mic_track import MicFeed, MicStats, MicTrack
from realtime.overload import Cleared, LoadSample, OverloadWatch, Tripped
from realtime.pricing import estimate_cost
from realtime.restore import plan_restore
from realtime.rtc_stats import RtcStats, read_rtc_stats
from realtime.settings import Settings, live_changes, restart_required
from realtime.tools import DEFAULT_TOOLS, NO_TOOLS, ToolRegistry
from realtime.transcript import Transcript, TranscriptItem
from realtime.updates import BridgeUpdate, CallReplaced, Listener, ReplacedKind
from realtime.uploads import PreparedMessage, Upload, prepare_message
from realtime.upstream_call import HANGUP_TIMEOUT_S, UpstreamCall, hangup_budget_s
from realtime.usage import UsageTotals
from realtime.voice_out import PcmSink, VoiceOut, VoiceStats

if TYPE_CHECKING:
    from agents.realtime import RealtimeAgent

__all__ = ["MAX_MESSAGE_BYTES", "Bridge", "BridgeSnapshot", "RtcStats", "SettingsChange"]

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 65_536  # aiortc's data-channel message cap
STATS_INTERVAL_S = 1.0
CAMERA_TICK_S = 0.25
WATCH_TICK_S = 0.05  # how often the rollover and pause watch looks (cheap reads only)
# No screen frame for this long: the share is over (the page froze or went away without saying so).
# The page sends an unchanged screen every 20 s; a background tab's timers may run once a minute.
SCREEN_STALE_S = 60.0
# A question typed right after Start waits this long (from Start) for the camera's first frame: the
# browser's camera track starts with the call, and "what do you see?" must not go without a picture.
FIRST_FRAME_WAIT_S = 6.0
FIRST_FRAME_POLL_S = 0.05
WAKE_LEVEL = 0.02  # mic RMS (of full scale) that counts as speech: wakes a paused call
QUIET_LEVEL = 0.01  # below this the user is not speaking: a rollover may switch
QUIET_EVENTS_S = 0.5  # no provider event for this long: nothing is about to start
# Events queued while no call was up that made sense only to the call that was lost (its buffers,
# its response, its items' audio); the new call gets the conversation through the restore instead.
_STALE_TYPES = frozenset(
    {
        "response.cancel",
        "output_audio_buffer.clear",
        "input_audio_buffer.clear",
        "input_audio_buffer.commit",
        "conversation.item.truncate",
        "conversation.item.delete",
    }
)
CUT_BY_RECONNECT = "(interrupted by a reconnect)"
NOT_HEARD = "(not heard: the connection dropped)"


def close_timeout_s() -> float:
    """How long `close()` waits by default: a call still being placed (``HANGUP_TIMEOUT_S``), its
    hang-up with the retry, and a second for closing the peers."""
    return HANGUP_TIMEOUT_S + hangup_budget_s() + 1.0


_running: weakref.WeakSet[Bridge] = weakref.WeakSet()


def _close_at_exit(bridge: Bridge) -> None:
    """Hang up ``bridge`` at process exit if it is still running then (``realtime.loop.before_exit``)."""
    _running.add(bridge)
    bg.before_exit(_close_all)


def _close_all() -> None:
    """Close every bridge still running, all at once, waiting as long as one close may take."""
    futures = [bridge.close_soon() for bridge in list(_running) if bridge.running]
    if futures:
        _, pending = concurrent.futures.wait(futures, timeout=close_timeout_s())
        if pending:
            log.warning("%d conversation(s) did not finish closing before the process exit", len(pending))


@dataclass(frozen=True)
class SettingsChange:
    applied: tuple[str, ...]
    needs_restart: tuple[str, ...]


@dataclass(frozen=True)
class BridgeSnapshot:
    state: State
    activity: Activity
    error: BridgeError | None
    transcript: tuple[TranscriptItem, ...]
    turns: tuple[TurnMetrics, ...]
    usage: UsageTotals
    cost_usd: float
    rtc: RtcStats
    call_id: str | None
    images_in_context: int = 0
    reconnectable: bool = False  # failed after the reconnect attempts ran out: Reconnect may be pressed
    attempt: int = 0  # while reconnecting: this attempt, of max_attempts
    max_attempts: int = 0
    lost_reason: str = ""  # while reconnecting: why the last call ended
    replaced: tuple[CallReplaced, ...] = ()  # every reconnect, resume and rollover, oldest first
    scenario: str = ""  # the scenario running ("" for the built-in assistant, which needs no agents)
    agent: str | None = None  # the scenario's agent speaking now
    approvals: tuple[ApprovalNeeded, ...] = ()  # tools waiting for Approve or Deny, oldest first
    sent_images: tuple[SentImage, ...] = ()  # every image shown to the model (the vision inspector)
    overloaded: str | None = None  # the connected call's audio is degraded under load: why (realtime.overload)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


@dataclass
class _Pending:
    """An event waiting for a call's data channel."""

    message: str
    type: str
    item_id: str | None  # the item a conversation.item.create carries (the restore leaves it out)
    output_for: str | None  # the call id of a queued tool output (the restore leaves the output out)


class Bridge:
    """One conversation's calls to the provider (see module docstring)."""

    def __init__(
        self,
        settings: Settings,
        audio_out: PcmSink,
        tools: ToolRegistry | None = None,
        policy: ReconnectPolicy = DEFAULT_POLICY,
    ) -> None:
        self.settings = settings  # what the caller last asked for; the loop applies it (`_applied`)
        self.tools = tools if tools is not None else DEFAULT_TOOLS
        self.policy = policy
        self.events = EventLog()
        self.transcript = Transcript()
        self.mic = MicTrack()
        self.voice = VoiceOut(audio_out)
        self.tape: AudioTape | None = None  # both sides' voice for History (REALTIME_KEEP_AUDIO)
        if settings.keep_audio:
            tape = self.tape = AudioTape()
            self.mic.on_sent = tape.mic
            self.voice.on_voice = lambda pcm: self._kept(tape.voice(pcm))
        camera = settings.camera
        self.throttle = FrameThrottle(interval_s=float(camera.interval_s))  # the frame policy sets its pace
        self.images = ImageWindow(max_images=int(camera.max_images))
        self.image_log = ImageLog()  # every image shown to the model (the vision inspector)
        self._clock = TurnClock()
        self._turns: tuple[TurnMetrics, ...] = ()
        self._replaced: tuple[CallReplaced, ...] = ()
        self._listeners: list[Listener] = []
        self._rtc = RtcStats()
        self._load = OverloadWatch()
        self._overloaded: str | None = None
        self._call = CallState()
        self._call_lock = threading.Lock()  # `start()` steps the fold off the loop; the loop does the rest
        self._started = False
        self._started_at = 0.0

        # loop-side objects (created/used only on the bridge loop)
        self._applied = settings
        self._upstream: UpstreamCall | None = None  # the call carrying the conversation now
        self._next: UpstreamCall | None = None  # a call readied to take over (rollover)
        self._calls_made = 0
        self._opening: asyncio.Task[None] | None = None
        self._retiring: set[asyncio.Task[None]] = set()
        self._retired: weakref.WeakSet[UpstreamCall] = weakref.WeakSet()  # let go once: hung up once
        self._mic_lock: asyncio.Lock | None = None
        self._pending: list[_Pending] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._tools_running = 0
        self._camera_wake: asyncio.Event | None = None
        self._typing: asyncio.Lock | None = None
        self._framing: asyncio.Lock | None = None
        self._screen_until = 0.0  # screen frames keep coming until then: the screen is the image source
        self._close_future: concurrent.futures.Future[None] | None = None
        self._agent: RealtimeAgent[Any] | None = None  # the scenario's starting agent (None: no agents)
        self._scenario = ""
        self._link: AgentLink | None = None
        self._active_agent: str | None = None
        self._agents_ready = True  # False while a scenario's session joins a call: what is typed waits
        self._approvals: dict[str, ApprovalNeeded] = {}
        self._load_scenario(settings.scenario)
        self._last_activity = time.monotonic()  # speech, typing, a response: what keeps a call from pausing
        self._last_event_at = 0.0  # when the current call last sent an event

    # ------------------------------------------------------------------ public API (any thread)

    def start(self) -> None:
        """Connect in the background loop thread. Returns at once."""
        if self._started or self._close_future is not None:
            return
        self._started = True
        self._started_at = time.monotonic()
        self._step(Lifecycle("connect", at=self._started_at))
        bg.call_soon(self._begin)
        _close_at_exit(self)

    def on_mic_frame(self, frame: av.AudioFrame) -> None:
        self.mic.push(frame)

    def on_video_frame(self, frame: av.VideoFrame) -> None:
        """A camera frame (ignored while the user shares their screen: the screen is the source then)."""
        if not self.sharing_screen:
            self.throttle.offer(frame)

    def on_screen_frame(self, frame: av.VideoFrame | np.ndarray) -> None:
        """A frame of the user's shared screen: the image source until frames stop coming for
        ``SCREEN_STALE_S`` or `stop_screen_share()`; the same policy, change detection and encoding."""
        self._screen_until = time.monotonic() + SCREEN_STALE_S
        self.throttle.offer(frame)

    def stop_screen_share(self) -> None:
        """Back to the camera (the user stopped sharing)."""
        self._screen_until = 0.0

    @property
    def sharing_screen(self) -> bool:
        return time.monotonic() < self._screen_until

    def set_muted(self, muted: bool) -> None:
        self.mic.muted = muted

    def send_text(self, text: str) -> None:
        text = (text or "").strip()
        if text:
            bg.call_soon(self._send_text, text)

    def send_message(self, text: str, files: Sequence[Upload]) -> None:
        """A typed message with image files (the chat box): one user item, text first, then a reply.
        A file that cannot be sent is said in the transcript; the rest still goes."""
        if not files:
            self.send_text(text)
            return
        bg.call_soon(self._spawn, self._send_upload((text or "").strip(), tuple(files)))

    def send_frame_now(self) -> None:
        self.throttle.force()
        bg.call_soon(self._wake_camera)

    def interrupt(self) -> None:
        self.voice.clear()
        bg.call_soon(self._interrupt)

    def start_talking(self) -> None:
        """Push to talk, press: forget what the mic sent since the last turn (input_audio_buffer.clear)."""
        bg.call_soon(self._send, {"type": "input_audio_buffer.clear"})

    def commit_and_respond(self) -> None:
        """Push to talk, release: the user's turn is what the buffer holds; commit it and ask for a reply."""
        bg.call_soon(self._commit_and_respond)

    def reconnect(self) -> None:
        """Reconnect after the attempts ran out, or resume a paused call (the Reconnect/Resume button)."""
        bg.call_soon(self._wake)

    def approve(self, call_id: str) -> None:
        """Approve a tool the scenario holds for the user: the library runs it."""
        bg.call_soon(self._decide, call_id, True)

    def deny(self, call_id: str) -> None:
        """Deny it: the model is told the user refused."""
        bg.call_soon(self._decide, call_id, False)

    def add_listener(self, fn: Listener) -> None:
        self._listeners.append(fn)

    def update_settings(self, new: Settings) -> SettingsChange:
        """Report what changed: applied live (one session.update, sent on the loop) or needing a new call.

        The voice cannot change once the assistant has produced audio: it is then
        reported in `needs_restart` (and left out of the update), never silently dropped.
        """
        old, self.settings = self.settings, new
        needs = list(restart_required(old, new))
        live = live_changes(old, new)
        if "voice" in live and self._call.audio_started:
            needs.append("voice")
        bg.call_soon(self._apply_settings, new)
        return SettingsChange(applied=tuple(n for n in live if n not in needs), needs_restart=tuple(needs))

    def snapshot(self) -> BridgeSnapshot:
        call = self._call
        usage = self._clock.usage
        return BridgeSnapshot(
            state=call.state,
            activity=call.activity,
            error=call.error,
            transcript=self.transcript.snapshot(),
            turns=self._turns,
            usage=usage,
            cost_usd=estimate_cost(usage, self.settings.model),
            rtc=self._rtc,
            call_id=call.call_id,
            images_in_context=len(self.images),
            reconnectable=call.reconnectable,
            attempt=call.attempt,
            max_attempts=self.policy.max_attempts,
            lost_reason=call.lost_reason,
            replaced=self._replaced,
            scenario=self._scenario,
            agent=self._active_agent,
            approvals=tuple(self._approvals.values()),
            sent_images=self.image_log.snapshot(),
            overloaded=self._overloaded if call.state == "connected" else None,
        )

    @property
    def call_id(self) -> str | None:
        return self._call.call_id

    @property
    def state(self) -> State:
        return self._call.state

    @property
    def running(self) -> bool:
        """Not closed yet: the call counts against the server's limit (``realtime.admission``)."""
        return self._call.state != "closed"

    @property
    def hung_up(self) -> bool:
        """Whether the last call was hung up (every earlier one was, when it was replaced)."""
        upstream = self._upstream
        return upstream is not None and upstream.hung_up

    def close_soon(self) -> concurrent.futures.Future[None]:
        """Start closing (hang up, close the peer) without waiting. Idempotent."""
        if self._close_future is None:
            self._close_future = bg.run_coro(self._close())
        return self._close_future

    def close(self, timeout: float | None = None) -> None:
        """Hang up the call and close the peer; waits at most `timeout` s (by default, long enough
        for a hang-up that is retried: `close_timeout_s()`). Idempotent."""
        if timeout is None:
            timeout = close_timeout_s()
        future = self.close_soon()
        if bg.in_loop_thread():
            return  # cannot wait on our own loop; the close runs right after this callback
        try:
            future.result(timeout)
        except concurrent.futures.TimeoutError:
            log.warning("bridge close did not finish within %.1fs", timeout)
        except Exception:
            log.exception("bridge close failed")  # close must not raise into the page

    # ------------------------------------------------------------------ the fold and its effects (loop)

    def _step(self, signal: Signal) -> None:
        with self._call_lock:
            old = self._call
            self._call, effects = transition(old, signal, secrets=self._secrets(), policy=self.policy)
        new = self._call
        if new.error is not None and new.error is not old.error:
            log.warning("bridge error (%s): %s", new.error.kind, new.error.message)
        for effect in effects:
            self._run_effect(effect)
        if new.over and not old.over:  # nothing carries the conversation now: let the calls go
            self._retire(self._upstream)
            self._retire(self._next)
            self._next = None

    def _run_effect(self, effect: Effect) -> None:
        if isinstance(effect, Act):
            if effect.kind == "clear_voice":
                self.voice.clear()
            elif effect.kind == "flush_pending":
                self._flush_pending()
                self._attach_agents(self._upstream)
            elif effect.kind == "drop_call":
                self._retire(self._upstream)
                self._upstream = None
            else:
                self.close_soon()
        elif isinstance(effect, RunTool):
            if self._agent is None:  # with a scenario, its agents' tools run in the library, once
                self._spawn(self._run_tool(effect))
        elif isinstance(effect, ForgetImage):
            self.images.removed(effect.item_id)
            self.image_log.left(effect.item_id)
        elif isinstance(effect, TellEnded):
            self._notify(effect.ended)
        elif isinstance(effect, Reconnect):
            self._replace_call(effect)
        elif isinstance(effect, Restore):
            self._restore(effect)
        elif isinstance(effect, Note):
            self._notify(self.transcript.add_system_note(effect.text, role=effect.role))

    def _feed(self, event: ServerEvent | ItemCreate, now: float) -> None:
        """What was said and when: the transcript and the turn clock."""
        for item in self.transcript.apply(event):
            self._notify(item)
        self._completed(self._clock.feed(event, now))

    # ------------------------------------------------------------------ calls (loop)

    def _begin(self) -> None:
        self._mic_lock = asyncio.Lock()
        self._opening = self._spawn(self._open_call(0.0))
        self._spawn(self._stats_loop())
        self._spawn(self._watch_loop())
        self._camera_wake = asyncio.Event()
        self._spawn(self._camera_loop())

    def _new_call(self) -> UpstreamCall:
        self._calls_made += 1
        assert self._mic_lock is not None
        holder: list[UpstreamCall] = []
        feed = MicFeed(self.mic, lambda: bool(holder) and holder[0] is self._upstream, self._mic_lock)
        upstream = UpstreamCall(
            self._calls_made,
            feed,
            on_signal=self._on_call_signal,
            on_message=self._on_message,
            on_voice=self._relay_voice,
        )
        holder.append(upstream)
        return upstream

    async def _open_call(self, delay: float) -> None:
        """Open a call for the conversation (the first one, or a replacement after ``delay`` s)."""
        if delay > 0:
            await asyncio.sleep(delay)
        if self._call.closing:
            return
        upstream = self._new_call()
        self._upstream = upstream
        try:
            await upstream.open(self._call_settings(), self._session_tools(), stop_if=lambda: self._call.closing)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if upstream is self._upstream:
                error = classify(exc, secrets=self._secrets(), base_url=self._base_url(upstream))
                self._step(Failure(error, "setup", at=time.monotonic()))

    def _replace_call(self, effect: Reconnect) -> None:
        """The call was lost (or an attempt failed): let it go, open the next after the delay."""
        lost, self._upstream = self._upstream, None
        self._retire(lost)
        if effect.attempt == 1:
            self._cut_by_reconnect()
        ready = self._next
        if ready is not None and ready.channel_open and effect.delay_s == 0:
            # a rollover had a call ready: it takes over at once (its channel is already open)
            self._next, self._upstream = None, ready
            self._step(CallCreated(ready.call_id))
            self._step(Lifecycle("channel_opened", at=time.monotonic()))
            return
        self._retire(self._next)
        self._next = None
        opening = self._opening
        if opening is not None and not opening.done() and opening is not asyncio.current_task():
            opening.cancel()
        self._opening = self._spawn(self._open_call(effect.delay_s))

    def _cut_by_reconnect(self) -> None:
        """What the lost call was in the middle of: replies cut, speech never transcribed, turns."""
        for item in self.transcript.cut_short(CUT_BY_RECONNECT, NOT_HEARD):
            self._notify(item)
        self._completed(self._clock.cut())

    def _retire(self, upstream: UpstreamCall | None) -> None:
        """Hang up a call that no longer carries the conversation, in the background (once)."""
        if upstream is None or upstream in self._retired:
            return
        self._retired.add(upstream)
        task = asyncio.ensure_future(self._let_go(upstream))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _let_go(self, upstream: UpstreamCall) -> None:
        await upstream.close()
        failure = upstream.hangup_failure
        if failure is None:
            return
        call_id = upstream.call_id
        self.events.record("local", {"type": "local.hangup_failed", "call_id": call_id, "reason": failure.reason})
        if failure.timed_out:  # the provider may keep that call running (and billing) until it ends it itself
            note = f"Could not hang up call {call_id}: the hang-up {failure.reason}; the provider ends it by itself."
            self._notify(self.transcript.add_system_note(note, role="error"))

    def _restore(self, effect: Restore) -> None:
        """The new call is up: the conversation so far goes in before anything queued."""
        upstream = self._upstream
        if upstream is None:
            return
        replaced = self._send_restore(upstream, effect.kind, effect.reason, effect.took_s, effect.attempts)
        self._notify(self.transcript.add_system_note(replaced.note))

    def _send_restore(
        self, upstream: UpstreamCall, kind: ReplacedKind, reason: str, took_s: float, attempts: int
    ) -> CallReplaced:
        # queued buffer and response controls were meant for a call that is gone (or for audio that
        # went nowhere while none was up): the new call must not get them
        self._pending = [p for p in self._pending if p.type not in _STALE_TYPES]
        queued = {p.item_id for p in self._pending if p.item_id}
        items = [item for item in self.transcript.snapshot() if item.id not in queued]
        outputs = {p.output_for for p in self._pending if p.output_for}
        plan = plan_restore(items, images_in_window=self.images.ids, outputs_queued=outputs)
        for event in plan.events:
            event = {**event, "event_id": _new_id("evt")}
            self.events.record("client", event)  # the Events page shows what was replayed
            upstream.send(json.dumps(event))
        replaced = CallReplaced(
            kind=kind,
            reason=reason,
            took_s=took_s,
            attempts=attempts,
            restored=plan.restored,
            cut=plan.cut,
            at=time.time(),
            call_id=upstream.call_id,
        )
        self._replaced = (*self._replaced, replaced)
        self._notify(replaced)
        return replaced

    def _on_call_signal(self, upstream: UpstreamCall, signal: Signal) -> None:
        if upstream is self._upstream:
            self._step(signal)
        elif upstream is self._next and (
            isinstance(signal, Failure)
            or (isinstance(signal, Lifecycle) and signal.kind in ("channel_closed", "peer_closed"))
        ):
            log.info("the call readied for a rollover was lost; the current one goes on")
            self._next = None
            self._retire(upstream)
        # anything else is from a call already let go

    async def _relay_voice(self, upstream: UpstreamCall, track: MediaStreamTrack) -> None:
        await self.voice.run(track, active=lambda: upstream is self._upstream)

    def _base_url(self, upstream: UpstreamCall | None) -> str | None:
        conn = upstream.connection if upstream is not None else None
        return conn.base_url if conn is not None else None

    # ------------------------------------------------------------------ scenario agents (loop)

    def _load_scenario(self, spec: str) -> None:
        """The scenario's starting agent. The built-in assistant needs none: the bridge runs its tools.
        A scenario that cannot be loaded is said in the transcript, and the assistant speaks instead."""
        from scenarios import DEFAULT_SCENARIO, ScenarioError, load_scenario

        if spec == DEFAULT_SCENARIO:
            return
        try:
            self._agent, self._scenario = load_scenario(spec), spec
        except ScenarioError as exc:
            self._local_error(f"{exc} The {DEFAULT_SCENARIO} scenario runs instead.")

    def _session_tools(self) -> ToolRegistry:
        return self.tools if self._agent is None else NO_TOOLS

    def _call_settings(self) -> Settings:
        """What a new call's `session` is made from: with a scenario, its agent's instructions from
        the start (the library's session.update follows once it has joined)."""
        agent = self._link.agent if self._link is not None else self._agent
        if agent is not None and isinstance(agent.instructions, str) and agent.instructions.strip():
            return self._applied.replace(instructions=agent.instructions)
        return self._applied

    def _attach_agents(self, upstream: UpstreamCall | None) -> None:
        """The scenario's session follows the call now carrying the conversation (sideband)."""
        if self._agent is None or upstream is None or upstream.call_id is None or upstream.connection is None:
            return
        old, self._link = self._link, None
        starting = old.agent if old is not None else self._agent  # after a handoff, the agent speaking
        if old is not None:
            self._spawn(old.close())
        if self._approvals:
            held = ", ".join(a.tool for a in self._approvals.values())
            self._approvals.clear()
            self._local_error(f"The call was replaced before {held} was approved or denied; ask again.")
        link = AgentLink(starting, self._on_agent_event, secrets=self._secrets())
        self._link = link
        self._active_agent = starting.name
        self._agents_ready = False
        self._spawn(self._run_link(link, upstream))

    async def _run_link(self, link: AgentLink, upstream: UpstreamCall) -> None:
        from scenarios import ScenarioContext

        conn = upstream.connection
        assert conn is not None and upstream.call_id is not None
        context = ScenarioContext(backend=self._applied.backend, base_url=conn.base_url, api_key=conn.api_key)
        settings = model_settings_from_session(self._applied.session_payload(registry=NO_TOOLS))
        try:
            await link.attach(upstream.call_id, conn.base_url, conn.api_key, settings, context)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if link is self._link:
                error = classify(exc, secrets=self._secrets(), base_url=conn.base_url)
                self._local_error(f"The scenario's agents could not join the call: {error.message}")
        if link is self._link:  # joined (or could not: the call goes on without them)
            self._agents_ready = True
            self._flush_pending()

    def _on_agent_event(self, event: AgentEvent) -> None:
        self.events.record("agent", {"type": f"agent.{type(event).__name__}", **event.__dict__})
        if isinstance(event, AgentActive):
            self._active_agent = event.name
        elif isinstance(event, HandedOff):
            self._active_agent = event.target
            self._notify(self.transcript.add_system_note(f"{event.source} \u2192 {event.target}"))
        elif isinstance(event, GuardrailTripped):
            self.voice.clear()  # the reply stops being heard now, not when the cancel lands
            cut = self.transcript.cut_last_reply()  # marked even when its text was all out already
            if cut is not None:
                self._notify(cut)
            why = "; ".join(d for d in event.details if d)
            names = ", ".join(event.guardrails)
            note = f"Guardrail {names} stopped the reply" + (f" ({why})" if why else "") + "."
            self._notify(self.transcript.add_system_note(note, role="error"))
        elif isinstance(event, ApprovalNeeded):
            self._approvals[event.call_id] = event
        elif isinstance(event, AgentFailed):
            self._local_error(event.message)
        elif isinstance(event, ToolFinished):
            pass  # the output reaches the transcript as the function_call_output item

    def _decide(self, call_id: str, approved: bool) -> None:
        request = self._approvals.pop(call_id, None)
        link = self._link
        if request is None or link is None:
            return
        verb = "Approved" if approved else "Denied"
        self._notify(self.transcript.add_system_note(f"{verb} {request.tool}({request.arguments})"))
        self._spawn(link.approve(call_id) if approved else link.deny(call_id))

    # ------------------------------------------------------------------ rollover and pause (loop)

    async def _watch_loop(self) -> None:
        """Roll over before the provider's session cap; pause when idle, wake on speech."""
        while True:
            await asyncio.sleep(WATCH_TICK_S)
            now = time.monotonic()
            if self.tape is not None:
                self._kept(self.tape.tick())
            state = self._call.state
            if state not in ("paused", "connected") or self._call.closing:
                continue
            level = self.mic.stats().level  # once a tick: the wake, idle and boundary checks share it
            if state == "paused":
                if level >= WAKE_LEVEL:
                    self._wake()
                continue
            if level >= WAKE_LEVEL or self._call.activity != "listening":
                self._last_activity = now
            pause_s = float(self._applied.idle_pause_minutes) * 60.0
            if pause_s > 0 and now - self._last_activity >= pause_s and self._at_turn_boundary(now, level):
                self._step(Lifecycle("pause", at=now))
                continue
            self._roll_over_if_due(now, level)

    def _at_turn_boundary(self, now: float, mic_level: float) -> bool:
        """Nobody speaking, no response in flight or about to be (the provider quiet for a moment:
        a turn just committed gets its response.created within it), no voice still playing, no tool
        running, no spoken turn still waiting for its transcript."""
        call = self._call
        return (
            call.activity == "listening"
            and not call.response_active
            and self._tools_running == 0
            and now - self._last_event_at >= QUIET_EVENTS_S
            and self.voice.buffer_ms() < 20
            and mic_level < QUIET_LEVEL
            and not any(i.role == "user" and not i.final for i in self.transcript.snapshot())
        )

    def _roll_over_if_due(self, now: float, mic_level: float) -> None:
        upstream = self._upstream
        if upstream is None or upstream.opened_at is None:
            return
        if now - upstream.opened_at < float(self._applied.rollover_minutes) * 60.0:
            return
        nxt = self._next
        if nxt is None:
            self._next = self._new_call()
            self._spawn(self._ready_next(self._next))
        elif nxt.channel_open and self._at_turn_boundary(now, mic_level):
            self._switch_to(nxt, now)

    async def _ready_next(self, upstream: UpstreamCall) -> None:
        try:
            await upstream.open(self._call_settings(), self._session_tools(), stop_if=lambda: self._call.closing)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("could not ready a call for the rollover: %s", type(exc).__name__)
            if upstream is self._next:
                self._next = None
                self._retire(upstream)

    def _switch_to(self, upstream: UpstreamCall, began: float) -> None:
        """At a turn boundary: the readied call gets the conversation and the mic, the old one goes."""
        old, self._next = self._upstream, None
        minutes = float(self._applied.rollover_minutes)
        reason = f"rollover at {minutes:g} min, before the provider's session cap"
        self._upstream = upstream  # the mic feeds and the voice follow this
        self._retire(old)
        self._step(CallCreated(upstream.call_id))
        self._step(Lifecycle("rolled_over", at=began))
        self._send_restore(upstream, "rollover", reason, time.monotonic() - began, 1)
        self._attach_agents(upstream)
        readied_with = upstream.settings
        if readied_with is not None and readied_with != self._applied:  # changed while it was readied
            self._apply_settings(self._applied, old=readied_with)

    def _wake(self) -> None:
        self._last_activity = time.monotonic()
        self._step(Lifecycle("reconnect", at=self._last_activity))

    # ------------------------------------------------------------------ sending (loop)

    def _send(self, event: dict[str, Any]) -> bool:
        if not self._call.accepts_sends:
            return False
        event.setdefault("event_id", _new_id("evt"))
        message = json.dumps(event)
        size = len(message.encode("utf-8"))
        if size > MAX_MESSAGE_BYTES:
            self._local_error(
                f"A {event.get('type')} event of {size} bytes is over the "
                f"{MAX_MESSAGE_BYTES}-byte data-channel limit and was not sent."
            )
            return False
        self.events.record("client", event)
        sent = read_client_event(event)
        if isinstance(sent, ItemCreate):  # typed text, images, tool results
            self._feed(sent, time.monotonic())
        else:
            self._completed(self._clock.feed(sent, time.monotonic()))
        upstream = self._upstream
        if not (self._call.channel_open and self._agents_ready and upstream is not None and upstream.send(message)):
            item = sent.item if isinstance(sent, ItemCreate) else None
            output_for = item.call_id if item is not None and item.type == "function_call_output" else None
            item_id = item.id if item is not None else None
            self._pending.append(_Pending(message, str(event.get("type")), item_id, output_for))
        return True

    def _flush_pending(self) -> None:
        upstream = self._upstream
        while self._pending and self._agents_ready and upstream is not None and upstream.send(self._pending[0].message):
            self._pending.pop(0)

    def _send_text(self, text: str) -> None:
        self._last_activity = time.monotonic()
        if self._frame_policy().mode == "turn" and self._applied.camera.enabled and self._call.state == "connected":
            # a typed question, like a spoken one, goes with the frame of the moment it was asked
            self.throttle.nudge()
            self._spawn(self._frame_then_text(text))
        else:
            self._send_typed(text)

    def _typing_order(self) -> asyncio.Lock:
        """Messages typed in a row keep their order (a frame or an upload is prepared off the loop)."""
        if self._typing is None:
            self._typing = asyncio.Lock()
        return self._typing

    async def _frame_then_text(self, text: str) -> None:
        async with self._typing_order():
            try:
                await self._first_camera_frame()
                await self._send_camera_frame()
            finally:
                self._send_typed(text)

    async def _first_camera_frame(self) -> None:
        """Wait, until ``FIRST_FRAME_WAIT_S`` after Start, for the camera's first frame. Later, or once
        a frame came, it returns at once: a user without a camera waits only if they type at once."""
        deadline = self._started_at + FIRST_FRAME_WAIT_S
        while not self.throttle.has_frame and time.monotonic() < deadline and self._call.state == "connected":
            await asyncio.sleep(FIRST_FRAME_POLL_S)

    async def _send_upload(self, text: str, files: tuple[Upload, ...]) -> None:
        self._last_activity = time.monotonic()
        camera = self._applied.camera
        item_id = _new_id("msg")
        prepare = functools.partial(
            prepare_message, text, files, max_side=int(camera.max_side), detail=camera.detail, item_id=item_id
        )
        async with self._typing_order():
            prepared = await asyncio.get_running_loop().run_in_executor(None, prepare)
            self._send_prepared(prepared, item_id)

    def _send_prepared(self, prepared: PreparedMessage, item_id: str) -> None:
        camera = self._applied.camera
        for problem in prepared.problems:
            self._local_error(problem)
        if prepared.event is None:
            return
        if self._send(prepared.event):
            for image in uploaded_images(prepared.event, camera.detail):
                self.image_log.sent(image)
            if prepared.images:
                for old in self.images.added(item_id):
                    self._send({"type": "conversation.item.delete", "item_id": old})
            self._send({"type": "response.create"})
            self._wake_if_waiting()

    def _send_typed(self, text: str) -> None:
        item = {
            "id": _new_id("msg"),
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": text}],
        }
        self._send({"type": "conversation.item.create", "item": item})
        self._send({"type": "response.create"})
        self._wake_if_waiting()

    def _wake_if_waiting(self) -> None:
        """A message resumes a paused call, and retries one that could not reconnect."""
        if self._call.state in ("paused", "failed"):
            self._wake()

    def _interrupt(self) -> None:
        if self._call.state != "connected":
            return  # nothing is playing from a call that is not up (the voice was cleared already)
        if self._call.response_active:
            self._send({"type": "response.cancel"})
        self._send({"type": "output_audio_buffer.clear"})

    def _commit_and_respond(self) -> None:
        if self._send({"type": "input_audio_buffer.commit"}):
            self._send({"type": "response.create"})

    def _apply_settings(self, new: Settings, old: Settings | None = None) -> None:
        """Send ONE session.update for what the provider can take mid-call (``old``: what the call has)."""
        old, self._applied = (old or self._applied), new
        self.throttle.interval_s = self._frame_policy().interval(self._call.activity == "user_speaking")
        voice_fixed = "voice" in live_changes(old, new) and self._call.audio_started
        omit: tuple[str, ...] = ("model", "voice") if voice_fixed else ("model",)
        if self._agent is not None:  # instructions and tools are the agents'
            omit += ("instructions", "tools")
        tools = self._session_tools()
        session = new.session_payload(omit=omit, registry=tools)
        if session != old.session_payload(omit=omit, registry=tools) and self._call.state == "connected":
            # a call being opened gets the new settings in its own `session`
            self._send({"type": "session.update", "session": session})

    def _wake_camera(self) -> None:
        if self._camera_wake is not None:
            self._camera_wake.set()

    # ------------------------------------------------------------------ receiving (loop)

    def _on_message(self, upstream: UpstreamCall, message: str | bytes) -> None:
        try:
            raw = decode_message(message)
        except ValueError as exc:
            self._local_error(f"Ignored a malformed server event ({len(message)} bytes): {exc}")
            return
        if upstream is not self._upstream:
            if upstream is self._next:
                self.events.record("server", raw)  # the readied call's session.created, for the log
            return
        self.events.record("server", raw)
        self._last_event_at = time.monotonic()
        event = read_server_event(raw)
        if isinstance(event, Speech) and self._frame_policy().on_speech(event.phase):
            self.throttle.nudge()  # the frame of the moment the user speaks (if it changed)
            self._wake_camera()
        if self.tape is not None:
            if isinstance(event, Speech):
                self._kept(self.tape.speech(event.phase, event.item_id))
            elif isinstance(event, AudioBuffer):
                self._kept(self.tape.playback(event.phase, event.response_id))
        if isinstance(event, Unreadable):
            log.debug("unreadable server event %s: %s", event.type, event.reason)
        try:
            self._feed(event, time.monotonic())
            self._step(event)
        except Exception as exc:  # one bad event must not end the call
            log.exception("error handling server event %s", raw["type"])
            self._local_error(f"Could not handle server event {raw['type']}: {type(exc).__name__}: {exc}")

    def _completed(self, turns: tuple[TurnMetrics, ...]) -> None:
        for metrics in turns:
            self._turns = (*self._turns, metrics)
            self._notify(metrics)

    def _kept(self, clips: tuple[VoiceClip, ...]) -> None:
        for clip in clips:
            self._notify(clip)

    def _notify(self, update: BridgeUpdate) -> None:
        for fn in list(self._listeners):
            try:
                fn(update)
            except Exception:
                log.exception("bridge listener failed")

    # ------------------------------------------------------------------ tools (loop)

    async def _run_tool(self, call: RunTool) -> None:
        self._tools_running += 1
        try:
            output = await self.tools.run(call.name, call.arguments)
        finally:
            self._tools_running -= 1
        item = {"type": "function_call_output", "call_id": call.call_id, "output": output}
        if self._send({"type": "conversation.item.create", "item": item}):
            # let the model answer with the result (after any response still running ends)
            self._send({"type": "response.create"})

    # ------------------------------------------------------------------ camera (loop)

    async def _camera_loop(self) -> None:
        assert self._camera_wake is not None
        while True:
            try:
                await asyncio.wait_for(self._camera_wake.wait(), CAMERA_TICK_S)
            except TimeoutError:
                pass
            self._camera_wake.clear()
            await self._send_camera_frame()

    def _frame_policy(self) -> FramePolicy:
        camera = self._applied.camera
        return FramePolicy(camera.policy, float(camera.interval_s))

    async def _send_camera_frame(self) -> None:
        """Send the latest camera frame if the throttle says it is due (the policy sets its pace).
        The camera tick and a typed question both ask: one at a time, so a frame goes once."""
        if self._framing is None:
            self._framing = asyncio.Lock()
        async with self._framing:
            await self._send_due_frame()

    async def _send_due_frame(self) -> None:
        loop = asyncio.get_running_loop()
        camera = self._applied.camera
        if self._call.state != "connected" or not self.throttle.has_frame:
            return
        sharing = self.sharing_screen
        if not (camera.enabled or sharing) and not self.throttle.force_pending:  # "send now" works always
            return
        self.throttle.interval_s = self._frame_policy().interval(self._call.activity == "user_speaking")
        frame = await loop.run_in_executor(None, self.throttle.due)
        if frame is None:
            return
        item_id = _new_id("img")
        try:
            encode = functools.partial(
                encode_frame, frame, max_side=int(camera.max_side), detail=camera.detail, item_id=item_id
            )
            encoded = await loop.run_in_executor(None, encode)
        except ValueError as exc:
            self._local_error(f"Camera frame not sent: {exc}")
            return
        if self._send(encoded.item_event):
            self.image_log.sent(
                SentImage(
                    item_id,
                    time.time(),
                    "screen" if sharing else "camera",
                    encoded.width,
                    encoded.height,
                    len(encoded.jpeg),
                    camera.detail,
                    encoded.thumbnail,
                )
            )
            for old in self.images.added(item_id):
                self._send({"type": "conversation.item.delete", "item_id": old})

    # ------------------------------------------------------------------ stats (loop)

    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(STATS_INTERVAL_S)
            voice, mic = self.voice.stats(), self.mic.stats()
            self._watch_load(time.monotonic(), voice, mic)
            upstream = self._upstream
            if upstream is None or upstream.pc is None:
                continue
            try:
                report = await upstream.pc.getStats()
            except Exception:  # stats are best effort
                continue
            self._rtc = read_rtc_stats(report, voice, mic, upstream.codec)
            self._completed(self._clock.tick(time.monotonic()))  # spoken turns whose audio never started

    def _watch_load(self, now: float, voice: VoiceStats, mic: MicStats) -> None:
        """Feed the overload watch what the media path counted; note in the log when it changes."""
        from realtime.voice_source import voice_track  # here: it pulls in streamlit-webrtc

        track = voice_track(self.voice.audio_out)
        sample = LoadSample(
            at=now,
            loop=bg.behind_s(),
            leg=track.late_s if track is not None else 0.0,
            voice=voice.starved_ms / 1000,
            mic=mic.late_ms / 1000,
        )
        change = self._load.feed(sample, live=self._call.state == "connected")
        self._overloaded = self._load.reason
        if isinstance(change, Tripped):
            why = change.overload
            log.warning("audio degraded on %s: %s", self._call.call_id, why.reason)
            self.events.record("local", {"type": "local.overloaded", "signal": why.signal, "reason": why.reason})
        elif isinstance(change, Cleared):
            log.info("audio recovered on %s after %.0f s", self._call.call_id, change.lasted_s)
            self.events.record("local", {"type": "local.overload_cleared", "lasted_s": round(change.lasted_s, 1)})

    # ------------------------------------------------------------------ errors

    def _secrets(self) -> tuple[str, ...]:
        conn = self._upstream.connection if self._upstream is not None else None
        return tuple(k for k in (self.settings.api_key, conn.api_key if conn else None) if k)

    def _local_error(self, message: str) -> None:
        """An error the page should show that did not come from the provider."""
        log.warning("bridge: %s", message)
        self._notify(self.transcript.add_system_note(message, role="error"))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------------ close (loop)

    async def _close(self) -> None:
        self._step(Lifecycle("close_requested", at=time.monotonic()))
        opening = self._opening
        if opening is not None and not opening.done():
            # a call is being placed: let calls.create finish (so we learn the call id and can
            # hang up) but not longer than the hangup budget
            try:
                await asyncio.wait_for(asyncio.shield(opening), HANGUP_TIMEOUT_S)
            except Exception:
                opening.cancel()
        await self._teardown()
        if self.tape is not None:  # before CallEnded: the last words are part of the record
            self._kept(self.tape.close())
        self._step(Lifecycle("closed", at=time.monotonic()))

    async def _teardown(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            await link.close()
        # until none is left: a task being cancelled may start another (a tool's reply, an agent's close)
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for upstream in (self._next, self._upstream):
            self._retire(upstream)
        self._next = None
        while self._retiring:
            await asyncio.gather(*list(self._retiring), return_exceptions=True)
        self.mic.stop()
