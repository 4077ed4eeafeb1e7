"""A conversation's end: the customer says they are done, and rates it.

Ending ("I'm done" in the web chat, or `POST /v1/conversations/{id}/end`) closes the
conversation (later messages are refused with 409 `conversation_closed`) and is the customer's
confirmation that the bot resolved it, unless it was handed off (agent/features/outcomes.py).
Ending it while a ticket is still open tells the desk ("the customer ended the conversation"):
the ticket stays for staff to finish any follow-up and resolve, but replies no longer go out.
A rating (thumbs up or down, an optional comment) may be given at any time after the first
message: the web chat asks for one when the customer ends the conversation and when a person
resolves a hand-off. One per conversation: a later rating replaces it.
"""

from __future__ import annotations

from typing import Literal

from sqlmodel import Session, col, select

from agent.errors import Conflict
from agent.store import desk_events
from agent.store.desk_events import DeskEventKind
from agent.store.tables import (
    Conversation,
    ConversationEnd,
    ConversationRating,
    ConversationState,
    Ticket,
    TicketStatus,
    utcnow,
)

Score = Literal["up", "down"]
MAX_COMMENT_CHARS = 2000
CUSTOMER_LEFT_TEXT = "The customer ended the conversation."


def end_conversation(*, session: Session, conversation: Conversation, by: str) -> ConversationEnd:
    """Close `conversation` (locked by the caller) as the customer's end of it; ending it
    again returns the first end."""
    assert conversation.id is not None
    ended = session.get(ConversationEnd, conversation.id)
    if ended is not None:
        return ended
    ended = ConversationEnd(conversation_id=conversation.id, ended_by=by[:120])
    conversation.state = ConversationState.CLOSED
    conversation.updated_at = ended.ended_at
    session.add_all([ended, conversation])
    waiting = session.exec(
        select(Ticket.id).where(
            Ticket.conversation_id == conversation.id,
            col(Ticket.status) != TicketStatus.RESOLVED,
        )
    ).all()
    for ticket_id in waiting:
        desk_events.record(session=session, kind=DeskEventKind.CUSTOMER_LEFT, actor="customer",
                           text=CUSTOMER_LEFT_TEXT, conversation_id=conversation.id,
                           ticket_id=ticket_id)  # fmt: skip
    session.flush()
    return ended


def rate(
    *, session: Session, conversation: Conversation, score: Score, comment: str | None, by: str
) -> tuple[ConversationRating, bool]:
    """Record the rating of `conversation` (locked by the caller): (the rating, whether it
    replaced an earlier one). Conflict when there is nothing to rate yet (no message)."""
    if conversation.last_sequence == 0:
        raise Conflict("There is nothing to rate yet: the conversation has no messages.")
    comment = (comment or "").strip()[:MAX_COMMENT_CHARS] or None
    rating = session.get(ConversationRating, conversation.id)
    replaced = rating is not None
    if rating is None:
        rating = ConversationRating(conversation_id=conversation.id, score=score, rated_by=by)
    rating.score, rating.comment, rating.rated_by = score, comment, by[:120]
    rating.rated_at = utcnow()
    session.add(rating)
    session.flush()
    return rating, replaced
