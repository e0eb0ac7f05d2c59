"""Unit tests for the deterministic offline responder's rules."""

from __future__ import annotations

import json

import pytest

from localengine.responder import (
    GREETING,
    ImageInfo,
    ReplyContext,
    ToolParam,
    ToolSpec,
    Turn,
    number_words,
    plan_reply,
    tool_spec_from_schema,
)

ADD = tool_spec_from_schema(
    "delayed_add", {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "integer"}}}
)
ECHO = tool_spec_from_schema("echo_upper", {"properties": {"text": {"type": "string"}}})
CLOCK = tool_spec_from_schema("get_datetime", {"type": "object", "properties": {}})
TOOLS = (ADD, ECHO, CLOCK)


def user(text="", image=None) -> Turn:
    return Turn("user", text=text, image=image)


def reply(*turns, instructions="", tools=(), tool_choice="auto"):
    return plan_reply(ReplyContext(instructions=instructions, turns=tuple(turns), tools=tools, tool_choice=tool_choice))


def test_echoes_latest_user_words():
    r = reply(user("first"), Turn("assistant", "You said: first"), user("  second one  "))
    assert r.text == "You said: second one" and not r.is_function_call


def test_greeting_when_nothing_to_answer():
    assert reply().text == GREETING
    assert reply(Turn("system", "be nice"), Turn("assistant", "hi")).text == GREETING


def test_say_prefix_applies_to_every_text_reply():
    ins = "Say: Ahoy there.\nThe rest is ignored."
    assert reply(user("hi"), instructions=ins).text == "Ahoy there. You said: hi"
    assert reply(instructions=ins).text == "Ahoy there. " + GREETING
    assert reply(user("hi"), instructions="  say:  Hey.").text == "Hey. You said: hi"
    assert reply(user("hi"), instructions="Please Say: no").text == "You said: hi"


def test_describes_latest_image_when_asked():
    red, blue = ImageInfo(64, 48, "red"), ImageInfo(640, 480, "blue")
    convo = [user(image=red), user("hello"), user(image=blue)]
    for q in ("What do you see?", "look at this", "describe the IMAGE", "my camera", "the picture", "on my screen"):
        assert reply(*convo, user(q)).text == "I see a 640 by 480 image. It is mostly blue."
    assert reply(*convo, user("what is the weather")).text == "You said: what is the weather"
    assert reply(user("what do you see")).text == "You said: what do you see"  # no image held
    assert reply(user(image=red)).text == "I see a 64 by 48 image. It is mostly red."  # images, no words


def test_calls_tool_named_in_the_words_with_numbers_in_order():
    r = reply(user("Please delayed add three and 4.5 for me"), tools=TOOLS)
    assert r.is_function_call and r.function_name == "delayed_add"
    assert json.loads(r.arguments) == {"a": 3, "b": 4}  # b is an integer parameter
    r = reply(user("delayed_add -2.5 and twenty"), tools=TOOLS)
    assert json.loads(r.arguments) == {"a": -2.5, "b": 20}
    r = reply(user("DELAYED ADD 1"), tools=TOOLS)
    assert json.loads(r.arguments) == {"a": 1}  # missing numbers are left out


def test_string_parameters_from_quotes_then_remaining_words():
    assert json.loads(reply(user('echo upper "make me loud" please'), tools=TOOLS).arguments) == {
        "text": "make me loud"
    }
    assert json.loads(reply(user("could you echo upper hello world?"), tools=TOOLS).arguments) == {
        "text": "hello world"
    }
    two = ToolSpec(
        "send_note", (ToolParam("to", "string"), ToolParam("body", "string"), ToolParam("urgent", "boolean"))
    )
    args = json.loads(reply(user("send note 'Ann' \"see you at 3\" yes"), tools=(two,)).arguments)
    assert args == {"to": "Ann", "body": "see you at 3", "urgent": True}


def test_tool_without_parameters_and_longest_name_wins():
    assert reply(user("what's the get datetime now"), tools=TOOLS).function_name == "get_datetime"
    short, long = ToolSpec("add"), ToolSpec("delayed_add")
    assert reply(user("delayed add 1 2"), tools=(short, long)).function_name == "delayed_add"
    assert reply(user("I added things"), tools=(short,)).text == "You said: I added things"  # whole words only


def test_tool_choice_modes():
    assert reply(user("delayed add 1 2"), tools=TOOLS, tool_choice="none").text == "You said: delayed add 1 2"
    assert reply(user("hello"), tools=TOOLS, tool_choice="required").function_name == "delayed_add"
    forced = reply(user('hello "x"'), tools=TOOLS, tool_choice="echo_upper")
    assert forced.function_name == "echo_upper" and json.loads(forced.arguments) == {"text": "x"}
    assert reply(user("hello"), tools=(), tool_choice="required").text == "You said: hello"


def test_answers_with_function_output_verbatim():
    convo = [
        user("delayed add 3 4"),
        Turn("function_call", '{"a":3,"b":4}', name="delayed_add", call_id="c1"),
        Turn("function_call_output", "7", call_id="c1"),
    ]
    assert reply(*convo, tools=TOOLS).text == "delayed_add returned 7."
    assert reply(Turn("function_call_output", '{"ok": true}', call_id="zz")).text == 'The tool returned {"ok": true}.'
    # a newer user turn wins over an older tool output
    assert reply(*convo, user("thanks"), tools=TOOLS).text == "You said: thanks"


@pytest.mark.parametrize(
    "words, last",
    [("count to 3", "One, two, three."), ("Count to twelve please", "twelve."), ("count to 150", "one hundred.")],
)
def test_counting(words, last):
    text = reply(user(words)).text
    assert text.startswith("One, two") or text == "One, two, three."
    assert text.endswith(last)
    if "150" in words:
        assert text.count(",") == 99


def test_number_words():
    assert [number_words(n) for n in (0, 7, 20, 21, 40, 99, 100)] == [
        "zero",
        "seven",
        "twenty",
        "twenty-one",
        "forty",
        "ninety-nine",
        "one hundred",
    ]


def test_tool_spec_from_schema_handles_odd_schemas():
    spec = tool_spec_from_schema(
        "t", {"properties": {"n": {"type": ["number", "null"]}, "o": {"type": "object"}, "x": 5}}
    )
    assert spec.params == (ToolParam("n", "number"), ToolParam("o", "other"), ToolParam("x", "other"))
    assert tool_spec_from_schema("t", None).params == ()


# ---------------------------------------------------------------------------------- recall


@pytest.mark.parametrize(
    "question",
    ["What did I say first?", "what did i say first", "WHAT, did I say... first?!", "so what did I say first"],
)
def test_recall_quotes_the_first_user_words(question):
    r = reply(
        Turn("system", "be brief"),
        user(image=ImageInfo(64, 48, "red")),  # an image with no words is not something said
        user("  the first thing  "),
        Turn("assistant", "You said: the first thing"),
        user("the second thing"),
        user(question),
    )
    assert r.text == "You first said: the first thing" and r.rule == "recall"


def test_recall_reads_a_spoken_turns_transcript_and_skips_tool_items():
    r = reply(
        Turn("function_call", '{"a": 1}', name="delayed_add", call_id="c1"),
        Turn("function_call_output", "1", call_id="c1"),
        Turn("assistant", "delayed_add returned 1."),
        user("hello from the microphone"),  # Item.turn() gives a spoken turn its transcript as text
        user("What did I say first?"),
    )
    assert r.text == "You first said: hello from the microphone"


def test_recall_with_nothing_said_before_the_question():
    assert reply(user("What did I say first?")).text == "You have not said anything yet."
    assert reply(Turn("assistant", "Hi"), user(""), user("what did I say first")).text == (
        "You have not said anything yet."
    )


def test_recall_needs_the_whole_phrase_and_keeps_the_say_prefix():
    assert reply(user("hi"), user("what did I say")).text == "You said: what did I say"
    assert reply(user("hi"), user("what did I say firstly")).text == "You said: what did I say firstly"
    r = reply(user("hi"), user("What did I say first?"), instructions="Say: Ahoy.")
    assert r.text == "Ahoy. You first said: hi"


def test_recall_gives_way_to_a_tool_named_in_the_words():
    r = reply(user("hi"), user("what did I say first, echo upper it"), tools=TOOLS)
    assert r.is_function_call and r.function_name == "echo_upper"
