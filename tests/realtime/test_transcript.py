"""Transcript: a sans-IO fold over typed events. Every event fed here is first validated against the
SDK's models (GA names), except the beta-named ones, which the SDK no longer describes, and then read
by ``realtime.events`` as the bridge reads it."""

from __future__ import annotations

import base64
import io
import itertools
import threading

import pydantic
import pytest
from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent
from PIL import Image

from realtime.events import ItemCreate, ServerEvent, read_client_event, read_server_event
from realtime.transcript import TRANSCRIPTION_FAILED_TEXT, Transcript, TranscriptItem

_server = pydantic.TypeAdapter(RealtimeServerEvent)
_client = pydantic.TypeAdapter(RealtimeClientEvent)
_ids = itertools.count(1)


def S(type_: str, **fields) -> ServerEvent:
    """A server event, validated against the SDK, as the bridge reads it."""
    event = {"type": type_, "event_id": f"ev_{next(_ids)}", **fields}
    _server.validate_python(event)
    return read_server_event(event)


def C(type_: str, **fields) -> ItemCreate:
    """A client conversation.item.create, validated against the SDK, as the bridge reads it."""
    event = {"type": type_, **fields}
    _client.validate_python(event)
    read = read_client_event(event)
    assert isinstance(read, ItemCreate)
    return read


def user_audio(item_id, transcript=None):
    return {
        "id": item_id,
        "type": "message",
        "role": "user",
        "status": "completed",
        "object": "realtime.item",
        "content": [{"type": "input_audio", "transcript": transcript}],
    }


def assistant(item_id, status="in_progress", content=()):
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": status,
        "object": "realtime.item",
        "content": list(content),
    }


def added(item, prev=None):
    return S("conversation.item.added", item=item, previous_item_id=prev)


def done(item, prev=None):
    return S("conversation.item.done", item=item, previous_item_id=prev)


def delta(kind, item_id, text, response_id="resp_1"):
    t = {"audio": "response.output_audio_transcript.delta", "text": "response.output_text.delta"}[kind]
    return S(t, item_id=item_id, response_id=response_id, output_index=0, content_index=0, delta=text)


def jpeg_data_url(rgb=(0, 0, 255), size=(320, 240)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, rgb).save(buf, format="JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()


def by_id(t: Transcript) -> dict[str, TranscriptItem]:
    return {i.id: i for i in t.snapshot()}


def ids(t: Transcript) -> list[str]:
    return [i.id for i in t.snapshot()]


# --- user speech -------------------------------------------------------------------------------


def test_spoken_turn_user_transcript_then_assistant_audio_transcript():
    t = Transcript()
    t.apply(S("input_audio_buffer.committed", item_id="u1", previous_item_id=None))
    t.apply(added(user_audio("u1")))
    t.apply(done(user_audio("u1")))
    (u,) = t.snapshot()
    assert (u.role, u.kind, u.text, u.final) == ("user", "audio", "", False)  # transcription pending

    t.apply(S("conversation.item.input_audio_transcription.delta", item_id="u1", content_index=0, delta="what "))
    t.apply(S("conversation.item.input_audio_transcription.delta", item_id="u1", content_index=0, delta="colour"))
    assert by_id(t)["u1"].text == "what colour" and not by_id(t)["u1"].final

    t.apply(added(assistant("a1"), prev="u1"))
    t.apply(delta("audio", "a1", "It is "))
    t.apply(delta("audio", "a1", "blue"))
    a = by_id(t)["a1"]
    assert (a.role, a.kind, a.text, a.final) == ("assistant", "audio", "It is blue", False)

    newly = t.apply(
        S(
            "conversation.item.input_audio_transcription.completed",
            item_id="u1",
            content_index=0,
            transcript=" What colour is this? ",
            usage={"type": "duration", "seconds": 1.2},
        )
    )
    assert [i.id for i in newly] == ["u1"]
    assert by_id(t)["u1"].text == "What colour is this?" and by_id(t)["u1"].final

    newly = t.apply(
        S(
            "response.output_audio_transcript.done",
            item_id="a1",
            response_id="resp_1",
            output_index=0,
            content_index=0,
            transcript="It is blue.",
        )
    )
    assert [(i.id, i.text, i.final) for i in newly] == [("a1", "It is blue.", True)]
    assert ids(t) == ["u1", "a1"]
    # later events about a final item change nothing visible
    t.apply(done(assistant("a1", "completed", [{"type": "output_audio", "transcript": "It is blue."}]), prev="u1"))
    assert by_id(t)["a1"].text == "It is blue."


def test_without_transcription_user_audio_is_final_at_once():
    t = Transcript(expect_input_transcripts=False)
    newly = t.apply(added(user_audio("u1")))
    assert [(i.id, i.kind, i.final) for i in newly] == [("u1", "audio", True)]


def test_transcription_failed_finalizes_with_a_note():
    t = Transcript()
    t.apply(added(user_audio("u1")))
    newly = t.apply(
        S(
            "conversation.item.input_audio_transcription.failed",
            item_id="u1",
            content_index=0,
            error={"message": "bad audio", "type": "transcription_error"},
        )
    )
    assert [(i.text, i.final) for i in newly] == [(TRANSCRIPTION_FAILED_TEXT, True)]


def test_transcript_in_item_content_is_used():
    t = Transcript()
    t.apply(done(user_audio("u1", transcript="hello")))
    assert (by_id(t)["u1"].text, by_id(t)["u1"].final) == ("hello", True)


# --- assistant text ----------------------------------------------------------------------------


def test_text_reply_deltas_then_done():
    t = Transcript()
    t.apply(added(assistant("a1")))
    t.apply(delta("text", "a1", "Sev"))
    t.apply(delta("text", "a1", "en"))
    assert (by_id(t)["a1"].kind, by_id(t)["a1"].text, by_id(t)["a1"].final) == ("text", "Seven", False)
    t.apply(
        S(
            "response.output_text.done",
            item_id="a1",
            response_id="resp_1",
            output_index=0,
            content_index=0,
            text="Seven.",
        )
    )
    assert (by_id(t)["a1"].text, by_id(t)["a1"].final) == ("Seven.", True)


def test_the_revision_moves_with_every_change_and_only_then():
    """The page's live transcript reruns when the revision moves (ui.pulse): reading must not move it."""
    t = Transcript()
    seen = [t.revision]
    t.apply(added(assistant("a1")))
    seen.append(t.revision)
    t.snapshot()
    t.snapshot()
    seen.append(t.revision)
    t.apply(delta("text", "a1", "Hi"))
    seen.append(t.revision)
    t.apply(S("session.updated", session={"type": "realtime"}))  # not a transcript event: ignored
    seen.append(t.revision)
    t.add_system_note("Reconnected")
    seen.append(t.revision)
    assert t.cut_short("(cut)", "(not heard)")  # the reply in progress ends
    seen.append(t.revision)
    assert t.cut_short("(cut)", "(not heard)") == ()  # nothing left to cut
    seen.append(t.revision)
    assert seen == [0, 1, 1, 2, 2, 3, 4, 4]


def test_beta_event_names_are_accepted():
    t = Transcript()

    def apply(raw: dict) -> None:
        t.apply(read_server_event(raw))

    apply(
        {
            "type": "conversation.item.created",
            "event_id": "e1",
            "previous_item_id": None,
            "item": {"id": "a1", "type": "message", "role": "assistant", "status": "in_progress", "content": []},
        }
    )
    apply(
        {
            "type": "response.audio_transcript.delta",
            "event_id": "e2",
            "item_id": "a1",
            "response_id": "r",
            "output_index": 0,
            "content_index": 0,
            "delta": "Hi",
        }
    )
    apply(
        {
            "type": "response.audio_transcript.done",
            "event_id": "e3",
            "item_id": "a1",
            "response_id": "r",
            "output_index": 0,
            "content_index": 0,
            "transcript": "Hi!",
        }
    )
    apply(
        {
            "type": "response.text.delta",
            "event_id": "e4",
            "item_id": "a2",
            "response_id": "r",
            "output_index": 1,
            "content_index": 0,
            "delta": "typed",
        }
    )
    apply(
        {
            "type": "response.text.done",
            "event_id": "e5",
            "item_id": "a2",
            "response_id": "r",
            "output_index": 1,
            "content_index": 0,
            "text": "typed.",
        }
    )
    # beta content part names: "text" / "audio"
    apply(
        {
            "type": "conversation.item.created",
            "event_id": "e6",
            "previous_item_id": "a2",
            "item": {
                "id": "a3",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "audio", "transcript": "beta audio"}],
            },
        }
    )
    items = by_id(t)
    assert [(i.kind, i.text, i.final) for i in t.snapshot()] == [
        ("audio", "Hi!", True),
        ("text", "typed.", True),
        ("audio", "beta audio", True),
    ]
    assert items["a1"].role == "assistant"


def test_response_done_finalizes_partial_items_of_that_response_only():
    t = Transcript()
    t.apply(added(assistant("a1")))
    t.apply(delta("audio", "a1", "Once upon", response_id="resp_1"))
    t.apply(added(assistant("a2"), prev="a1"))
    t.apply(delta("audio", "a2", "other", response_id="resp_2"))
    newly = t.apply(
        S(
            "response.done",
            response={
                "id": "resp_1",
                "object": "realtime.response",
                "status": "cancelled",
                "status_details": {"type": "cancelled", "reason": "turn_detected"},
                "output": [assistant("a1", "incomplete", [{"type": "output_audio", "transcript": None}])],
            },
        )
    )
    assert [(i.id, i.text, i.final) for i in newly] == [("a1", "Once upon", True)]
    assert not by_id(t)["a2"].final


def test_failed_response_adds_an_error_item():
    t = Transcript()
    t.apply(
        S(
            "response.done",
            response={
                "id": "resp_9",
                "status": "failed",
                "status_details": {"type": "failed", "error": {"type": "server_error", "code": "boom"}},
                "output": [],
            },
        )
    )
    (e,) = t.snapshot()
    assert (e.role, e.kind, e.final) == ("error", "text", True)
    assert "provider" in e.text.lower()


# --- ordering ----------------------------------------------------------------------------------


def test_order_follows_previous_item_id_not_arrival():
    t = Transcript()
    t.apply(added(user_audio("u1")))
    t.apply(added(assistant("a1"), prev="u1"))
    t.apply(added(user_audio("u2"), prev="a1"))
    # an item inserted after u1 (e.g. a client item with previous_item_id) goes between u1 and a1
    t.apply(
        added(
            {"id": "x1", "type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
            prev="u1",
        )
    )
    assert ids(t) == ["u1", "x1", "a1", "u2"]


def test_item_seen_first_through_a_delta_moves_into_place():
    t = Transcript()
    t.apply(added(user_audio("u1")))
    t.apply(added(user_audio("u2"), prev="u1"))
    t.apply(delta("audio", "a1", "early"))  # no added yet: appended
    assert ids(t) == ["u1", "u2", "a1"]
    t.apply(added(assistant("a1"), prev="u1"))
    assert ids(t) == ["u1", "a1", "u2"]
    assert by_id(t)["a1"].text == "early"  # the empty content of added does not erase text


def test_committed_places_the_user_item_before_it_is_added():
    t = Transcript()
    t.apply(added(assistant("a0")))
    t.apply(added(assistant("a1"), prev="a0"))
    t.apply(S("input_audio_buffer.committed", item_id="u1", previous_item_id="a0"))
    assert ids(t) == ["a0", "u1", "a1"]
    t.apply(added(user_audio("u1"), prev="a0"))
    assert ids(t) == ["a0", "u1", "a1"]


def test_unknown_previous_item_appends():
    t = Transcript()
    t.apply(added(user_audio("u1")))
    t.apply(added(assistant("a1"), prev="gone"))
    assert ids(t) == ["u1", "a1"]


# --- client events: typed text and images -------------------------------------------------------


def test_typed_text_from_client_then_server_echo_is_one_item():
    t = Transcript()
    item = {
        "id": "msg_typed_1",
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "delayed add 2 and 5"}],
    }
    newly = t.apply(C("conversation.item.create", item=item))
    assert [(i.role, i.kind, i.text, i.final) for i in newly] == [("user", "text", "delayed add 2 and 5", True)]
    t.apply(added({**item, "status": "completed"}))
    assert len(t.snapshot()) == 1


def test_client_item_without_id_is_matched_to_the_server_echo():
    t = Transcript()
    t.apply(
        C(
            "conversation.item.create",
            item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hello"}]},
        )
    )
    local_id = ids(t)[0]
    t.apply(
        added(
            {
                "id": "item_srv",
                "type": "message",
                "role": "user",
                "status": "completed",
                "content": [{"type": "input_text", "text": "hello"}],
            }
        )
    )
    assert ids(t) == ["item_srv"] != [local_id]
    assert by_id(t)["item_srv"].text == "hello"


def test_image_sent_by_client_shows_a_thumbnail_and_survives_deletion():
    t = Transcript()
    url = jpeg_data_url((0, 0, 255), (640, 480))
    item = {
        "id": "img_1",
        "type": "message",
        "role": "user",
        "content": [{"type": "input_image", "image_url": url, "detail": "auto"}],
    }
    newly = t.apply(C("conversation.item.create", item=item))
    (img,) = newly
    assert (img.role, img.kind, img.final) == ("user", "image", True)
    assert img.image_thumb is not None
    thumb = Image.open(io.BytesIO(img.image_thumb))
    assert thumb.format == "JPEG" and max(thumb.size) <= 192
    pixel = thumb.convert("RGB").getpixel((10, 10))
    assert isinstance(pixel, tuple)  # an RGB image's pixel is (r, g, b)
    r, g, b = pixel
    assert b > 200 and r < 60 and g < 60  # still blue
    # the server's echo without the image data keeps the thumbnail
    t.apply(
        added(
            {
                "id": "img_1",
                "type": "message",
                "role": "user",
                "status": "completed",
                "content": [{"type": "input_image", "detail": "auto"}],
            }
        )
    )
    assert by_id(t)["img_1"].image_thumb == img.image_thumb
    # the app deletes old images to bound cost; the user still sees what was sent
    t.apply(S("conversation.item.deleted", item_id="img_1"))
    assert ids(t) == ["img_1"]


def test_image_with_text_and_small_image_kept_as_is():
    t = Transcript()
    url = jpeg_data_url((255, 0, 0), (64, 48))
    t.apply(
        C(
            "conversation.item.create",
            item={
                "id": "m",
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "what is this?"}, {"type": "input_image", "image_url": url}],
            },
        )
    )
    (i,) = t.snapshot()
    assert (i.kind, i.text) == ("image", "what is this?")
    assert i.image_thumb == base64.b64decode(url.split(",", 1)[1])


def test_broken_image_is_shown_as_text_not_an_exception():
    t = Transcript()
    t.apply(
        C(
            "conversation.item.create",
            item={
                "id": "bad",
                "type": "message",
                "role": "user",
                "content": [{"type": "input_image", "image_url": "data:image/jpeg;base64,bm90IGFuIGltYWdl"}],
            },
        )
    )
    (i,) = t.snapshot()
    assert (i.kind, i.image_thumb, i.text) == ("image", None, "(image could not be shown)")


# --- tools -------------------------------------------------------------------------------------


def test_function_call_with_arguments_and_result():
    t = Transcript()
    t.apply(
        added(
            {
                "id": "u1",
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "delayed add 2 and 5"}],
            }
        )
    )
    call = {
        "id": "fc_1",
        "type": "function_call",
        "call_id": "call_1",
        "name": "delayed_add",
        "arguments": "",
        "status": "in_progress",
        "object": "realtime.item",
    }
    t.apply(S("response.output_item.added", item=call, response_id="resp_1", output_index=0))
    t.apply(added(call, prev="u1"))
    for part in ('{"a": 2', ', "b": 5}'):
        t.apply(
            S(
                "response.function_call_arguments.delta",
                item_id="fc_1",
                call_id="call_1",
                response_id="resp_1",
                output_index=0,
                delta=part,
            )
        )
    tc = by_id(t)["fc_1"]
    assert (tc.role, tc.kind, tc.tool_args, tc.final) == ("tool", "tool_call", '{"a": 2, "b": 5}', False)
    t.apply(
        S(
            "response.function_call_arguments.done",
            item_id="fc_1",
            call_id="call_1",
            response_id="resp_1",
            output_index=0,
            name="delayed_add",
            arguments='{"a":2,"b":5}',
        )
    )
    t.apply(
        S(
            "response.done",
            response={
                "id": "resp_1",
                "status": "completed",
                "output": [{**call, "arguments": '{"a":2,"b":5}', "status": "completed"}],
            },
        )
    )
    assert not by_id(t)["fc_1"].final  # waiting for the result
    # the app sends the output; it is folded into the call item, not shown on its own
    out = {"id": "fco_1", "type": "function_call_output", "call_id": "call_1", "output": '{"sum": 7}'}
    newly = t.apply(C("conversation.item.create", item=out, previous_item_id="fc_1"))
    assert [(i.id, i.tool_name, i.tool_args, i.tool_result, i.final, i.call_id) for i in newly] == [
        ("fc_1", "delayed_add", '{"a":2,"b":5}', '{"sum": 7}', True, "call_1")
    ]
    t.apply(added({**out, "status": "completed"}, prev="fc_1"))
    t.apply(added(assistant("a2"), prev="fco_1"))  # the reply follows the output item
    assert ids(t) == ["u1", "fc_1", "a2"]
    t.apply(S("conversation.item.deleted", item_id="fco_1"))
    assert by_id(t)["fc_1"].tool_result == '{"sum": 7}'


def test_output_for_unknown_call_still_shows():
    t = Transcript()
    t.apply(C("conversation.item.create", item={"type": "function_call_output", "call_id": "c9", "output": "{}"}))
    (i,) = t.snapshot()
    assert (i.role, i.kind, i.tool_result, i.final) == ("tool", "tool_call", "{}", True)


# --- deletion, truncation, errors ----------------------------------------------------------------


def test_deleted_item_disappears():
    t = Transcript()
    t.apply(added(user_audio("u1")))
    t.apply(added(assistant("a1"), prev="u1"))
    t.apply(S("conversation.item.deleted", item_id="u1"))
    assert ids(t) == ["a1"]
    t.apply(added(assistant("a2"), prev="u1"))  # predecessor gone: appended
    assert ids(t) == ["a1", "a2"]


def test_truncated_item_marked_and_keeps_heard_text():
    t = Transcript()
    t.apply(added(assistant("a1")))
    t.apply(delta("audio", "a1", "A very long story about"))
    newly = t.apply(S("conversation.item.truncated", item_id="a1", content_index=0, audio_end_ms=1500))
    assert [(i.truncated, i.final, i.text) for i in newly] == [(True, True, "A very long story about")]
    t.apply(
        S(
            "response.output_audio_transcript.done",
            item_id="a1",
            response_id="resp_1",
            output_index=0,
            content_index=0,
            transcript="A very long story about a dragon who ...",
        )
    )
    assert by_id(t)["a1"].text == "A very long story about"


def test_cleared_output_audio_marks_that_responses_reply_interrupted():
    t = Transcript()
    t.apply(added(assistant("a0")))
    t.apply(delta("audio", "a0", "An earlier reply", response_id="resp_8"))
    t.apply(added(assistant("a1")))
    t.apply(delta("audio", "a1", "One, two, three, four", response_id="resp_9"))
    newly = t.apply(S("output_audio_buffer.cleared", response_id="resp_9"))
    assert [(i.id, i.truncated, i.final) for i in newly] == [("a1", True, True)]
    assert not by_id(t)["a0"].truncated  # another response's reply is left alone
    assert t.apply(S("output_audio_buffer.cleared", response_id="resp_unknown")) == ()


def test_cleared_output_audio_also_cuts_the_replies_queued_behind_it():
    """A reply generated while an earlier one still plays waits in the same buffer: clearing it
    means neither is heard to the end (measured: "count to 60" typed during the previous reply)."""
    t = Transcript()
    for item_id, rid, text in (("a0", "r0", "Played whole."), ("a1", "r1", "Still playing"), ("a2", "r2", "Queued")):
        t.apply(added(assistant(item_id)))
        t.apply(delta("audio", item_id, text, response_id=rid))
        t.apply(
            S(
                "response.output_audio_transcript.done",
                item_id=item_id,
                response_id=rid,
                output_index=0,
                content_index=0,
                transcript=text,
            )
        )
    t.apply(S("output_audio_buffer.started", response_id="r0"))
    t.apply(S("output_audio_buffer.stopped", response_id="r0"))
    t.apply(S("output_audio_buffer.started", response_id="r1"))
    t.apply(S("output_audio_buffer.cleared", response_id="r1"))
    assert [(i.id, i.truncated, i.final) for i in t.snapshot()] == [
        ("a0", False, True),
        ("a1", True, True),
        ("a2", True, True),
    ]


def test_cancelled_response_marks_its_reply_interrupted_and_a_completed_one_does_not():
    t = Transcript()
    t.apply(added(assistant("a1")))
    t.apply(delta("text", "a1", "Partial", response_id="resp_1"))
    t.apply(
        S(
            "response.done",
            response={
                "id": "resp_1",
                "object": "realtime.response",
                "status": "cancelled",
                "output": [assistant("a1", status="incomplete")],
            },
        )
    )
    assert by_id(t)["a1"].truncated and by_id(t)["a1"].final
    t.apply(added(assistant("a2")))
    t.apply(delta("text", "a2", "Whole", response_id="resp_2"))
    t.apply(
        S(
            "response.done",
            response={
                "id": "resp_2",
                "object": "realtime.response",
                "status": "completed",
                "output": [assistant("a2", status="completed")],
            },
        )
    )
    assert not by_id(t)["a2"].truncated


def test_error_event_becomes_an_error_item_without_key():
    t = Transcript()
    t.apply(added(user_audio("u1")))
    newly = t.apply(
        S(
            "error",
            error={
                "type": "invalid_request_error",
                "code": "invalid_api_key",
                "message": "Incorrect API key provided: sk-abc123456789xyz",
            },
        )
    )
    (e,) = newly
    assert (e.role, e.kind, e.final) == ("error", "text", True)
    assert "API key" in e.text and "sk-abc123456789xyz" not in e.text
    assert ids(t)[-1] == e.id


def test_malformed_and_unknown_events_are_ignored():
    t = Transcript()
    for bad in (
        {"type": "response.output_text.delta"},
        {"type": "conversation.item.added"},
        {"type": "conversation.item.added", "item": "nope"},
        {"no": "type"},
        "not a dict",
        {"type": "session.updated", "session": {}},
        {"type": "conversation.item.truncated", "item_id": "x"},
    ):
        assert t.apply(read_server_event(bad)) == ()
    assert t.snapshot() == () and t.ignored == 7


def test_system_note_and_system_messages():
    t = Transcript()
    note = t.add_system_note("Connected to the local engine (offline).")
    t.apply(
        C(
            "conversation.item.create",
            item={
                "id": "sys1",
                "type": "message",
                "role": "system",
                "content": [{"type": "input_text", "text": "Be brief."}],
            },
        )
    )
    assert [(i.role, i.text, i.final) for i in t.snapshot()] == [
        ("system", note.text, True),
        ("system", "Be brief.", True),
    ]


def test_snapshot_is_immutable_and_thread_safe():
    t = Transcript()
    t.apply(added(assistant("a1")))
    first = t.snapshot()
    assert t.snapshot() is first  # cached while nothing changes
    with pytest.raises(AttributeError):
        first[0].text = "x"  # type: ignore[misc]

    stop = threading.Event()
    seen: list[list[int]] = [[], []]

    def reader(lengths: list[int]):
        while not stop.is_set():
            snap = t.snapshot()
            lengths.append(len(snap[0].text))

    threads = [threading.Thread(target=reader, args=(lengths,)) for lengths in seen]
    for th in threads:
        th.start()
    for _ in range(2000):
        t.apply(
            read_server_event({"type": "response.output_text.delta", "item_id": "a1", "response_id": "r", "delta": "x"})
        )
    stop.set()
    for th in threads:
        th.join()
    assert len(t.snapshot()[0].text) == 2000
    for lengths in seen:  # each reader only ever sees whole, growing states
        assert lengths and lengths == sorted(lengths)
    assert first[0].text == ""


def test_notes_stay_where_they_were_said_and_a_restored_item_seen_again_stays_put():
    t = Transcript()
    t.apply(added(assistant("a1", "completed", [{"type": "output_text", "text": "first"}])))
    note = t.add_system_note("front_desk \u2192 billing")
    # the next server item names a1 as its predecessor: it goes after the note, not before it
    t.apply(added(assistant("a2", "completed", [{"type": "output_text", "text": "second"}]), prev="a1"))
    lost = t.add_system_note("Connection lost \u2014 reconnecting\u2026")
    # a restore replays a1 and a2 into a new call: a2 is seen again after a1 and keeps its place
    t.apply(added(assistant("a2", "completed", [{"type": "output_text", "text": "second"}]), prev="a1"))
    assert ids(t) == ["a1", note.id, "a2", lost.id]
