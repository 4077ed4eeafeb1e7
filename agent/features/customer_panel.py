"""What the desk shows beside a conversation: who the customer is (as verified), their
orders with the changes made to them, and their earlier conversations and tickets."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel
from sqlmodel import Session, col, func, select

from agent.errors import NotFound
from agent.store import proposals
from agent.store.orders import PaymentMethodView, format_cents
from agent.store.tables import (
    ActionStatus,
    Conversation,
    ConversationState,
    Customer,
    Message,
    ProposedAction,
    Ticket,
    TicketStatus,
    UtcTime,
)
from tools.order_system import OrderRecord, OrderSystem
from tools.orders import method_view, summary_of
from tools.tool_context import ToolError

log = logging.getLogger(__name__)
ORDERS_SHOWN, CONVERSATIONS_SHOWN = 20, 20


class PanelAction(BaseModel):
    id: str
    tool: str
    summary: str
    status: ActionStatus
    proposed_by: str
    decided_by: str | None
    created_at: UtcTime
    decided_at: UtcTime | None
    system_reply: str | None = None  # what the shop's order system answered
    discrepancy: str | None = None  # where that differed from what was confirmed


class PanelItem(BaseModel):
    """An order's line, as the desk's change form offers it."""

    item_id: str
    product_id: str
    name: str
    options: dict[str, Any]
    price: str


class PanelOrder(BaseModel):
    order_id: str
    status: str
    item_count: int
    total: str
    items: list[PanelItem] = []
    actions: list[PanelAction] = []


class PanelTicket(BaseModel):
    id: int
    status: TicketStatus
    reason: str
    claimed_by: str | None
    created_at: UtcTime
    resolved_at: UtcTime | None


class PanelConversation(BaseModel):
    id: str
    state: ConversationState
    channel: str
    created_at: UtcTime
    updated_at: UtcTime
    messages: int
    tickets: list[PanelTicket] = []


class CustomerPanel(BaseModel):
    id: str
    name: str
    email: str
    zip_code: str
    address: dict[str, Any]
    payment_methods: list[PaymentMethodView] = []
    orders: list[PanelOrder]
    account_actions: list[PanelAction] = []  # changes not tied to one order (the address)
    conversations: list[PanelConversation]
    order_system: str = "built-in"
    # Why orders and payment methods are missing: the order system could not be read now.
    orders_error: str | None = None


def _action(action: ProposedAction) -> PanelAction:
    return PanelAction.model_validate(
        {**action.model_dump(), "status": proposals.current_status(action)}
    )


def customer_panel(session: Session, customer_id: str, orders: OrderSystem) -> CustomerPanel:
    """The panel for a verified customer (the desk only asks for the customer the
    conversation verified, or the ticket was opened for). Orders and payment methods come
    from the order system; when it cannot be read, the rest still shows, saying so."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"Customer {customer_id} not found")
    listed: list[OrderRecord] = []
    methods: list[PaymentMethodView] = []
    failed: str | None = None
    try:
        record = orders.customer(customer_id)
        if record is not None and record.id == customer_id:
            methods = [method_view(m) for m in record.methods]
            listed = [o for o in orders.orders_of(record, ORDERS_SHOWN)
                      if o.customer_id == customer_id]  # fmt: skip
    except ToolError as exc:
        log.warning("customer panel of %s: order system %s: %s", customer_id, orders.name,
                    getattr(exc, "detail", exc))  # fmt: skip
        failed = str(exc)
    by_order: dict[str, list[PanelAction]] = {}
    account: list[PanelAction] = []
    for action in proposals.list_actions(session=session, customer_id=customer_id, limit=200):
        order_id = action.arguments.get("order_id")
        target = by_order.setdefault(str(order_id), []) if order_id else account
        target.append(_action(action))
    panel_orders = [
        PanelOrder(
            **summary_of(o).model_dump(),
            items=[PanelItem(item_id=li.item_id, product_id=li.product_id, name=li.name,
                             options=li.options, price=format_cents(li.price_cents))
                   for li in o.items],
            actions=by_order.get(o.id, []),
        )
        for o in listed
    ]  # fmt: skip
    count = (
        select(func.count())
        .select_from(Message)
        .where(Message.conversation_id == Conversation.id)
        .scalar_subquery()
    )
    rows = session.exec(
        select(Conversation, count)
        .where(Conversation.customer_id == customer_id)
        .order_by(col(Conversation.created_at).desc())
        .limit(CONVERSATIONS_SHOWN)
    ).all()
    ids = [c.id for c, _ in rows]
    tickets: dict[str, list[PanelTicket]] = {}
    if ids:
        for t in session.exec(
            select(Ticket).where(col(Ticket.conversation_id).in_(ids)).order_by(col(Ticket.id))
        ):
            tickets.setdefault(t.conversation_id, []).append(
                PanelTicket.model_validate(t, from_attributes=True)
            )
    conversations = [
        PanelConversation.model_validate(
            {**c.model_dump(), "messages": n or 0, "tickets": tickets.get(c.id, [])}
        )
        for c, n in rows
    ]
    return CustomerPanel(
        id=customer.id,
        name=f"{customer.first_name} {customer.last_name}",
        email=customer.email,
        zip_code=customer.zip_code,
        address=customer.address,
        payment_methods=methods,
        orders=panel_orders,
        account_actions=account,
        conversations=conversations,
        order_system=orders.name,
        orders_error=failed,
    )
