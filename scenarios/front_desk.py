"""A front desk that transfers callers to billing or tech support, who can send them back.

Handoffs appear to the model as tools: ``transfer_to_billing``, ``transfer_to_tech_support`` and,
from either specialist, ``transfer_to_front_desk``. Each agent's first instruction line is the
sentence it opens with (offline, the local engine starts every reply with a ``Say:`` line, so you
can hear who is talking). The specialists' tools answer from fixed, made-up data.
"""

from __future__ import annotations

from agents import function_tool
from agents.realtime import RealtimeAgent

from scenarios import ScenarioContext

INVOICES: dict[str, dict[str, str | float]] = {
    "1001": {"amount": 42.0, "currency": "USD", "status": "paid", "due": "2025-01-31"},
    "1002": {"amount": 129.5, "currency": "USD", "status": "due", "due": "2025-02-28"},
    "1003": {"amount": 15.0, "currency": "USD", "status": "overdue", "due": "2024-12-31"},
}
SERVICE_STATUS: dict[str, str] = {
    "email": "operational",
    "internet": "degraded: slow speeds in the north region, a fix is expected within two hours",
    "phone": "operational",
    "tv": "outage: engineers are on site",
}


@function_tool
def look_up_invoice(invoice_id: str) -> dict[str, object]:
    """Look up an invoice by its number.

    Args:
        invoice_id: The invoice number, e.g. 1001.
    """
    key = "".join(ch for ch in invoice_id if ch.isdigit())
    invoice = INVOICES.get(key)
    if invoice is None:
        return {"invoice_id": invoice_id, "found": False}
    return {"invoice_id": key, "found": True, **invoice}


@function_tool
def check_service_status(service: str) -> dict[str, str]:
    """Check whether one of our services is working right now.

    Args:
        service: The service: email, internet, phone or tv.
    """
    name = service.strip().lower().rstrip(".!?")
    unknown = "unknown service: we offer " + ", ".join(SERVICE_STATUS)
    return {"service": name, "status": SERVICE_STATUS.get(name, unknown)}


billing: RealtimeAgent[ScenarioContext] = RealtimeAgent(
    name="billing",
    instructions=(
        "Say: Billing here.\n"
        "Open your first reply after a transfer with the sentence above. You handle invoices, charges and "
        "payments: look invoices up with look_up_invoice and read out the amount, status and due date. "
        "If the caller needs something else, transfer them back to the front desk."
    ),
    tools=[look_up_invoice],
)

tech_support: RealtimeAgent[ScenarioContext] = RealtimeAgent(
    name="tech_support",
    instructions=(
        "Say: Tech support here.\n"
        "Open your first reply after a transfer with the sentence above. You help with services that do "
        "not work: check the service with check_service_status first, then give one short, practical step. "
        "If the caller needs something else, transfer them back to the front desk."
    ),
    tools=[check_service_status],
)

agent: RealtimeAgent[ScenarioContext] = RealtimeAgent(
    name="front_desk",
    instructions=(
        "Say: Front desk here.\n"
        "Greet the caller with the sentence above and find out what they need, in one short sentence. "
        "Do not answer billing or technical questions yourself: transfer invoice, charge and payment "
        "questions to billing, and problems with email, internet, phone or tv to tech support."
    ),
    handoffs=[billing, tech_support],
)

billing.handoffs.append(agent)
tech_support.handoffs.append(agent)
