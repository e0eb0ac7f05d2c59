"""``items``: conversation items built from GA item objects, rendered back, and read by the responder."""

from __future__ import annotations

import base64

import pytest

from localengine.items import Item, Part, build_item
from localengine.responder import Turn
from localengine.schema import ClientEventError
from tests.media import solid_png_data_url


def ids():
    made: list[str] = []

    def new_id(prefix: str) -> str:
        made.append(f"{prefix}_{len(made) + 1}")
        return made[-1]

    return new_id


def refused(wire: dict, param: str = "item") -> ClientEventError:
    with pytest.raises(ClientEventError) as info:
        build_item(wire, ids(), param)
    return info.value


def test_message_parts_are_typed_and_render_back():
    audio = bytes(4800)  # 100 ms of pcm16 at 24 kHz
    item = build_item(
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "look"},
                {"type": "input_audio", "audio": base64.b64encode(audio).decode()},
                {"type": "input_image", "image_url": solid_png_data_url((0, 0, 255), size=(40, 30))},
            ],
        },
        ids(),
    )
    assert item.id == "item_1" and item.role == "user" and item.status == "completed"
    text, voice, image = item.content
    assert text == Part("input_text", text="look")
    assert (voice.audio, voice.audio_ms, voice.transcript) == (audio, 100, None)
    assert image.image is not None and (image.image.width, image.image.height, image.image.colour) == (40, 30, "blue")
    assert item.stored_audio_bytes == 4800
    wire = item.to_wire()
    assert [p["type"] for p in wire["content"]] == ["input_text", "input_audio", "input_image"]
    assert "audio" not in wire["content"][1] and item.to_wire(with_audio=True)["content"][1]["audio"]
    assert wire["content"][2]["detail"] == "auto"


def test_function_items_get_ids_they_lack_and_become_turns():
    call = build_item({"type": "function_call", "name": "add", "arguments": '{"a": 1}'}, ids())
    assert (call.id, call.call_id) == ("item_1", "call_2")
    assert call.turn() == Turn("function_call", text='{"a": 1}', name="add", call_id="call_2")
    output = build_item({"type": "function_call_output", "id": "mine", "call_id": "c", "output": "2"}, ids())
    assert output.id == "mine" and output.to_wire() == {
        "id": "mine",
        "object": "realtime.item",
        "type": "function_call_output",
        "status": "completed",
        "call_id": "c",
        "output": "2",
    }


def test_assistant_parts_default_to_output_text_and_turn_joins_the_words():
    item = build_item({"type": "message", "role": "assistant", "content": [{"text": "hi"}]}, ids())
    assert item.content == (Part("output_text", text="hi"),)
    spoken = Item("a", "message", role="assistant", content=(Part("output_audio", transcript="there"),))
    assert spoken.turn() == Turn("assistant", text="there")


@pytest.mark.parametrize(
    ("wire", "code", "param"),
    [
        ({"type": "mcp_call"}, "unsupported_item_type", "response.input[0].type"),
        (
            {"type": "message", "role": "system", "content": [{"type": "input_audio", "transcript": "x"}]},
            "invalid_value",
            "response.input[0].content[0].type",
        ),
        (
            {"type": "message", "role": "user", "content": [{"type": "input_text"}]},
            "missing_required_parameter",
            "response.input[0].content[0].text",
        ),
        (
            {"type": "message", "role": "user", "content": [{"type": "input_audio"}]},
            "missing_required_parameter",
            "response.input[0].content[0].audio",
        ),
        (
            {"type": "message", "role": "user", "content": [{"type": "input_audio", "audio": "not base64!"}]},
            "invalid_value",
            "response.input[0].content[0].audio",
        ),
        (
            {"type": "message", "role": "user", "content": [{"type": "input_image", "image_url": "http://x/y.png"}]},
            "invalid_image",
            "response.input[0].content[0].image_url",
        ),
    ],
)
def test_refusals_name_the_parameter(wire, code, param):
    err = refused(wire, "response.input[0]")
    assert (err.code, err.param) == (code, param)
