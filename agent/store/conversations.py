"""Conversation, message and ticket data functions (keyword-only, session first)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import bindparam, insert, true, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlmodel import Session, col, select

from agent.errors import NotFound
from agent.store import desk_events
from agent.store.db import keep
from agent.store.desk_events import DeskEventKind
from agent.store.tables import (
    Conversation,
    ConversationState,
    Customer,
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


# Hot-path statements, built once (building a statement costs more CPU than running it).
# The conversation's row, locked, and its customer's row (not locked) in the same round
# trip: the turn that locks it then finds the customer in the session (Session.get).
_LOCK = (
    select(Conversation, Customer)
    .outerjoin(Customer, col(Customer.id) == col(Conversation.customer_id))
    .where(Conversation.id == bindparam("cid"))
    .with_for_update(of=Conversation)  # type: ignore[arg-type]
)
_conversations = Conversation.__table__  # type: ignore[attr-defined]
_messages = Message.__table__  # type: ignore[attr-defined]
_BUMP = (
    update(_conversations)
    .where(_conversations.c.id == bindparam("cid"))
    .values(
        last_sequence=_conversations.c.last_sequence + bindparam("n"), updated_at=bindparam("now")
    )
    .returning(_conversations.c.last_sequence)
)
# The same, also saying the conversation's state: a write that needs nothing else of the row
# (a turn's answer) moves the counter, locks the row and learns the state in one statement.
_BUMP_STATE = _BUMP.returning(_conversations.c.state)
_INSERT = insert(_messages).returning(_messages.c.id, sort_by_parameter_order=True)
_MESSAGE_FIELDS = [c.name for c in _messages.columns if c.name != "id"]
_OWN_FIELDS = [name for name in _MESSAGE_FIELDS if name not in ("conversation_id", "sequence")]


def _append_one(with_state: bool) -> Any:
    """One message appended in one statement (PostgreSQL: a data-modifying WITH): the
    counter's update (locking the row, as `_BUMP`), the row inserted numbered after it:
    (the new last sequence, [the conversation's state,] the message's id), in one round trip
    instead of two."""
    c = _conversations.c
    moved = _BUMP.returning(c.id, c.state).cte("moved")
    # Named apart from the conversation's columns: an UPDATE sets a column whose name it
    # finds among the parameters (the message's created_at would be the conversation's).
    values = [bindparam(f"m_{name}", type_=_messages.c[name].type) for name in _OWN_FIELDS]
    added = (
        insert(_messages)
        .from_select(
            ["conversation_id", "sequence", *_OWN_FIELDS],
            select(moved.c.id, moved.c.last_sequence, *values),
        )
        .returning(_messages.c.id)
        .cte("added")
    )
    said = [moved.c.last_sequence, *([moved.c.state] if with_state else []), added.c.id]
    return select(*said).select_from(moved.join(added, true()))


_BUMP_ONE = _append_one(with_state=False)
_BUMP_STATE_ONE = _append_one(with_state=True)


def lock_conversation(*, session: Session, conversation_id: str) -> Conversation:
    """The conversation row, locked for this transaction where the backend supports it.

    Two turns of one conversation then append their messages one after the other.
    """
    row = session.execute(_LOCK, {"cid": conversation_id}).first()
    if row is None:
        raise NotFound(f"Conversation {conversation_id} not found")
    conversation: Conversation = row[0]
    if row[1] is not None:
        keep(session, row[1])
    return conversation


def load_messages(*, session: Session, conversation_id: str, after: int = 0) -> list[Message]:
    """The conversation's messages in order (those numbered after `after` only)."""
    query = select(Message).where(Message.conversation_id == conversation_id)
    if after:
        query = query.where(col(Message.sequence) > after)
    return list(session.exec(query.order_by(col(Message.sequence))).all())


def mark_history_changed(*, session: Session, conversation_id: str) -> None:
    """Say that stored messages changed in place (a photo set aside): the conversation's
    counter moves on without a message, so a history kept from before (another worker's
    agent.adapters.history_cache) sees a gap and reads the whole history again."""
    append = session.connection().execute(_BUMP, {"cid": conversation_id, "n": 1, "now": utcnow()})
    last = append.scalar_one_or_none()
    if last is None:
        raise NotFound(f"Conversation {conversation_id} not found")
    loaded = session.identity_map.get(identity_key(Conversation, conversation_id))
    if loaded is not None:
        set_committed_value(loaded, "last_sequence", last)


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
    """Add `messages` after the last one, in order; sets their ids and sequences.

    Two statements, whatever the count: the conversation's counter moves on by the number of
    messages (also locking its row), and the rows go in as one insert.
    """
    return _append(session, conversation_id, messages, _BUMP)[0]


def append_messages_state(
    *, session: Session, conversation_id: str, messages: list[Message]
) -> tuple[list[Message], ConversationState]:
    """`append_messages`, also returning the conversation's state, with no other statement:
    for a write that needs nothing else of the conversation's row (its counter's update
    locks the row first, as `lock_conversation` would)."""
    messages, state = _append(session, conversation_id, messages, _BUMP_STATE)
    return messages, ConversationState(state)


def _append(
    session: Session, conversation_id: str, messages: list[Message], bump: Any
) -> tuple[list[Message], Any]:
    now = utcnow()
    if len(messages) == 1 and session.get_bind().dialect.name == "postgresql":
        return _append_in_one(session, conversation_id, messages[0], bump, now)
    row = (
        session.connection()
        .execute(bump, {"cid": conversation_id, "n": len(messages), "now": now})
        .one_or_none()
    )
    row = _moved(session, conversation_id, row, now)
    last = row[0]
    for sequence, message in enumerate(messages, start=last - len(messages) + 1):
        message.conversation_id, message.sequence = conversation_id, sequence
    rows = [{name: getattr(m, name) for name in _MESSAGE_FIELDS} for m in messages]
    ids = session.connection().execute(_INSERT, rows).scalars().all()
    for message, message_id in zip(messages, ids, strict=True):
        message.id = message_id
    return messages, row[-1]


def _append_in_one(
    session: Session, conversation_id: str, message: Message, bump: Any, now: Any
) -> tuple[list[Message], Any]:
    statement = _BUMP_STATE_ONE if bump is _BUMP_STATE else _BUMP_ONE
    params = {f"m_{name}": getattr(message, name) for name in _OWN_FIELDS}
    params.update(cid=conversation_id, n=1, now=now)
    row = session.connection().execute(statement, params).one_or_none()
    row = _moved(session, conversation_id, row, now)
    last = row[0]
    message.conversation_id, message.sequence, message.id = conversation_id, last, row[-1]
    return [message], row[-2]


def _moved(session: Session, conversation_id: str, row: Any, now: Any) -> Any:
    """`row`, the conversation's counter moved (its last sequence first; None when there is
    no such conversation: NotFound), with the session's copy of the conversation kept in step."""
    if row is None:
        raise NotFound(f"Conversation {conversation_id} not found")
    loaded = session.identity_map.get(identity_key(Conversation, conversation_id))
    if loaded is not None:
        set_committed_value(loaded, "last_sequence", row[0])
        set_committed_value(loaded, "updated_at", now)
    return row


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
    desk_events.record(
        session=session,
        kind=DeskEventKind.TICKET_OPENED,
        conversation_id=conversation_id,
        ticket_id=ticket.id,
        text=ticket.reason,
    )
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
