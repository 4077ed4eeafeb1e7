"""Finding tickets on the desk: by state, assignee, customer, order id and text."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import String, cast, func, or_
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from agent.store.tables import Conversation, Customer, Message, ProposedAction, Ticket, TicketStatus


@dataclass(frozen=True)
class TicketQuery:
    status: TicketStatus | None = None
    assignee_id: int | None = None
    unassigned: bool = False
    customer: str | None = None  # a customer id, an email, or part of a name
    order_id: str | None = None  # with or without the leading "#"
    text: str | None = None  # in the reason, the summary or the conversation
    newest_first: bool = False
    limit: int = 50
    offset: int = 0


def _like(term: str) -> str:
    escaped = term.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _in_messages(term: str) -> ColumnElement[bool]:
    """The ticket's conversation has a message containing `term`. Messages are stored as JSON,
    so the term is searched for as JSON spells it (quotes and non-ASCII escaped)."""
    spelled = json.dumps(term, ensure_ascii=True)[1:-1]
    having = select(Message.conversation_id).where(
        func.lower(cast(Message.content, String)).like(_like(spelled), escape="\\")
    )
    return col(Ticket.conversation_id).in_(having)


def _about_customer(who: str) -> ColumnElement[bool]:
    pattern = _like(who.strip())
    customers = select(Customer.id).where(
        or_(
            col(Customer.id) == who.strip(),
            func.lower(Customer.email) == who.strip().lower(),
            func.lower(Customer.first_name + " " + Customer.last_name).like(pattern, escape="\\"),
        )
    )
    conversations = select(Conversation.id).where(col(Conversation.customer_id).in_(customers))
    return or_(
        col(Ticket.customer_id).in_(customers),
        col(Ticket.conversation_id).in_(conversations),
    )


def _about_order(order_id: str) -> ColumnElement[bool]:
    bare = order_id.strip().lstrip("#")
    actions = select(ProposedAction.conversation_id).where(
        func.lower(cast(ProposedAction.arguments, String)).like(_like(bare), escape="\\")
    )
    return or_(
        func.lower(Ticket.summary).like(_like(bare), escape="\\"),
        col(Ticket.conversation_id).in_(actions),
        _in_messages(bare),
    )


def search_tickets(session: Session, query: TicketQuery) -> tuple[list[Ticket], int]:
    """The page of matching tickets and how many match in all."""
    where: list[ColumnElement[bool]] = []
    if query.status is not None:
        where.append(col(Ticket.status) == query.status)
    if query.unassigned:  # nobody has it: neither a staff account nor an admin key
        where.append(col(Ticket.assignee_id).is_(None))
        where.append(col(Ticket.claimed_by).is_(None))
    elif query.assignee_id is not None:
        where.append(col(Ticket.assignee_id) == query.assignee_id)
    if query.customer and query.customer.strip():
        where.append(_about_customer(query.customer))
    if query.order_id and query.order_id.strip().lstrip("#"):
        where.append(_about_order(query.order_id))
    if query.text and query.text.strip():
        term = query.text.strip()
        where.append(
            or_(
                func.lower(Ticket.reason).like(_like(term), escape="\\"),
                func.lower(Ticket.summary).like(_like(term), escape="\\"),
                _in_messages(term),
            )
        )
    total = session.exec(select(func.count()).select_from(Ticket).where(*where)).one()
    order = col(Ticket.id).desc() if query.newest_first else col(Ticket.id)
    rows = session.exec(
        select(Ticket).where(*where).order_by(order).offset(query.offset).limit(query.limit)
    ).all()
    return list(rows), int(total)
