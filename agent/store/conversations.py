"""Conversation, message and ticket data functions (keyword-only, session first)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import Session, col, select

from agent.errors import NotFound
from agent.store.tables import (
    Conversation,
    ConversationState,
    Message,
    Ticket,
    utcnow,
)


def create_conversation(
    *, session: Session, customer_id: str | None = None, channel: str = "api"
) -> Conversation:
    conversation = Conversation(id=str(uuid.uuid4()), customer_id=customer_id, channel=channel)
    session.add(conversation)
    session.flush()
    return conversation


def get_conversation(*, session: Session, conversation_id: str) -> Conversation:
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound(f"Conversation {conversation_id} not found")
    return conversation


def lock_conversation(*, session: Session, conversation_id: str) -> Conversation:
    """The conversation row, locked for this transaction where the backend supports it.

    Two turns of one conversation then append their messages one after the other.
    """
    conversation = session.exec(
        select(Conversation).where(Conversation.id == conversation_id).with_for_update()
    ).first()
    if conversation is None:
        raise NotFound(f"Conversation {conversation_id} not found")
    return conversation


def load_messages(*, session: Session, conversation_id: str) -> list[Message]:
    return list(
        session.exec(
            select(Message)
            .where(Message.conversation_id == conversation_id)
            .order_by(col(Message.sequence))
        ).all()
    )


def append_message(
    *,
    session: Session,
    conversation_id: str,
    role: str,
    content: list[dict[str, Any]],
    stop_reason: str | None = None,
    model: str | None = None,
    usage: dict[str, Any] | None = None,
    degraded: bool = False,
    author: str | None = None,
    citations: list[dict[str, Any]] | None = None,
) -> Message:
    """Add a message after the last one; the caller's transaction decides when it lands.

    Callers lock the conversation row first (`lock_conversation`), so sequences never clash.
    """
    message = Message(
        role=role,
        content=content,
        stop_reason=stop_reason,
        model=model,
        usage=usage,
        degraded=degraded,
        author=author,
        citations=citations,
    )
    return append_messages(session=session, conversation_id=conversation_id, messages=[message])[0]


def append_messages(
    *, session: Session, conversation_id: str, messages: list[Message]
) -> list[Message]:
    """Add `messages` after the last one, in order, in one flush (one counter update)."""
    conversation = get_conversation(session=session, conversation_id=conversation_id)
    for message in messages:
        conversation.last_sequence += 1
        message.conversation_id = conversation_id
        message.sequence = conversation.last_sequence
    conversation.updated_at = utcnow()
    session.add(conversation)
    session.add_all(messages)
    session.flush()
    return messages


def set_state(*, session: Session, conversation_id: str, state: ConversationState) -> None:
    conversation = get_conversation(session=session, conversation_id=conversation_id)
    conversation.state = state
    conversation.updated_at = utcnow()
    session.add(conversation)
    session.flush()


def create_ticket(
    *,
    session: Session,
    conversation_id: str,
    customer_id: str | None,
    reason: str,
    summary: str,
) -> Ticket:
    ticket = Ticket(
        conversation_id=conversation_id,
        customer_id=customer_id,
        reason=reason[:500],
        summary=summary[:4000],
    )
    session.add(ticket)
    session.flush()
    return ticket


def list_tickets(
    *, session: Session, conversation_id: str | None = None, status: str | None = None
) -> list[Ticket]:
    query = select(Ticket).order_by(col(Ticket.id))
    if conversation_id is not None:
        query = query.where(Ticket.conversation_id == conversation_id)
    if status is not None:
        query = query.where(Ticket.status == status)
    return list(session.exec(query).all())
