"""realtime.restore: the conversation so far, as the events that carry it into a new call."""

from __future__ import annotations

import io
import json

import pydantic
from openai.types.realtime import RealtimeClientEvent
from PIL import Image

from realtime.events import ItemCreate, read_client_event
from realtime.restore import MAX_EVENT_BYTES, plan_restore
from realtime.transcript import Transcript, TranscriptItem

CLIENT = pydantic.TypeAdapter(RealtimeClientEvent)


def jpeg(rgb=(0, 0, 255)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), rgb).save(buf, format="JPEG")
    return buf.getvalue()


CONVERSATION = (
    TranscriptItem("note_local_1", "system", "text", "Connected to the local engine.", final=True),
    TranscriptItem("msg_1", "user", "text", "my secret word is pineapple", final=True),
    TranscriptItem("item_2", "assistant", "audio", "You said: my secret word is pineapple", final=True),
    TranscriptItem("item_3", "user", "audio", "delayed add two and five", final=True),
    TranscriptItem(
        "fc_4",
        "tool",
        "tool_call",
        final=True,
        tool_name="delayed_add",
        tool_args='{"a": 2, "b": 5}',
        tool_result='{"result": 7}',
        call_id="call_4",
    ),
    TranscriptItem("item_5", "assistant", "audio", "delayed_add returned 7.", final=True, truncated=True),
    TranscriptItem("img_6", "user", "image", final=True, image_thumb=jpeg()),
    TranscriptItem("img_7", "user", "image", final=True, image_thumb=jpeg((255, 0, 0))),
    TranscriptItem("error_8", "error", "text", "The provider reported an error: boom", final=True),
    TranscriptItem("item_9", "assistant", "audio", "Half a rep", final=False),  # cut by the drop
)


def test_what_was_said_shown_and_run_is_restored_in_order_and_valid():
    restore = plan_restore(CONVERSATION, images_in_window={"img_7"})
    for event in restore.events:
        CLIENT.validate_python(event)
    items = [e["item"] for e in restore.events]
    assert [(i["type"], i.get("role"), i.get("id")) for i in items] == [
        ("message", "user", "msg_1"),
        ("message", "assistant", "item_2"),
        ("message", "user", "item_3"),  # a spoken turn, as its transcript
        ("function_call", None, "fc_4"),
        ("function_call_output", None, None),
        ("message", "assistant", "item_5"),
        ("message", "user", "img_7"),  # only the image still in the window
    ]
    assert items[0]["content"] == [{"type": "input_text", "text": "my secret word is pineapple"}]
    assert items[1]["content"] == [{"type": "output_text", "text": "You said: my secret word is pineapple"}]
    assert items[4] == {"type": "function_call_output", "call_id": "call_4", "output": '{"result": 7}'}
    assert items[6]["content"][0]["image_url"].startswith("data:image/jpeg;base64,")
    assert (restore.restored, restore.cut, restore.note) == (6, 0, "6 items restored")


def test_over_budget_the_newest_are_kept_and_a_tool_call_goes_with_its_output():
    whole = plan_restore(CONVERSATION)
    sizes = [len(json.dumps(e).encode()) for e in whole.events]
    budget = sum(sizes[-3:])  # room for the tool call, its output and the last reply, not more
    restore = plan_restore(CONVERSATION, budget_bytes=budget)
    assert [e["item"].get("id") for e in restore.events] == ["fc_4", None, "item_5"]
    assert (restore.restored, restore.cut) == (2, 3)
    assert restore.note == "2 items restored, 3 oldest left out"
    assert plan_restore(CONVERSATION, budget_bytes=0).events == ()


def test_an_item_too_big_for_the_data_channel_is_left_out_and_counted():
    huge = TranscriptItem("msg_big", "user", "text", "x" * (MAX_EVENT_BYTES + 1), final=True)
    restore = plan_restore((huge, CONVERSATION[1]))
    assert [e["item"]["id"] for e in restore.events] == ["msg_1"]
    assert (restore.restored, restore.cut) == (1, 1)


def test_replaying_the_restore_into_the_transcript_shows_nothing_twice():
    restore = plan_restore(CONVERSATION, images_in_window={"img_7"})
    transcript = Transcript()
    for event in restore.events:
        read = read_client_event(event)
        assert isinstance(read, ItemCreate)
        transcript.apply(read)
    first = transcript.snapshot()
    for event in restore.events:  # the same items again: matched by id, not added
        read = read_client_event(event)
        assert isinstance(read, ItemCreate)
        transcript.apply(read)
    assert [i.id for i in transcript.snapshot()] == [i.id for i in first]
    assert [i.id for i in first] == ["msg_1", "item_2", "item_3", "fc_4", "item_5", "img_7"]
    assert next(i for i in first if i.id == "fc_4").tool_result == '{"result": 7}'


def test_the_strict_engine_takes_every_restore_event():
    from localengine.config import EngineConfig
    from localengine.conversation import Send, Session

    session = Session("webrtc", EngineConfig())
    session.start()
    restore = plan_restore(CONVERSATION, images_in_window={"img_7"})
    errors = []
    for n, event in enumerate(restore.events):
        effects = session.receive(json.dumps({**event, "event_id": f"evt_{n}"}), now=float(n))
        errors += [e.event["error"] for e in effects if isinstance(e, Send) and e.event["type"] == "error"]
    assert errors == []
    assert [i.id for i in session.items if i.id in {"msg_1", "item_2", "fc_4", "img_7"}] == [
        "msg_1",
        "item_2",
        "fc_4",
        "img_7",
    ]


def test_a_tool_still_running_is_restored_as_its_call_and_a_queued_output_is_left_to_follow():
    running = TranscriptItem(
        "fc_1", "tool", "tool_call", tool_name="delayed_add", tool_args='{"a": 2, "b": 5}', call_id="call_1"
    )
    streaming = TranscriptItem("fc_2", "tool", "tool_call", tool_name="echo_upper", tool_args='{"te', call_id="call_2")
    done = TranscriptItem(
        "fc_3",
        "tool",
        "tool_call",
        final=True,
        tool_name="get_datetime",
        tool_args="{}",
        tool_result='"now"',
        call_id="call_3",
    )
    restore = plan_restore((running, streaming, done), outputs_queued={"call_3"})
    for event in restore.events:
        CLIENT.validate_python(event)
    # the running call goes in (its output comes when the tool is done); half-written arguments do
    # not; the output that is queued is sent after the restore, not twice
    assert [(e["item"]["type"], e["item"].get("call_id")) for e in restore.events] == [
        ("function_call", "call_1"),
        ("function_call", "call_3"),
    ]
