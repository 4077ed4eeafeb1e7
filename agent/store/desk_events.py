"""The desk's event feed: what happened to tickets and their conversations, in order.

Events are written in the same transaction as the change they report, so a reader never sees
one without the other; readers follow the feed by id (server-sent events with Last-Event-ID),
which works across workers and replicas because the feed is in the database.
"""

from __future__ import annotations

from enum import StrEnum

from sqlmodel import Session, col, select

from agent.store.tables import DeskEvent


class DeskEventKind(StrEnum):
    TICKET_OPENED = "ticket_opened"  # the assistant handed a conversation to a person
    CUSTOMER_MESSAGE = "customer_message"  # the customer wrote while a person has it
    JOINED = "joined"  # a person took the conversation (claimed or assigned) — public
    UNASSIGNED = "unassigned"  # nobody has it any more; it waits in the queue — public
    STAFF_REPLY = "staff_reply"  # a person replied — public
    RESOLVED = "resolved"  # the person resolved it; the assistant is back — public
    NOTE = "note"  # an internal note: staff only, never the customer
    CUSTOMER_LEFT = "customer_left"  # the customer ended the conversation while a ticket was open


# What the customer is shown too (the rest is for the desk only).
PUBLIC = frozenset({DeskEventKind.JOINED, DeskEventKind.UNASSIGNED, DeskEventKind.STAFF_REPLY,
                    DeskEventKind.RESOLVED})  # fmt: skip


def record(
    *,
    session: Session,
    kind: DeskEventKind,
    conversation_id: str | None,
    ticket_id: int | None = None,
    actor: str = "",
    text: str = "",
) -> DeskEvent:
    event = DeskEvent(
        kind=kind.value,
        conversation_id=conversation_id,
        ticket_id=ticket_id,
        public=kind in PUBLIC,
        actor=actor[:100],
        text=text[:500],
    )
    session.add(event)
    session.flush()
    return event


def since(
    *,
    session: Session,
    after: int,
    conversation_id: str | None = None,
    public_only: bool = False,
    limit: int = 100,
) -> list[DeskEvent]:
    """Events after id `after`, oldest first (at most `limit`)."""
    query = select(DeskEvent).where(col(DeskEvent.id) > after)
    if conversation_id is not None:
        query = query.where(DeskEvent.conversation_id == conversation_id)
    if public_only:
        query = query.where(col(DeskEvent.public).is_(True))
    return list(session.exec(query.order_by(col(DeskEvent.id)).limit(limit)).all())


def by_ids(*, session: Session, ids: list[int]) -> list[DeskEvent]:
    """The events with these ids that exist (and are visible to this session), by id."""
    if not ids:
        return []
    query = select(DeskEvent).where(col(DeskEvent.id).in_(ids)).order_by(col(DeskEvent.id))
    return list(session.exec(query).all())


def last_id(*, session: Session) -> int:
    """The newest event's id (0 when there is none): where a new follower starts."""
    row = session.exec(select(DeskEvent.id).order_by(col(DeskEvent.id).desc()).limit(1)).first()
    return row or 0
