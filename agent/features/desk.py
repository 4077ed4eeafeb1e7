"""The hand-off desk: staff take a ticket (claim it, or are assigned it), reply in its
conversation, keep internal notes, and resolve it.

While a human has the conversation the bot stays silent (customer messages are stored and
wait); resolving hands the conversation back to the bot, with the whole exchange in history.
Each step is written with a desk event in the same transaction: the desk's live feed and the
customer's "Anna joined the conversation" notices (agent/store/desk_events.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from agent.errors import Conflict, InvalidInput, NotFound
from agent.store import desk_events, email
from agent.store.conversations import append_message, lock_conversation, set_state
from agent.store.db import transaction
from agent.store.desk_events import DeskEventKind
from agent.store.tables import (
    ConversationState,
    Message,
    StaffAccount,
    Ticket,
    TicketNote,
    TicketStatus,
    utcnow,
)

NOTE_MAX_CHARS = 4000


@dataclass(frozen=True)
class Staff:
    """Who acts on the desk: a staff account (with its id), or an admin key (no account)."""

    name: str  # the display name customers and colleagues see
    account_id: int | None = None


def joined_text(name: str) -> str:
    return f"{name} joined the conversation."


def resolved_text(name: str) -> str:
    return f"{name} has resolved this conversation; the assistant is back."


def unassigned_text(name: str) -> str:
    return f"{name} stepped away; the next person on our team will pick this up."


def _ticket(session: Session, ticket_id: int, *, lock: bool = False) -> Ticket:
    query = select(Ticket).where(Ticket.id == ticket_id)
    ticket = session.exec(query.with_for_update() if lock else query).first()
    if ticket is None:
        raise NotFound(f"Ticket {ticket_id} not found")
    return ticket


def _tell(
    session: Session, ticket: Ticket, kind: DeskEventKind, actor: Staff, text: str = ""
) -> None:
    """Put what happened to the ticket on the desk's feed (and, for the kinds the customer is
    shown, before them), in the transaction that made it happen."""
    desk_events.record(session=session, kind=kind, actor=actor.name, text=text,
                       conversation_id=ticket.conversation_id, ticket_id=ticket.id)  # fmt: skip


def _holder_is(ticket: Ticket, staff: Staff) -> bool:
    if ticket.assignee_id is not None or staff.account_id is not None:
        return ticket.assignee_id == staff.account_id
    return ticket.claimed_by == staff.name


def _take(session: Session, ticket: Ticket, holder: Staff, *, actor: Staff) -> None:
    """Give the ticket to `holder`, telling the customer when the person changes."""
    changed = ticket.status != TicketStatus.CLAIMED or not _holder_is(ticket, holder)
    ticket.status, ticket.claimed_by, ticket.assignee_id = (
        TicketStatus.CLAIMED,
        holder.name,
        holder.account_id,
    )
    session.add(ticket)
    if changed:
        _tell(session, ticket, DeskEventKind.JOINED, actor, joined_text(holder.name))


def claim(engine: Engine, *, ticket_id: int, staff: Staff) -> Ticket:
    with transaction(engine) as session:
        ticket = _ticket(session, ticket_id, lock=True)
        if ticket.status == TicketStatus.RESOLVED:
            raise Conflict(f"Ticket {ticket_id} is already resolved")
        if ticket.status == TicketStatus.CLAIMED and not _holder_is(ticket, staff):
            raise Conflict(f"Ticket {ticket_id} is already claimed by {ticket.claimed_by}")
        _take(session, ticket, staff, actor=staff)
        return ticket


def assign(engine: Engine, *, ticket_id: int, to: int | None, by: Staff) -> Ticket:
    """Give the ticket to a staff account (`to`), or back to the queue (None)."""
    with transaction(engine) as session:
        ticket = _ticket(session, ticket_id, lock=True)
        if ticket.status == TicketStatus.RESOLVED:
            raise Conflict(f"Ticket {ticket_id} is already resolved")
        if to is None:
            if ticket.status == TicketStatus.CLAIMED:
                left = unassigned_text(ticket.claimed_by or by.name)
                _tell(session, ticket, DeskEventKind.UNASSIGNED, by, left)
            ticket.status, ticket.claimed_by, ticket.assignee_id = TicketStatus.OPEN, None, None
            session.add(ticket)
            return ticket
        account = session.get(StaffAccount, to)
        if account is None or account.disabled:
            raise InvalidInput(f"No active staff account with id {to}.")
        _take(session, ticket, Staff(account.display_name, account.id), actor=by)
        return ticket


def _written(text: str, what: str, max_chars: int) -> str:
    """Staff's text, trimmed; InvalidInput when empty or over `max_chars`."""
    text = (text or "").strip()
    if not text:
        raise InvalidInput(f"The {what} is empty.")
    if len(text) > max_chars:
        raise InvalidInput(
            f"The {what} is too long ({len(text)} characters; the limit is {max_chars})."
        )
    return text


def reply(engine: Engine, *, ticket_id: int, staff: Staff, text: str, max_chars: int) -> Message:
    text = _written(text, "reply", max_chars)
    with transaction(engine) as session:
        ticket = _ticket(session, ticket_id, lock=True)
        if ticket.status == TicketStatus.RESOLVED:
            raise Conflict(f"Ticket {ticket_id} is already resolved")
        conversation = lock_conversation(session=session, conversation_id=ticket.conversation_id)
        if conversation.state == ConversationState.CLOSED:
            raise Conflict(
                "The customer ended this conversation, so a reply would not reach them; "
                "resolve the ticket once its follow-up is done."
            )
        if conversation.state != ConversationState.HUMAN:
            raise Conflict("The bot has this conversation; it is not waiting for a human")
        if ticket.status == TicketStatus.OPEN:  # replying takes an unclaimed ticket
            _take(session, ticket, staff, actor=staff)
        message = append_message(
            session=session,
            conversation_id=ticket.conversation_id,
            role="assistant",
            content=[{"type": "text", "text": text}],
            author=f"staff:{staff.name}",
        )
        _tell(session, ticket, DeskEventKind.STAFF_REPLY, staff)
        # An email conversation's reply goes out by email too, in its thread (queued here, in
        # the same transaction: sent once, whatever happens to the SMTP server meanwhile).
        email.enqueue(session=session, key=f"staff:{message.id}",
                      conversation_id=ticket.conversation_id, kind="staff",
                      text=f"{text}\n\n{staff.name}")  # fmt: skip
        return message


def resolve(engine: Engine, *, ticket_id: int, staff: Staff) -> Ticket:
    with transaction(engine) as session:
        ticket = _ticket(session, ticket_id, lock=True)
        if ticket.status == TicketStatus.RESOLVED:
            return ticket
        ticket.status, ticket.resolved_at = TicketStatus.RESOLVED, utcnow()
        if ticket.claimed_by is None:
            ticket.claimed_by, ticket.assignee_id = staff.name, staff.account_id
        session.add(ticket)
        conversation = lock_conversation(session=session, conversation_id=ticket.conversation_id)
        if conversation.state == ConversationState.HUMAN:
            set_state(
                session=session,
                conversation_id=ticket.conversation_id,
                state=ConversationState.BOT,
            )
        _tell(session, ticket, DeskEventKind.RESOLVED, staff, resolved_text(staff.name))
        return ticket


def add_note(engine: Engine, *, ticket_id: int, staff: Staff, text: str) -> TicketNote:
    """An internal note: stored beside the ticket, never in the conversation."""
    text = _written(text, "note", NOTE_MAX_CHARS)
    with transaction(engine) as session:
        ticket = _ticket(session, ticket_id)
        note = TicketNote(ticket_id=ticket_id, author=staff.name, text=text)
        session.add(note)
        session.flush()
        _tell(session, ticket, DeskEventKind.NOTE, staff)
        return note


def list_notes(session: Session, *, ticket_id: int) -> list[TicketNote]:
    _ticket(session, ticket_id)
    query = select(TicketNote).where(TicketNote.ticket_id == ticket_id)
    return list(session.exec(query.order_by(col(TicketNote.id))).all())
