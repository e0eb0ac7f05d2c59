"""An agent with an output guardrail and a tool that needs the user's approval.

The guardrail ``no_blocked_content`` trips when a reply contains a blocked word (``BLOCKED_WORDS``:
the defaults below, or the comma-separated ``REALTIME_GUARDRAIL_WORDS``, read when this module
loads) or something that looks like a card number (13 to 19 digits, spaces or dashes allowed, that
pass the Luhn check). The session then cuts the reply off. ``issue_refund`` runs only once the user
approves the call.
"""

from __future__ import annotations

import os
import re
from typing import Any

from agents import Agent, GuardrailFunctionOutput, RunContextWrapper, function_tool, output_guardrail
from agents.realtime import RealtimeAgent

from scenarios import ScenarioContext

DEFAULT_BLOCKED_WORDS: tuple[str, ...] = ("banana", "password", "confidential")
WORDS_ENV = "REALTIME_GUARDRAIL_WORDS"

_CARD_RE = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d])")


def blocked_words(value: str | None) -> tuple[str, ...]:
    """The blocked words from a comma-separated ``value``; the defaults when it is unset or blank."""
    words = tuple(w.strip().lower() for w in (value or "").split(",") if w.strip())
    return words or DEFAULT_BLOCKED_WORDS


BLOCKED_WORDS: tuple[str, ...] = blocked_words(os.environ.get(WORDS_ENV))


def luhn_ok(digits: str) -> bool:
    """Whether a string of digits passes the Luhn checksum that card numbers carry."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def find_violation(text: str, words: tuple[str, ...] = ()) -> dict[str, str] | None:
    """The first rule ``text`` breaks, as ``{"rule": ..., "match": ...}``, or None.

    ``words`` defaults to ``BLOCKED_WORDS``. A card number's match shows only its last four digits.
    """
    for word in words or BLOCKED_WORDS:
        found = re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, re.IGNORECASE)
        if found:
            return {"rule": "blocked word", "match": found.group(0)}
    for found in _CARD_RE.finditer(text):
        digits = re.sub(r"\D", "", found.group(0))
        if luhn_ok(digits):
            return {"rule": "card number", "match": f"card ending {digits[-4:]}"}
    return None


@output_guardrail(name="no_blocked_content")
def no_blocked_content(ctx: RunContextWrapper[Any], agent: Agent[Any], output: Any) -> GuardrailFunctionOutput:
    """Trip on a blocked word or a card number in the reply so far."""
    violation = find_violation(str(output))
    return GuardrailFunctionOutput(output_info=violation or {"rule": None}, tripwire_triggered=violation is not None)


@function_tool(needs_approval=True)
def issue_refund(amount: float) -> dict[str, object]:
    """Refund the caller. The caller must approve each refund before it is issued.

    Args:
        amount: The amount to refund, in US dollars.
    """
    if amount <= 0:
        return {"error": "The amount to refund must be more than zero."}
    refunded = int(amount) if float(amount).is_integer() else round(amount, 2)
    return {"refunded": refunded, "currency": "USD", "reference": f"RF-{round(amount * 100):08d}"}


agent: RealtimeAgent[ScenarioContext] = RealtimeAgent(
    name="careful_agent",
    instructions=(
        "Say: Careful agent here.\n"
        "You are a careful customer-service agent; you may open with the sentence above. Never read out card "
        "numbers, passwords or confidential details. When the caller asks for a refund, call issue_refund "
        "with the amount; the caller approves it on screen before it goes through."
    ),
    tools=[issue_refund],
    output_guardrails=[no_blocked_content],
)
