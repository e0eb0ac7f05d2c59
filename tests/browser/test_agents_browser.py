"""Scenarios in the real page: a handoff, a guardrail and an approval, as a new user would try them.

Chromium with fake media; the app on its local engine, started with ``REALTIME_SCENARIO`` set: the
built-in ``front_desk`` and ``guarded``, and a user's own file outside the repository.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import launch
from tests.browser.driver import LONG, items, open_app, screenshot, start_call, status, stop_call, type_message
from tests.browser.harness import VIEWPORT, clean_env, start_streamlit

pytestmark = pytest.mark.browser

MY_AGENTS = '''
from agents import GuardrailFunctionOutput, function_tool, output_guardrail
from agents.realtime import RealtimeAgent


@function_tool(needs_approval=True)
def cancel_order(order_id: str) -> str:
    """Cancel an order by its number."""
    return f"Order {order_id} is cancelled."


@output_guardrail
def food_filter(ctx, agent, output) -> GuardrailFunctionOutput:
    return GuardrailFunctionOutput(output_info={"match": "pickle"}, tripwire_triggered="pickle" in str(output).lower())


orders = RealtimeAgent(
    name="orders", instructions="Say: Orders desk.", tools=[cancel_order], output_guardrails=[food_filter]
)
agent = RealtimeAgent(name="greeter", instructions="Say: Hi from the greeter.", handoffs=[orders])
'''


@contextmanager
def page_for(playwright_instance, media, scenario: str, name: str) -> Iterator[Page]:
    server = start_streamlit(name, clean_env(REALTIME_SCENARIO=scenario))
    browser = launch(playwright_instance, media["silence"], media["blue"])
    try:
        page = browser.new_context(viewport=VIEWPORT).new_page()
        open_app(page, server.url)
        start_call(page)
        yield page
        stop_call(page)
        assert "Traceback" not in page.inner_text("body")
    finally:
        browser.close()
        server.stop()


def last_reply(page: Page, pattern: str):
    loc = items(page, "assistant").filter(has_text=pattern).last
    expect(loc).to_be_visible(timeout=LONG)
    return loc


def transfer(page: Page, words: str, breadcrumb: str, agent: str, greeting: str) -> None:
    type_message(page, words)
    expect(page.locator(".st-key-transcript").get_by_text(breadcrumb)).to_be_visible(timeout=LONG)
    expect(status(page)).to_contain_text(f"Agent: {agent}", timeout=LONG)
    last_reply(page, greeting)


def approve_or_deny(page: Page, words: str, wants: str, button: str) -> None:
    type_message(page, words)
    card = page.locator("[class*='st-key-approval-call']").filter(has_text=wants)
    expect(card).to_be_visible(timeout=LONG)
    card.get_by_role("button", name=button).click()
    expect(card).to_have_count(0, timeout=LONG)


def test_front_desk_hands_off_to_billing(playwright_instance, media):
    with page_for(playwright_instance, media, "front_desk", "scenario-front-desk") as page:
        expect(status(page)).to_contain_text("Agent: Front desk", timeout=LONG)
        transfer(page, "transfer to billing", "Front desk \u2192 Billing", "Billing", "Billing here.")
        type_message(page, "look up invoice 1002")
        last_reply(page, "look_up_invoice returned")
        expect(items(page, "assistant").last).to_contain_text("Billing here.")  # billing's instructions
        screenshot(page, "scenario-front-desk-handoff")


def test_guarded_cuts_a_reply_and_asks_before_a_refund(playwright_instance, media):
    with page_for(playwright_instance, media, "guarded", "scenario-guarded") as page:
        type_message(page, "my password is swordfish")
        expect(items(page, "error").filter(has_text="Guardrail no_blocked_content stopped the reply")).to_be_visible(
            timeout=LONG
        )
        approve_or_deny(page, "issue refund 20", "Careful agent wants to run issue_refund(amount=20)", "Approve")
        last_reply(page, "refunded")
        screenshot(page, "scenario-guarded-approved")
        approve_or_deny(page, "issue refund 30", "issue_refund(amount=30)", "Deny")
        last_reply(page, "not approved")


def test_a_users_own_scenario_file_works_the_same_way(playwright_instance, media, tmp_path):
    mine = tmp_path / "outside" / "my_agents.py"
    mine.parent.mkdir()
    mine.write_text(textwrap.dedent(MY_AGENTS))
    with page_for(playwright_instance, media, f"{mine}:agent", "scenario-own-file") as page:
        expect(status(page)).to_contain_text("Agent: Greeter", timeout=LONG)
        transfer(page, "transfer to orders", "Greeter \u2192 Orders", "Orders", "Orders desk.")
        approve_or_deny(page, 'cancel order "A17"', "cancel_order", "Approve")
        last_reply(page, "Order A17 is cancelled")
        type_message(page, "I like pickles")
        notice = items(page, "error").filter(has_text="Guardrail food_filter stopped the reply (match: pickle)")
        expect(notice).to_have_count(1, timeout=LONG)
