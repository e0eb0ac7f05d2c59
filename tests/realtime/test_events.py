"""realtime.events: the one reading of provider events. Names come from the SDK; reading never raises."""

from __future__ import annotations

import json
import typing

import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai.types.realtime import RealtimeServerEvent

from realtime.events import (
    READ_TYPES,
    AudioBuffer,
    AudioDelta,
    ContentPart,
    ErrorInfo,
    FunctionArgsDone,
    InputCommitted,
    InputTranscript,
    Item,
    ItemCreate,
    ItemUpdate,
    OtherEvent,
    OutputDelta,
    OutputDone,
    ProviderError,
    ResponseDone,
    Speech,
    Unreadable,
    decode_message,
    read_client_event,
    read_server_event,
)
from realtime.usage import UsageTotals

_server = pydantic.TypeAdapter(RealtimeServerEvent)

BETA_NAMES = {
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "response.audio.delta": "response.output_audio.delta",
}


def _sdk_server_types() -> set[str]:
    union = typing.get_args(RealtimeServerEvent)[0]  # Annotated[Union[...], discriminator]
    names: set[str] = set()
    for model in typing.get_args(union):
        names.update(typing.get_args(model.model_fields["type"].annotation))
    return names


def test_every_ga_name_read_is_the_sdks():
    sdk = _sdk_server_types()
    assert len(sdk) > 40
    ga = READ_TYPES - set(BETA_NAMES)
    assert ga <= sdk, f"not server events in the pinned SDK: {sorted(ga - sdk)}"
    assert not set(BETA_NAMES) & sdk  # the beta names are gone from the GA schema
    assert set(BETA_NAMES.values()) <= READ_TYPES


def S(type_: str, **fields) -> dict:
    event = {"type": type_, "event_id": "ev_1", **fields}
    _server.validate_python(event)
    return event


DELTA = {"item_id": "a1", "response_id": "r1", "output_index": 0, "content_index": 0}
USAGE = {
    "total_tokens": 30,
    "input_tokens": 20,
    "output_tokens": 10,
    "input_token_details": {"text_tokens": 20},
    "output_token_details": {"audio_tokens": 10},
}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (S("input_audio_buffer.speech_stopped", audio_end_ms=900, item_id="u1"), Speech("stopped", "u1")),
        (
            S("input_audio_buffer.committed", item_id="u1", previous_item_id="a0"),
            InputCommitted("u1", "a0"),
        ),
        (
            S(
                "conversation.item.input_audio_transcription.completed",
                item_id="u1",
                content_index=0,
                transcript=" hello there ",
                usage={"type": "duration", "seconds": 1.0},
            ),
            InputTranscript("u1", "hello there", done=True),
        ),
        (S("response.output_text.delta", delta="Hi", **DELTA), OutputDelta("text", "a1", "r1", "Hi")),
        (
            S("response.output_audio_transcript.delta", delta="Hi", **DELTA),
            OutputDelta("audio", "a1", "r1", "Hi"),
        ),
        (
            S("response.output_audio_transcript.done", transcript="Hi there", **DELTA),
            OutputDone("audio", "a1", "r1", "Hi there"),
        ),
        (S("response.output_audio.delta", delta="AAAA", **DELTA), AudioDelta("r1", "AAAA")),
        (S("output_audio_buffer.started", response_id="r1"), AudioBuffer("started", "r1")),
        (S("output_audio_buffer.cleared", response_id="r1"), AudioBuffer("cleared", "r1")),
        (
            S(
                "response.function_call_arguments.done",
                response_id="r1",
                item_id="fc1",
                output_index=0,
                call_id="c1",
                name="delayed_add",
                arguments='{"a": 2, "b": 5}',
            ),
            FunctionArgsDone("fc1", "c1", "delayed_add", '{"a": 2, "b": 5}'),
        ),
        (
            S("error", error={"type": "invalid_request_error", "code": "bad", "message": "No.", "param": "x"}),
            ProviderError(ErrorInfo("invalid_request_error", "bad", "No.", "x"), "ev_1"),
        ),
        (S("session.updated", session={"type": "realtime"}), OtherEvent("session.updated")),
    ],
)
def test_sdk_valid_events_read_into_their_values(raw, expected):
    assert read_server_event(raw) == expected


def test_items_and_responses_are_typed():
    user = {
        "id": "u1",
        "type": "message",
        "role": "user",
        "status": "completed",
        "content": [
            {"type": "input_text", "text": "look"},
            {"type": "input_image", "image_url": "data:image/jpeg;base64,AAAA"},
            {"type": "input_audio", "transcript": None},
        ],
    }
    added = read_server_event(S("conversation.item.added", item=user, previous_item_id=None))
    assert added == ItemUpdate(
        Item(
            "message",
            id="u1",
            role="user",
            status="completed",
            content=(
                ContentPart("text", text="look"),
                ContentPart("image", image_url="data:image/jpeg;base64,AAAA"),
                ContentPart("audio"),
            ),
        ),
        done=False,
    )
    output = read_server_event(S("response.output_item.done", item=user, response_id="r1", output_index=0))
    assert output == ItemUpdate(added.item, done=True, response_id="r1")
    call = {"id": "fc1", "type": "function_call", "call_id": "c1", "name": "echo_upper", "arguments": "{}"}
    audio = {"id": "a1", "type": "message", "role": "assistant", "content": [{"type": "output_audio"}]}
    done = read_server_event(
        S("response.done", response={"id": "r1", "status": "completed", "output": [call, audio], "usage": USAGE})
    )
    assert isinstance(done, ResponseDone)
    response = done.response
    assert (response.id, response.status, response.error) == ("r1", "completed", None)
    assert [i.call_id for i in response.function_calls] == ["c1"]
    assert response.has_audio
    assert response.usage == UsageTotals(input_text=20, output_audio=10, responses=1)
    failed = read_server_event(
        S(
            "response.done",
            response={
                "id": "r2",
                "status": "failed",
                "status_details": {"type": "failed", "error": {"type": "server_error", "code": "boom"}},
            },
        )
    )
    assert isinstance(failed, ResponseDone)
    assert failed.response.error == ErrorInfo("server_error", "boom", None, None)
    assert failed.response.usage == UsageTotals(responses=1)  # counted even without usage


@pytest.mark.parametrize(
    ("beta", "ga"), [*sorted(BETA_NAMES.items()), ("conversation.item.created", "conversation.item.added")]
)
def test_beta_names_read_as_their_ga_twins(beta, ga):
    item = {"id": "a1", "type": "message", "role": "assistant", "content": []}
    fields = {"item_id": "a1", "response_id": "r1", "delta": "x", "text": "t", "transcript": "t", "item": item}
    assert read_server_event({"type": beta, **fields}) == read_server_event({"type": ga, **fields})


@pytest.mark.parametrize(
    "raw",
    [
        "not a dict",
        None,
        {},
        {"type": 5},
        {"type": "response.output_text.delta"},  # no item_id, no delta
        {"type": "conversation.item.added", "item": "nope"},
        {"type": "response.done", "response": 5},
        {"type": "conversation.item.deleted", "item_id": 7},
        {"type": "response.done", "response": {"output": [{"type": "message", "content": ["x"]}]}},
    ],  # an "error" event without an error object is read (ProviderError(None, ...)): see test_errors
)
def test_malformed_events_are_unreadable_not_raised(raw):
    event = read_server_event(raw)
    assert isinstance(event, Unreadable)
    assert event.type == (raw.get("type") if isinstance(raw, dict) and isinstance(raw.get("type"), str) else None)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=12,
)


@given(
    st.sampled_from(sorted(READ_TYPES)),
    st.dictionaries(
        st.sampled_from(
            [
                "item_id",
                "response_id",
                "delta",
                "item",
                "response",
                "error",
                "call_id",
                "name",
                "arguments",
                "transcript",
            ]
        ),
        _json,
        max_size=6,
    ),
)
def test_reading_any_json_never_raises(kind, fields):
    read_server_event({"type": kind, **fields})


def test_client_item_create_is_read_too():
    sent = {
        "type": "conversation.item.create",
        "item": {"type": "function_call_output", "call_id": "c1", "output": '{"result": 7}'},
    }
    assert read_client_event(sent) == ItemCreate(
        Item("function_call_output", call_id="c1", output='{"result": 7}'), None
    )
    assert read_client_event({"type": "response.create"}) == OtherEvent("response.create")
    assert isinstance(read_client_event({"type": "conversation.item.create"}), Unreadable)


def test_decode_message_takes_only_json_objects_with_a_type():
    assert decode_message(json.dumps({"type": "x", "a": 1})) == {"type": "x", "a": 1}
    for bad in ("{not json", "[1, 2]", '{"no": "type"}', b'{"type": 3}'):
        with pytest.raises(ValueError):
            decode_message(bad)
