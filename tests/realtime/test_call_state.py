"""realtime.call_state: the call's state as a fold, tested without any IO."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from realtime.call_state import (
    Act,
    CallCreated,
    CallState,
    Effect,
    Failure,
    ForgetImage,
    Lifecycle,
    RunTool,
    Signal,
    TellEnded,
    transition,
)
from realtime.errors import BridgeError
from realtime.events import (
    AudioBuffer,
    ErrorInfo,
    FunctionArgsDone,
    Item,
    ItemDeleted,
    OtherEvent,
    OutputDelta,
    ProviderError,
    ResponseCreated,
    ResponseDone,
    ResponseInfo,
    Speech,
    Unreadable,
)
from realtime.updates import CallEnded

CONNECT, OPENED, CHANNEL_CLOSED = Lifecycle("connect"), Lifecycle("channel_opened"), Lifecycle("channel_closed")
PEER_CLOSED, CLOSE, CLOSED = Lifecycle("peer_closed"), Lifecycle("close_requested"), Lifecycle("closed")
BAD_KEY = BridgeError("auth", "The provider rejected the API key (401).", 401)
ICE = BridgeError("connection", "The connection to the realtime server failed (ICE/DTLS).")
LATE = BridgeError("connection", "No media connection after 20 s.")


def run(*signals: Signal, state: CallState | None = None, secrets: tuple[str, ...] = ()):
    """Fold the signals in; returns the last state and every effect, in order."""
    state = state or CallState()
    effects: list[Effect] = []
    for signal in signals:
        state, out = transition(state, signal, secrets=secrets)
        effects.extend(out)
    return state, effects


def connected() -> CallState:
    state, _ = run(CONNECT, CallCreated("rtc_1"), OPENED)
    return state


def test_a_call_connects_then_closes_and_says_so_once():
    state, effects = run(CONNECT)
    assert (state.state, state.activity, state.accepts_sends, state.channel_open) == ("connecting", "idle", True, False)
    state, effects = run(CallCreated("rtc_1"), OPENED, state=state)
    assert (state.state, state.activity, state.call_id, state.channel_open) == ("connected", "listening", "rtc_1", True)
    assert effects == [Act("flush_pending")]
    state, effects = run(CLOSE, state=state)
    assert state.closing and not state.accepts_sends and effects == []
    state, effects = run(CHANNEL_CLOSED, PEER_CLOSED, CLOSED, state=state)  # a close of our own
    assert (state.state, state.activity) == ("closed", "idle")
    assert effects == [TellEnded(CallEnded("closed"))]
    state, effects = run(CLOSED, PEER_CLOSED, state=state)
    assert effects == []  # told once


def test_events_before_connect_wait_for_the_channel():
    state, _ = run()
    assert state.state == "idle" and state.accepts_sends and not state.channel_open


def test_a_failed_connect_fails_the_call_and_a_later_close_keeps_the_reason():
    state, effects = run(CONNECT, Failure(BAD_KEY, "setup"))
    assert (state.state, state.activity, state.error) == ("failed", "idle", BAD_KEY)
    assert effects == [TellEnded(CallEnded("failed", BAD_KEY.message))]
    state, effects = run(CLOSE, CLOSED, state=state)
    assert (state.state, state.error, effects) == ("failed", BAD_KEY, [])


def test_the_peer_failing_mid_call_fails_it_but_not_during_our_own_close():
    state, effects = run(Failure(ICE, "peer"), state=connected())
    assert state.state == "failed" and effects == [TellEnded(CallEnded("failed", ICE.message))]
    state, effects = run(CLOSE, Failure(ICE, "peer"), PEER_CLOSED, state=connected())
    assert (state.state, state.error, effects) == ("connected", None, [])


def test_the_provider_closing_the_channel_or_peer_closes_the_call():
    for signal in (CHANNEL_CLOSED, PEER_CLOSED):
        state, effects = run(signal, state=connected())
        assert state.state == "closed" and effects == [TellEnded(CallEnded("closed"))]


def test_the_connect_deadline_only_fails_a_call_still_connecting():
    state, effects = run(CONNECT, Failure(LATE, "deadline"))
    assert state.state == "failed" and state.error == LATE
    assert effects == [Act("close_soon"), TellEnded(CallEnded("failed", LATE.message))]
    state, effects = run(Failure(LATE, "deadline"), state=connected())
    assert (state.state, effects) == ("connected", [])


def test_activity_follows_speech_and_playback():
    state, effects = run(Speech("started"), state=connected())
    assert state.activity == "user_speaking" and effects == [Act("clear_voice")]  # barge-in
    state, _ = run(Speech("stopped"), state=state)
    assert state.activity == "listening"
    state, _ = run(ResponseCreated("r1"), state=state)
    assert state.response_active and not state.audio_started
    state, _ = run(AudioBuffer("started", "r1"), state=state)
    assert (state.activity, state.audio_started) == ("assistant_speaking", True)
    state, _ = run(AudioBuffer("cleared", "r1"), ResponseDone(ResponseInfo("r1", "cancelled")), state=state)
    assert (state.activity, state.response_active) == ("listening", False)


def test_an_audio_transcript_fixes_the_voice_text_does_not():
    state, _ = run(OutputDelta("text", "a1", "r1", "Hi"), state=connected())
    assert not state.audio_started
    state, _ = run(OutputDelta("audio", "a1", "r1", "Hi"), state=state)
    assert state.audio_started


def test_each_tool_call_runs_once_whichever_event_names_it_first():
    call = Item("function_call", id="fc1", call_id="c1", name="delayed_add", arguments='{"a": 1}')
    other = Item("function_call", id="fc2", call_id="c2", name="echo_upper", arguments='{"text": "x"}')
    state, effects = run(
        FunctionArgsDone("fc1", "c1", "delayed_add", '{"a": 1}'),
        FunctionArgsDone("fc1", "c1", "delayed_add", '{"a": 1}'),
        ResponseDone(ResponseInfo("r1", "completed", (call, other))),
        state=connected(),
    )
    assert effects == [RunTool("c1", "delayed_add", '{"a": 1}'), RunTool("c2", "echo_upper", '{"text": "x"}')]
    assert state.tools_started == {"c1", "c2"}
    _, effects = run(FunctionArgsDone("fc3", None, "echo_upper", "{}"), state=state)
    assert effects == []  # no call id: nothing to answer to


def test_provider_errors_are_shown_without_ending_the_call_and_without_secrets():
    secret = "sk-test-abcdefghijklmnop"
    error = ErrorInfo("invalid_request_error", "bad_param", f"Key {secret} is odd")
    state, effects = run(ProviderError(error, "ev_1"), state=connected(), secrets=(secret,))
    assert state.state == "connected" and effects == []
    assert state.error is not None and state.error.kind == "config" and secret not in state.error.message
    failed = ResponseInfo("r1", "failed", error=ErrorInfo("server_error", "boom", "It broke"))
    state, _ = run(ResponseDone(failed), state=connected())
    assert state.state == "connected" and state.error is not None and "It broke" in state.error.message


def test_a_deleted_item_leaves_the_image_window():
    _, effects = run(ItemDeleted("img_1"), state=connected())
    assert effects == [ForgetImage("img_1")]


def test_events_it_has_no_use_for_change_nothing():
    state = connected()
    for signal in (OtherEvent("rate_limits.updated"), Unreadable("response.done", "response is not an object")):
        assert transition(state, signal) == (state, ())


_signals = st.sampled_from(
    [
        CONNECT,
        CallCreated("rtc_1"),
        OPENED,
        CHANNEL_CLOSED,
        PEER_CLOSED,
        Failure(ICE, "peer"),
        Failure(BAD_KEY, "setup"),
        Failure(LATE, "deadline"),
        CLOSE,
        CLOSED,
        Speech("started"),
        AudioBuffer("started", "r1"),
        ProviderError(ErrorInfo("server_error"), None),
    ]
)


@given(st.lists(_signals, max_size=30))
def test_any_sequence_ends_at_most_once_and_never_comes_back(signals):
    state = CallState()
    told = 0
    was_over = False
    for signal in signals:
        state, effects = transition(state, signal)
        told += sum(isinstance(e, TellEnded) for e in effects)
        if was_over:
            assert state.over and not state.accepts_sends
        was_over = was_over or state.over
        assert state.ended_told == was_over
    assert told == (1 if was_over else 0)
