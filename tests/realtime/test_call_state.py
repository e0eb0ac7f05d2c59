"""realtime.call_state: the call's state as a fold, tested without any IO."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from realtime.call_state import (
    PAUSE_NOTE,
    Act,
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


def delay_of(effects) -> float:
    reconnect = effects[-1]
    assert isinstance(reconnect, Reconnect)
    return reconnect.delay_s


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


def test_the_peer_failing_mid_call_reconnects_but_not_during_our_own_close():
    state, effects = run(Failure(ICE, "peer", at=5.0), state=connected())
    assert state.state == "reconnecting" and state.accepts_sends and not state.channel_open
    assert effects == [Note(f"Connection lost \u2014 reconnecting\u2026 ({ICE.message})"), Reconnect(1, 0.0)]
    state, effects = run(CLOSE, Failure(ICE, "peer"), PEER_CLOSED, state=connected())
    assert (state.state, state.error, effects) == ("connected", None, [])


def test_the_provider_ending_the_call_reconnects_and_restores_it():
    for signal in (CHANNEL_CLOSED, PEER_CLOSED):
        state, effects = run(Lifecycle(signal.kind, at=10.0), state=connected())
        assert state.state == "reconnecting" and state.call_id is None and effects[-1] == Reconnect(1, 0.0)
        assert not any(isinstance(e, TellEnded) for e in effects)  # History keeps one conversation
        state, effects = run(CallCreated("rtc_2"), Lifecycle("channel_opened", at=11.5), state=state)
        assert (state.state, state.call_id, state.reconnects, state.attempt) == ("connected", "rtc_2", 1, 0)
        assert effects == [Restore("reconnect", "the realtime server ended the call", 1.5, 1), Act("flush_pending")]


def test_the_session_cap_is_named_as_the_reason():
    cap = ErrorInfo("invalid_request_error", "session_expired", "Your session hit the maximum duration of 60 minutes.")
    state, _ = run(ProviderError(cap, "evt_1"), CHANNEL_CLOSED, state=connected())
    assert state.state == "reconnecting" and "maximum duration of 60 minutes" in state.lost_reason
    state, _ = run(OPENED, state=state)
    assert state.error is None  # the page stops showing the cap as an error once the call is back


def test_failed_attempts_back_off_then_give_up_and_wait_for_reconnect():
    policy = ReconnectPolicy(max_attempts=4, base_delay_s=0.5, max_delay_s=1.0, per_minute=100)
    down = BridgeError("connection", "The realtime provider did not answer in time.")
    state, effects = transition(connected(), Lifecycle("channel_closed", at=0.0), policy=policy)
    delays = [delay_of(effects)]
    for at in (1.0, 2.0, 3.0):
        state, effects = transition(state, Failure(down, "setup", at=at), policy=policy)
        delays.append(delay_of(effects))
    assert delays == [0.0, 0.5, 1.0, 1.0]
    state, effects = transition(state, Failure(down, "setup", at=4.0), policy=policy)
    assert state.state == "failed" and state.reconnectable and state.accepts_sends
    assert state.error is not None and state.error.message == f"Could not reconnect: {down.message}"
    assert list(effects) == [Note(state.error.message, "error")]  # no CallEnded: Reconnect may still be pressed
    state, effects = transition(state, Lifecycle("reconnect", at=30.0), policy=policy)
    assert (state.state, state.error, list(effects)) == ("reconnecting", None, [Reconnect(1, 0.0)])
    state, effects = run(CLOSE, CLOSED, state=state)  # Stop while reconnecting ends the conversation
    assert (state.state, effects) == ("closed", [TellEnded(CallEnded("closed"))])


def test_a_wrong_key_on_reconnect_gives_up_at_once():
    state, _ = run(CHANNEL_CLOSED, state=connected())
    state, _ = run(Failure(BAD_KEY, "setup", at=1.0), state=state)
    assert state.state == "failed" and state.error is not None and state.error.kind == "auth"
    assert state.error.message == f"Could not reconnect: {BAD_KEY.message}" and state.reconnectable


def test_attempts_are_bounded_per_minute_across_outages():
    """A call that drops right after each reconnect does not hammer the provider."""
    policy = ReconnectPolicy(per_minute=3)
    state, at, delays = connected(), 0.0, []
    for _ in range(5):
        state, effects = transition(state, Lifecycle("channel_closed", at=at), policy=policy)
        delay = delay_of(effects)
        delays.append(delay)
        at += delay + 0.1
        state, _ = transition(state, Lifecycle("channel_opened", at=at), policy=policy)
        at += 0.1
    assert delays[:3] == [0.0, 0.0, 0.0] and delays[3] > 59.0  # the 4th waits for the minute to pass
    times = sorted(state.attempt_times)
    assert all(times[i + 3] - times[i] >= 60.0 for i in range(len(times) - 3))


def test_an_attempt_that_fails_to_connect_in_time_tries_again():
    state, _ = run(CHANNEL_CLOSED, state=connected())
    state, effects = run(Failure(LATE, "deadline", at=20.0), state=state)
    assert state.state == "reconnecting" and state.attempt == 2 and effects == [Reconnect(2, 0.5)]


def test_a_first_connect_that_fails_still_fails_for_good():
    state, effects = run(CONNECT, Failure(BAD_KEY, "setup"))
    assert state.state == "failed" and not state.reconnectable and not state.accepts_sends
    assert effects == [TellEnded(CallEnded("failed", BAD_KEY.message))]


def test_an_idle_call_pauses_and_resumes_with_its_context():
    state, effects = run(Lifecycle("pause", at=600.0), state=connected())
    assert (state.state, state.call_id, state.accepts_sends) == ("paused", None, True)
    assert effects == [Act("drop_call"), Note(PAUSE_NOTE)]
    state, effects = run(PEER_CLOSED, CHANNEL_CLOSED, state=state)  # the hang-up of the paused call
    assert state.state == "paused" and effects == []
    state, effects = run(Lifecycle("reconnect", at=700.0), state=state)
    assert state.state == "reconnecting" and effects == [Reconnect(1, 0.0)]
    state, effects = run(CallCreated("rtc_2"), Lifecycle("channel_opened", at=700.75), state=state)
    assert state.state == "connected" and effects[0] == Restore("resume", "resumed", 0.75, 1)
    # a pause is only for a connected call
    for other in (CallState(), run(CONNECT)[0]):
        assert transition(other, Lifecycle("pause")) == (other, ())


def test_a_rollover_keeps_the_call_connected_and_frees_the_voice():
    state, _ = run(AudioBuffer("started", "r1"), state=connected())
    assert state.audio_started
    state, effects = run(CallCreated("rtc_2"), Lifecycle("rolled_over", at=3300.0), state=state)
    assert (state.state, state.call_id, state.audio_started, state.reconnects, effects) == (
        "connected",
        "rtc_2",
        False,
        1,
        [],
    )


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
        Lifecycle("reconnect"),
        Lifecycle("pause"),
        Lifecycle("rolled_over"),
        CLOSE,
        CLOSED,
        Speech("started"),
        AudioBuffer("started", "r1"),
        ProviderError(ErrorInfo("server_error"), None),
    ]
)


@given(st.lists(_signals, max_size=30))
def test_any_sequence_ends_at_most_once_and_never_comes_back(signals):
    """CallEnded is told at most once, and after it nothing is sent and no call is opened again."""
    state = CallState()
    told = 0
    for signal in signals:
        state, effects = transition(state, signal)
        told += sum(isinstance(e, TellEnded) for e in effects)
        if told:
            assert state.over and not state.accepts_sends and state.ended_told
            assert not any(isinstance(e, Reconnect | Restore) for e in effects)
        if state.closing:
            assert not any(isinstance(e, Reconnect) for e in effects)
    assert told <= 1
