"""The chat-supervisor pattern: a quick voice agent that asks a stronger text model for answers.

The voice agent keeps the conversation going; for anything beyond small talk it calls
``ask_supervisor(question)``. With the OpenAI backend the supervisor is ``SUPERVISOR_MODEL`` through
the Responses API, with the call's own key and base URL. Offline (the local engine) it answers from
a few canned policies, found by keyword. Either way the tool returns text and never raises.
"""

from __future__ import annotations

import logging

import openai
from agents import RunContextWrapper, function_tool
from agents.realtime import RealtimeAgent

from scenarios import ScenarioContext

log = logging.getLogger(__name__)

SUPERVISOR_MODEL = "gpt-4.1"
SUPERVISOR_TIMEOUT_S = 20.0
SUPERVISOR_INSTRUCTIONS = (
    "You are the supervisor of a customer-service voice agent at Acme. Answer the agent's question in at "
    "most three short sentences it can read out to the caller. Acme policies: refunds within 30 days of "
    "purchase, to the original card; opening hours 9 to 5, Monday to Friday; standard shipping "
    "takes 3 to 5 working days; every device has a two-year warranty. If the policies do not cover the "
    "question, say that a colleague will follow up by email."
)

# Offline answers: the first keyword found in the question picks the answer. No final full stop: the
# local engine reads a tool's output out as "ask_supervisor returned <answer>."
LOCAL_POLICIES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("refund", "return", "money back"), "Refunds are possible within 30 days of purchase, to the original card"),
    (("hour", "open", "close"), "We are open from 9 to 5, Monday to Friday"),
    (("ship", "deliver", "parcel"), "Standard shipping takes 3 to 5 working days"),
    (("warranty", "broken", "repair"), "Every device has a two-year warranty; repairs under warranty are free"),
)
LOCAL_DEFAULT = "I have no policy on that; tell the caller a colleague will follow up by email"


def local_answer(question: str) -> str:
    """The offline supervisor's answer: the first canned policy whose keyword is in ``question``."""
    lowered = question.lower()
    for keywords, answer in LOCAL_POLICIES:
        if any(word in lowered for word in keywords):
            return answer
    return LOCAL_DEFAULT


async def _openai_answer(question: str, context: ScenarioContext) -> str:
    try:
        async with openai.AsyncOpenAI(
            api_key=context.api_key, base_url=context.base_url, timeout=SUPERVISOR_TIMEOUT_S, max_retries=1
        ) as client:
            response = await client.responses.create(
                model=SUPERVISOR_MODEL, instructions=SUPERVISOR_INSTRUCTIONS, input=question
            )
    except Exception as exc:  # the tool must answer something; the key is never in what we log or return
        log.warning("supervisor call failed: %s", type(exc).__name__)
        return f"The supervisor could not be reached ({type(exc).__name__}); apologise and offer to follow up."
    return response.output_text.strip() or LOCAL_DEFAULT


@function_tool
async def ask_supervisor(ctx: RunContextWrapper[ScenarioContext], question: str) -> str:
    """Ask your supervisor how to answer the caller. Use it for every question about policies, orders or
    anything you are not sure of, and read the answer out.

    Args:
        question: The caller's question, in one sentence, with the details that matter.
    """
    context = ctx.context
    if isinstance(context, ScenarioContext) and context.backend == "openai":
        return await _openai_answer(question, context)
    return local_answer(question)


agent: RealtimeAgent[ScenarioContext] = RealtimeAgent(
    name="voice_agent",
    instructions=(
        "Say: Let me check that for you.\n"
        "You are Acme's friendly voice agent. Handle greetings and small talk yourself, in one short sentence. "
        "For any other question, first say the sentence above, then call ask_supervisor with the question "
        "and read its answer out naturally. Never make up a policy."
    ),
    tools=[ask_supervisor],
)
