"""The local engine's deterministic offline responder: ``plan_reply(ctx) -> Reply``.

It is not a language model. Given the conversation (``ReplyContext``) it applies these rules,
first match wins:

1. **Tool output.** If the latest user-or-tool turn is a ``function_call_output``, it answers
   with that output verbatim: ``"delayed_add returned 7."`` (the function name comes from the
   matching ``function_call``; ``"The tool returned ..."`` when it is unknown).
2. **Tool call.** Unless ``tool_choice`` is ``"none"``: when a registered function tool's name
   (underscores read as spaces, case-insensitive) appears in the latest user words, it calls that
   tool. Numeric parameters (JSON schema ``number`` / ``integer``) are filled, in declaration
   order, from the numbers in the words in order (digits like ``3`` or ``-2.5``, and number words
   ``zero`` .. ``twenty``); string parameters from quoted strings in order, then the remaining
   words after the tool name; boolean parameters from ``true``/``yes`` vs ``false``/``no``.
   A parameter with nothing to fill it is left out. ``tool_choice`` ``"required"`` calls the
   first tool when no name matches; a named ``tool_choice`` always calls that tool.
3. **Counting.** ``"count to N"`` (N in digits or words, at most 100) replies
   ``"One, two, three, ..., N."`` in words: a long reply for interruption demos.
4. **Image.** When the conversation holds an image and the latest words ask about it
   (``see``, ``look``, ``image``, ``picture``, ``camera``, ``screen``), it describes the latest
   image: ``"I see a 640 by 480 image. It is mostly blue."``. When the conversation holds images
   but no words at all, the latest image is described the same way.
5. **Recall.** When the latest words ask ``"what did I say first"`` (case-insensitive, punctuation
   ignored), it quotes the first user words of the conversation before that question (a user
   message's text or a spoken turn's transcript, items restored with ``conversation.item.create``
   included): ``"You first said: hello"``; ``"You have not said anything yet."`` when there are none.
6. **Echo.** Otherwise it quotes the latest user text or audio transcript: ``"You said: ..."``.
7. **Nothing to answer:** ``"Hello! I am the offline local engine. Say or type something and I
   will answer."``

Whatever the rule, when the instructions begin with ``Say: <sentence>``, every text reply begins
with that sentence (the rest of the first line), so an instructions change is visible.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "GREETING",
    "NOTHING_SAID",
    "ImageInfo",
    "Reply",
    "ReplyContext",
    "ToolParam",
    "ToolSpec",
    "Turn",
    "number_words",
    "plan_reply",
    "tool_spec_from_schema",
]

GREETING = "Hello! I am the offline local engine. Say or type something and I will answer."
NOTHING_SAID = "You have not said anything yet."
RECALL_PHRASE = "what did i say first"
IMAGE_WORDS = frozenset({"see", "look", "image", "picture", "camera", "screen"})
MAX_COUNT = 100

_SMALL = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
]
_TENS = {2: "twenty", 3: "thirty", 4: "forty", 5: "fifty", 6: "sixty", 7: "seventy", 8: "eighty", 9: "ninety"}
_WORD_VALUES = {word: n for n, word in enumerate(_SMALL)}
_NUMBER_RE = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w])|\b(?:" + "|".join(_SMALL) + r")\b", re.I)
_QUOTED_RE = re.compile(r"\"([^\"]*)\"|“([^”]*)”|'([^']*)'(?!\w)|‘([^’]*)’")
_COUNT_RE = re.compile(r"\bcount\s+(?:up\s+)?to\s+(-?\d+|" + "|".join(_SMALL) + r")\b", re.I)


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    colour: str


@dataclass(frozen=True)
class Turn:
    """One conversation item as the responder sees it.

    ``role``: ``user`` (text is the typed text or audio transcript; ``image`` when it holds one),
    ``assistant``, ``system``, ``function_call`` (``name``, ``call_id``, ``text`` = arguments) or
    ``function_call_output`` (``call_id``, ``text`` = output).
    """

    role: Literal["user", "assistant", "system", "function_call", "function_call_output"]
    text: str = ""
    image: ImageInfo | None = None
    name: str = ""
    call_id: str = ""


ParamKind = Literal["number", "integer", "string", "boolean", "other"]
_PARAM_KINDS: dict[str, ParamKind] = {
    "number": "number",
    "integer": "integer",
    "string": "string",
    "boolean": "boolean",
}


@dataclass(frozen=True)
class ToolParam:
    name: str
    kind: ParamKind


@dataclass(frozen=True)
class ToolSpec:
    name: str
    params: tuple[ToolParam, ...] = ()
    description: str = ""


@dataclass(frozen=True)
class ReplyContext:
    instructions: str = ""
    turns: tuple[Turn, ...] = ()
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str = "auto"  # "auto" | "none" | "required" | the name of a function to force


@dataclass(frozen=True)
class Reply:
    """Either ``text`` (a spoken/written answer) or a function call (``function_name`` + JSON ``arguments``)."""

    text: str = ""
    function_name: str | None = None
    arguments: str | None = None
    rule: str = field(default="", compare=False)

    @property
    def is_function_call(self) -> bool:
        return self.function_name is not None


def tool_spec_from_schema(name: str, parameters: Any, description: str = "") -> ToolSpec:
    """Build a ``ToolSpec`` from a function tool's JSON schema ``parameters`` (properties in order)."""
    params: list[ToolParam] = []
    props = parameters.get("properties") if isinstance(parameters, dict) else None
    if isinstance(props, dict):
        for pname, schema in props.items():
            kind = schema.get("type") if isinstance(schema, dict) else None
            if isinstance(kind, list):  # e.g. ["number", "null"]
                kind = next((k for k in kind if k != "null"), None)
            params.append(ToolParam(str(pname), _PARAM_KINDS.get(kind, "other") if isinstance(kind, str) else "other"))
    return ToolSpec(name=name, params=tuple(params), description=description or "")


def number_words(n: int) -> str:
    """English words for 0 <= n <= 100."""
    if n <= 20:
        return _SMALL[n]
    if n == 100:
        return "one hundred"
    tens, ones = divmod(n, 10)
    return _TENS[tens] + ("" if ones == 0 else "-" + _SMALL[ones])


def _numbers(text: str) -> list[float]:
    out: list[float] = []
    for match in _NUMBER_RE.finditer(text):
        token = match.group(0).lower()
        out.append(float(_WORD_VALUES[token]) if token in _WORD_VALUES else float(token))
    return out


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def _name_phrase(tool_name: str) -> str:
    return " ".join(_words(tool_name.replace("_", " ").replace("-", " ")))


def _find_tool(text: str, tools: tuple[ToolSpec, ...]) -> ToolSpec | None:
    said = " " + " ".join(_words(text)) + " "
    best: ToolSpec | None = None
    for tool in tools:
        phrase = _name_phrase(tool.name)
        if phrase and f" {phrase} " in said and (best is None or len(phrase) > len(_name_phrase(best.name))):
            best = tool
    return best


def _remaining_words(text: str, tool: ToolSpec) -> str:
    phrase = _name_phrase(tool.name)
    words = re.findall(r"\S+", text)
    plain = [" ".join(_words(w)) for w in words]
    n = len(phrase.split())
    for i in range(len(words)):
        if " ".join(p for p in plain[i : i + n] if p) == phrase:
            rest = words[i + n :]
            break
    else:
        rest = words
    return " ".join(rest).strip(" \t.,!?;:")


def _arguments(text: str, tool: ToolSpec) -> str:
    numbers = _numbers(_QUOTED_RE.sub(" ", text))
    quoted = [next(g for g in m.groups() if g is not None) for m in _QUOTED_RE.finditer(text)]
    fallback = None if quoted else _remaining_words(_QUOTED_RE.sub(" ", text), tool)
    lowered = set(_words(text))
    args: dict[str, Any] = {}
    for param in tool.params:
        if param.kind in ("number", "integer"):
            if numbers:
                value = numbers.pop(0)
                args[param.name] = int(value) if param.kind == "integer" or value.is_integer() else value
        elif param.kind == "string":
            if quoted:
                args[param.name] = quoted.pop(0)
            elif fallback:
                args[param.name], fallback = fallback, None
        elif param.kind == "boolean":
            if lowered & {"true", "yes"}:
                args[param.name] = True
            elif lowered & {"false", "no"}:
                args[param.name] = False
    return json.dumps(args)


def _count(text: str) -> str | None:
    match = _COUNT_RE.search(text)
    if not match:
        return None
    token = match.group(1).lower()
    n = _WORD_VALUES[token] if token in _WORD_VALUES else int(token)
    if n < 1:
        return "There is nothing to count."
    n = min(n, MAX_COUNT)
    words = [number_words(i) for i in range(1, n + 1)]
    return (", ".join(words) + ".").capitalize()


def _say_prefix(instructions: str) -> str:
    stripped = instructions.lstrip()
    if stripped[:4].lower() != "say:":
        return ""
    return stripped[4:].split("\n", 1)[0].strip()


def _with_prefix(ctx: ReplyContext, text: str, rule: str) -> Reply:
    prefix = _say_prefix(ctx.instructions)
    return Reply(text=f"{prefix} {text}" if prefix else text, rule=rule)


def plan_reply(ctx: ReplyContext) -> Reply:
    """The reply for ``ctx`` by the rules in this module's docstring."""
    latest: Turn | None = None
    for turn in reversed(ctx.turns):
        if turn.role == "function_call_output" or (turn.role == "user" and (turn.text.strip() or turn.image)):
            latest = turn
            break

    if latest is not None and latest.role == "function_call_output":
        name = next(
            (t.name for t in ctx.turns if t.role == "function_call" and t.call_id == latest.call_id and t.name),
            "",
        )
        who = name or "The tool"
        return _with_prefix(ctx, f"{who} returned {latest.text}.", "tool_output")

    text = ""
    text_at = len(ctx.turns)
    for index in range(len(ctx.turns) - 1, -1, -1):
        turn = ctx.turns[index]
        if turn.role == "function_call_output":
            break
        if turn.role == "user" and turn.text.strip():
            text, text_at = turn.text.strip(), index
            break
    image = next((t.image for t in reversed(ctx.turns) if t.role == "user" and t.image), None)

    choice = ctx.tool_choice or "auto"
    if choice != "none" and ctx.tools:
        tool: ToolSpec | None = None
        if choice not in ("auto", "required"):
            tool = next((t for t in ctx.tools if t.name == choice), None)
        if tool is None:
            tool = _find_tool(text, ctx.tools)
        if tool is None and choice == "required":
            tool = ctx.tools[0]
        if tool is not None:
            return Reply(function_name=tool.name, arguments=_arguments(text, tool), rule="tool_call")

    if text:
        counted = _count(text)
        if counted is not None:
            return _with_prefix(ctx, counted, "count")
    if image is not None and (not text or set(_words(text)) & IMAGE_WORDS):
        return _with_prefix(
            ctx, f"I see a {image.width} by {image.height} image. It is mostly {image.colour}.", "image"
        )
    if text and f" {RECALL_PHRASE} " in " " + " ".join(_words(text)) + " ":
        first = next((t.text.strip() for t in ctx.turns[:text_at] if t.role == "user" and t.text.strip()), "")
        return _with_prefix(ctx, f"You first said: {first}" if first else NOTHING_SAID, "recall")
    if text:
        return _with_prefix(ctx, f"You said: {text}", "echo")
    return _with_prefix(ctx, GREETING, "greeting")
