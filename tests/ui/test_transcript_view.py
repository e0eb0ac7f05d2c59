"""ui/transcript_view.py: what the chat shows (pure helpers and an AppTest render)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from realtime.transcript import TranscriptItem
from ui.transcript_view import MAX_RECENT, bubble_text, item_line, split_recent


def _text(id_, role, text, final=True, **kw):
    return TranscriptItem(id_, role, "text", text, final, **kw)


def _tool(id_, name, args, result):
    return TranscriptItem(
        id_,
        "tool",
        "tool_call",
        "",
        result is not None,
        tool_name=name,
        tool_args=args,
        tool_result=result,
        call_id=f"call_{id_}",
    )


def test_split_recent_keeps_the_newest():
    items = tuple(range(10))
    assert split_recent(items, 4) == ((0, 1, 2, 3, 4, 5), (6, 7, 8, 9))
    assert split_recent(items, 10) == ((), items)
    assert split_recent(items, None) == ((), items)
    assert split_recent((), 3) == ((), ())


def test_bubble_text_streaming_interrupted_and_escaped():
    assert bubble_text(_text("a", "assistant", "Hello the", final=False)) == "Hello the …"
    assert bubble_text(_text("a", "assistant", "", final=False)) == "…"
    assert bubble_text(_text("a", "assistant", "One, two", truncated=True)) == "One, two :gray[*(interrupted)*]"
    assert bubble_text(_text("a", "assistant", "", truncated=True)) == ":gray[*(interrupted)*]"
    assert bubble_text(_text("a", "assistant", "# not a *heading* <b>")) == r"\# not a \*heading\* \<b\>"
    assert bubble_text(_text("a", "assistant", "")) == ":gray[*(no words)*]"


def test_item_line_is_one_plain_line():
    assert item_line(_text("u", "user", "hi\nthere")) == "You: hi there"
    assert item_line(_text("a", "assistant", "cut", truncated=True)) == "Assistant: cut (interrupted)"
    assert item_line(_tool("t", "delayed_add", '{"a": 2, "b": 5}', '{"sum": 7}')) == "🔧 delayed_add(a=2, b=5) → 7"
    assert item_line(_text("e", "error", "Rate\nlimited")) == "⚠ Rate limited"
    assert item_line(TranscriptItem("i", "user", "image", "", True, image_thumb=b"x")) == "You: [camera frame]"


def transcript_script(items, live):
    from ui.transcript_view import render_transcript

    render_transcript(items, live=live)


def _render(items, live=True) -> AppTest:
    at = AppTest.from_function(transcript_script, kwargs={"items": tuple(items), "live": live})
    at.run(timeout=30)
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_render_chat_items():
    at = _render(
        [
            _text("u1", "user", "what is 2 plus 5?"),
            _tool("t1", "delayed_add", '{"a": 2, "b": 5}', '{"sum": 7}'),
            _tool("t2", "echo_upper", '{"text": "x"}', '{"error": "echo_upper failed: boom"}'),
            _text("a1", "assistant", "Seven, and then", truncated=True),
            _text("e1", "error", "The provider said:\n  slow down"),
            _text("a2", "assistant", "It is sev", final=False),
        ]
    )
    chat = [m.markdown[0].value for m in at.chat_message]
    assert chat == ["what is 2 plus 5?", "Seven, and then :gray[*(interrupted)*]", "It is sev …"]
    captions = [c.value for c in at.caption]
    assert ":material/build: delayed\\_add(a=2, b=5) → 7" in captions
    assert ':red[:material/build: echo\\_upper(text="x") → error: echo\\_upper failed: boom]' in captions
    assert [e.value for e in at.error] == ["The provider said: slow down"]
    assert not at.expander  # few items: no "earlier" list


def test_long_conversations_show_the_newest_as_bubbles_and_the_rest_as_lines():
    items = [_text(f"m{i}", "user" if i % 2 else "assistant", f"message {i}") for i in range(MAX_RECENT + 5)]
    at = _render(items)
    bubbles = [m.markdown[0].value for m in at.chat_message]
    assert len(bubbles) == MAX_RECENT and bubbles[-1] == f"message {MAX_RECENT + 4}" and bubbles[0] == "message 5"
    (older,) = at.expander
    assert older.label == "5 earlier messages"
    assert "Assistant: message 0" in older.markdown[0].value and "Assistant: message 4" in older.markdown[0].value


def test_empty_states_say_what_to_do():
    idle = _render([], live=False)
    assert "Press **Start conversation**" in idle.info[0].value
    live = _render([], live=True)
    assert live.caption[0].value.startswith("Connected. Say something")


def test_a_handoff_note_reads_as_a_breadcrumb():
    from ui.transcript_view import handoff, handoff_text

    note = _text("n1", "system", "front_desk \u2192 tech_support")
    assert handoff(note) == ("front_desk", "tech_support")
    assert handoff_text("front_desk", "tech_support") == "Front desk \u2192 Tech support"
    assert item_line(note) == "Front desk \u2192 Tech support"
    # only the bridge's exact note: not another role, not prose, not names that are not identifiers
    assert handoff(_text("u", "user", "front_desk \u2192 billing")) is None
    assert handoff(_text("e", "error", "front_desk \u2192 billing")) is None
    for text in (
        "Reconnected in 1.4 s \u2192 fine",
        "front_desk \u2192 billing \u2192 refunds",
        "front_desk\u2192billing",
        " front_desk \u2192 billing",
        "1abc \u2192 billing",
        "front desk \u2192 billing",
        "",
    ):
        assert handoff(_text("n", "system", text)) is None, text
    assert item_line(_text("n", "system", "Approved issue_refund({})")) == "Approved issue_refund({})"

    at = _render([_text("u1", "user", "my bill is wrong"), note, _text("n2", "system", "a_b c \u2192 d")])
    captions = [c.value for c in at.caption]
    assert ":material/swap_horiz: Front desk \u2192 Tech support" in captions
    assert "a\\_b c \u2192 d" in captions  # any other note stays as it was
