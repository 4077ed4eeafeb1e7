"""The hand-off desk for staff (admin keys)."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Query
from sqlmodel import Session

from agent.api.deps import AdminDep, SessionDep, StateDep, TicketId
from agent.api.errors import STAFF, responses
from agent.api.schemas import CustomerOut, ReplyCreate, TicketOut
from agent.features import desk
from agent.features.transcript import TranscriptEntry, build_transcript
from agent.store.conversations import list_tickets
from agent.store.db import transaction
from agent.store.tables import Conversation, Customer, Ticket, TicketStatus

router = APIRouter(prefix="/v1/tickets", tags=["tickets"])


def _out(session: Session, ticket: Ticket) -> TicketOut:
    # The customer the ticket was opened for, or the one who verified afterwards.
    conversation = session.get(Conversation, ticket.conversation_id)
    customer_id = ticket.customer_id or (conversation.customer_id if conversation else None)
    customer = session.get(Customer, customer_id) if customer_id else None
    return TicketOut(
        id=ticket.id or 0,
        conversation_id=ticket.conversation_id,
        reason=ticket.reason,
        summary=ticket.summary,
        status=ticket.status,
        claimed_by=ticket.claimed_by,
        created_at=ticket.created_at,
        resolved_at=ticket.resolved_at,
        customer=CustomerOut(name=f"{customer.first_name} {customer.last_name}")
        if customer
        else None,
        customer_id=customer_id,
    )


@router.get("", response_model=list[TicketOut], responses=responses(*STAFF))
def get_tickets(
    _: AdminDep,
    session: SessionDep,
    status: Annotated[TicketStatus | None, Query(description="open, claimed or resolved")] = None,
) -> list[TicketOut]:
    """Hand-off tickets, oldest first."""
    return [_out(session, t) for t in list_tickets(session=session, status=status)]


@router.post("/{ticket_id}/claim", response_model=TicketOut, responses=responses(*STAFF, 404, 409))
async def claim(ticket_id: TicketId, principal: AdminDep, state: StateDep) -> TicketOut:
    """Take a ticket. 409 when another person has it or it is resolved."""
    ticket = await anyio.to_thread.run_sync(
        lambda: desk.claim(state.runtime.engine, ticket_id=ticket_id, staff=principal.staff)
    )
    return await anyio.to_thread.run_sync(_reload, state, ticket.id)


@router.post(
    "/{ticket_id}/reply", response_model=TranscriptEntry, responses=responses(*STAFF, 404, 409, 413)
)
async def reply(
    ticket_id: TicketId, body: ReplyCreate, principal: AdminDep, state: StateDep
) -> TranscriptEntry:
    """Reply to the customer in the ticket's conversation (claims an unclaimed ticket)."""
    message = await anyio.to_thread.run_sync(
        lambda: desk.reply(
            state.runtime.engine,
            ticket_id=ticket_id,
            staff=principal.staff,
            text=body.text,
            max_chars=state.settings.max_message_chars,
        )
    )
    return build_transcript([message])[0]


@router.post(
    "/{ticket_id}/resolve", response_model=TicketOut, responses=responses(*STAFF, 404, 409)
)
async def resolve(ticket_id: TicketId, principal: AdminDep, state: StateDep) -> TicketOut:
    """Close the ticket and hand the conversation back to the bot."""
    ticket = await anyio.to_thread.run_sync(
        lambda: desk.resolve(state.runtime.engine, ticket_id=ticket_id, staff=principal.staff)
    )
    return await anyio.to_thread.run_sync(_reload, state, ticket.id)


def _reload(state: StateDep, ticket_id: int | None) -> TicketOut:
    with transaction(state.runtime.engine) as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        return _out(session, ticket)
