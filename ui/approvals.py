"""Approval cards in the call bar: a scenario's tool that waits for the user, with Approve and Deny.

Drawn by the call bar's polling status line, so a card appears as soon as the agent asks and goes
once it is decided. The card's words are a pure function of the request (`approval_card`)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import streamlit as st

from scenarios import agent_label
from ui.format import call_args, escape_markdown

if TYPE_CHECKING:
    from realtime.agent_link import ApprovalNeeded
    from realtime.bridge import Bridge, BridgeSnapshot
    from ui.conversation import Conversation

DECIDED_KEY = "approvals.decided"  # call ids decided in this session: hidden before the bridge drops them
_DECIDED_KEPT = 100
ARGS_LIMIT = 120


@dataclass(frozen=True)
class ApprovalCard:
    call_id: str
    text: str  # plain text: "Billing wants to run issue_refund(order="A17", amount=20)"
    key: str  # the card's container
    approve_key: str
    deny_key: str


def approval_text(request: ApprovalNeeded) -> str:
    """``Billing wants to run issue_refund(order="A17", amount=20)``."""
    who = agent_label(request.agent) if request.agent.strip() else "The assistant"
    return f"{who} wants to run {request.tool or 'a tool'}({call_args(request.arguments, ARGS_LIMIT)})"


def approval_card(request: ApprovalNeeded) -> ApprovalCard:
    return ApprovalCard(
        call_id=request.call_id,
        text=approval_text(request),
        key=f"approval-{request.call_id}",
        approve_key=f"approval-approve-{request.call_id}",
        deny_key=f"approval-deny-{request.call_id}",
    )


def pending_cards(approvals: Sequence[ApprovalNeeded], decided: Collection[str] = ()) -> tuple[ApprovalCard, ...]:
    """One card per request still waiting, oldest first; each call id once; those just decided left out."""
    seen: set[str] = set(decided)
    cards: list[ApprovalCard] = []
    for request in approvals:
        if request.call_id in seen:
            continue
        seen.add(request.call_id)
        cards.append(approval_card(request))
    return tuple(cards)


def _decide(bridge: Bridge, call_id: str, approved: bool) -> None:
    """`on_click`: hand the decision to the bridge (it returns at once) and hide the card now."""
    decided: list[str] = st.session_state.setdefault(DECIDED_KEY, [])
    decided.append(call_id)
    del decided[:-_DECIDED_KEPT]
    if approved:
        bridge.approve(call_id)
    else:
        bridge.deny(call_id)


def render_approvals(conv: Conversation, snapshot: BridgeSnapshot | None) -> None:
    """A card per tool waiting for the user, with Approve (primary) and Deny."""
    bridge = conv.bridge
    if bridge is None or snapshot is None or not snapshot.approvals:
        return
    for card in pending_cards(snapshot.approvals, st.session_state.get(DECIDED_KEY, ())):
        with st.container(border=True, key=card.key):
            st.markdown(f":material/front_hand: {escape_markdown(card.text)}")
            approve, deny = st.columns(2)
            approve.button(
                "Approve",
                key=card.approve_key,
                type="primary",
                icon=":material/check:",
                width="stretch",
                on_click=_decide,
                args=(bridge, card.call_id, True),
            )
            deny.button(
                "Deny",
                key=card.deny_key,
                icon=":material/block:",
                width="stretch",
                on_click=_decide,
                args=(bridge, card.call_id, False),
            )
