"""The hand-off desk: staff claim a ticket, reply in its conversation, and resolve it.

While a human has the conversation the bot stays silent (customer messages are stored and
wait); resolving hands the conversation back to the bot, with the whole exchange in history.
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session

from agent.errors import Conflict, InvalidInput, NotFound
from agent.store.conversations import append_message, lock_conversation, set_state
from agent.store.db import transaction
from agent.store.tables import ConversationState, Message, Ticket, TicketStatus, utcnow


def _ticket(session: Session, ticket_id: int) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound(f"Ticket {ticket_id} not found")
    return ticket


def claim(engine: Engine, *, ticket_id: int, staff: str) -> Ticket:
    with transaction(engine) as session:
        ticket = _ticket(session, ticket_id)
        if ticket.status == TicketStatus.RESOLVED:
            raise Conflict(f"Ticket {ticket_id} is already resolved")
        if ticket.status == TicketStatus.CLAIMED and ticket.claimed_by != staff:
            raise Conflict(f"Ticket {ticket_id} is already claimed by {ticket.claimed_by}")
        ticket.status, ticket.claimed_by = TicketStatus.CLAIMED, staff
        session.add(ticket)
        return ticket


def reply(engine: Engine, *, ticket_id: int, staff: str, text: str, max_chars: int) -> Message:
    text = (text or "").strip()
    if not text:
        raise InvalidInput("The reply is empty.")
    if len(text) > max_chars:
        raise InvalidInput(
            f"The reply is too long ({len(text)} characters; the limit is {max_chars})."
        )
    with transaction(engine) as session:
        ticket = _ticket(session, ticket_id)
        if ticket.status == TicketStatus.RESOLVED:
            raise Conflict(f"Ticket {ticket_id} is already resolved")
        conversation = lock_conversation(session=session, conversation_id=ticket.conversation_id)
        if conversation.state != ConversationState.HUMAN:
            raise Conflict("The bot has this conversation; it is not waiting for a human")
        if ticket.status == TicketStatus.OPEN:  # replying claims an unclaimed ticket
            ticket.status, ticket.claimed_by = TicketStatus.CLAIMED, staff
            session.add(ticket)
        return append_message(
            session=session,
            conversation_id=ticket.conversation_id,
            role="assistant",
            content=[{"type": "text", "text": text}],
            author=f"staff:{staff}",
        )


def resolve(engine: Engine, *, ticket_id: int, staff: str) -> Ticket:
    with transaction(engine) as session:
        ticket = _ticket(session, ticket_id)
        if ticket.status == TicketStatus.RESOLVED:
            return ticket
        ticket.status, ticket.resolved_at = TicketStatus.RESOLVED, utcnow()
        ticket.claimed_by = ticket.claimed_by or staff
        session.add(ticket)
        conversation = lock_conversation(session=session, conversation_id=ticket.conversation_id)
        if conversation.state == ConversationState.HUMAN:
            set_state(
                session=session,
                conversation_id=ticket.conversation_id,
                state=ConversationState.BOT,
            )
        return ticket
