"""ui/approvals.py: a scenario's tool waiting for the user, as a card with Approve and Deny."""

from __future__ import annotations

from types import SimpleNamespace

from streamlit.testing.v1 import AppTest

from realtime.agent_link import ApprovalNeeded
from tests.ui.snapshots import snapshot
from ui.approvals import approval_card, approval_text, pending_cards

REFUND = ApprovalNeeded("call_1", "issue_refund", '{"order": "A17", "amount": 20}', "billing")
WIPE = ApprovalNeeded("call_2", "wipe_account", "{}", "tech_support")


def test_the_card_says_who_wants_to_run_what():
    assert approval_text(REFUND) == 'Billing wants to run issue_refund(order="A17", amount=20)'
    assert approval_text(WIPE) == "Tech support wants to run wipe_account()"
    assert approval_text(ApprovalNeeded("c", "t", "not json", "")) == "The assistant wants to run t(not json)"
    card = approval_card(REFUND)
    assert (card.key, card.approve_key, card.deny_key) == (
        "approval-call_1",
        "approval-approve-call_1",
        "approval-deny-call_1",
    )


def test_one_card_per_waiting_call_oldest_first_decided_ones_hidden():
    assert [c.call_id for c in pending_cards((REFUND, WIPE))] == ["call_1", "call_2"]
    assert [c.call_id for c in pending_cards((REFUND, WIPE, REFUND))] == ["call_1", "call_2"]
    assert [c.call_id for c in pending_cards((REFUND, WIPE), decided=["call_1"])] == ["call_2"]
    assert pending_cards(()) == ()


class _Bridge:
    def __init__(self) -> None:
        self.decisions: list[tuple[str, str]] = []

    def approve(self, call_id: str) -> None:
        self.decisions.append(("approve", call_id))

    def deny(self, call_id: str) -> None:
        self.decisions.append(("deny", call_id))


def approvals_script(conv, snap):
    from ui.approvals import render_approvals

    render_approvals(conv, snap)


def _app(bridge, snap) -> AppTest:
    at = AppTest.from_function(approvals_script, kwargs={"conv": SimpleNamespace(bridge=bridge), "snap": snap})
    at.run(timeout=30)
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_approve_and_deny_reach_the_bridge_and_the_card_goes():
    bridge = _Bridge()
    at = _app(bridge, snapshot("connected", agent="billing", approvals=(REFUND, WIPE)))
    assert [m.value for m in at.markdown] == [
        ':material/front_hand: Billing wants to run issue\\_refund(order="A17", amount=20)',
        ":material/front_hand: Tech support wants to run wipe\\_account()",
    ]
    labels = [(b.key, b.label, b.proto.type) for b in at.button]
    assert labels == [
        ("approval-approve-call_1", "Approve", "primary"),
        ("approval-deny-call_1", "Deny", "secondary"),
        ("approval-approve-call_2", "Approve", "primary"),
        ("approval-deny-call_2", "Deny", "secondary"),
    ]
    at.button(key="approval-approve-call_1").click().run(timeout=30)
    assert bridge.decisions == [("approve", "call_1")]
    # the bridge has not dropped it yet (it decides on its loop): the card is gone all the same
    assert [b.key for b in at.button] == ["approval-approve-call_2", "approval-deny-call_2"]
    at.button(key="approval-deny-call_2").click().run(timeout=30)
    assert bridge.decisions == [("approve", "call_1"), ("deny", "call_2")]
    assert not at.button


def test_no_cards_without_a_call_or_a_request():
    assert not _app(None, snapshot("connected", approvals=(REFUND,))).button
    assert not _app(_Bridge(), snapshot("connected")).button
    assert not _app(_Bridge(), None).button
