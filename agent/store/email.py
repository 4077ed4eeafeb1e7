"""Email data functions (keyword-only, session first): inbound messages and their processing
state, the outbox of replies, each email conversation's thread, and one-time links.

Inbound messages and outgoing replies are claimed for a while (`claimed_until`) by the worker
that handles them, so two workers never take the same one, and one whose worker died is taken
again once its claim lapses."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, or_, select

from agent.store.tables import (
    Conversation,
    EmailInbound,
    EmailLink,
    EmailOutbox,
    EmailThread,
    Message,
    utcnow,
)

REFERENCES_MAX_CHARS = 7000  # of the References header our replies carry (oldest ids drop)
_TOKEN_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read back from a subject


def fit_message_id(message_id: str) -> str:
    """A Message-ID as stored: at most 500 characters (a longer one keeps a hash of the rest,
    so two long ids stay distinct)."""
    if len(message_id) <= 500:
        return message_id
    import hashlib

    digest = hashlib.sha256(message_id.encode("utf-8", "replace")).hexdigest()
    return f"{message_id[:400]}…{digest}"


# -- inbound ------------------------------------------------------------------------------


def store_inbound(
    *,
    session: Session,
    message_id: str,
    source: str,
    raw: bytes,
    size: int,
    sender: str,
    subject: str,
) -> tuple[EmailInbound, bool]:
    """Keep a message that arrived; (its row, whether it is new). The same Message-ID twice
    (fetched again, delivered twice) is the first row."""
    message_id = fit_message_id(message_id)
    found = session.exec(select(EmailInbound).where(EmailInbound.message_id == message_id)).first()
    if found is not None:
        return found, False
    row = EmailInbound(
        message_id=message_id,
        source=source,
        raw=raw,
        size=size,
        sender=sender[:320],
        subject=subject[:500],
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # another worker stored it just now
        found = session.exec(
            select(EmailInbound).where(EmailInbound.message_id == message_id)
        ).one()
        return found, False
    return row, True


Claimed = TypeVar("Claimed", EmailInbound, EmailOutbox)


def claim_inbound(*, session: Session, now: datetime, hold: timedelta) -> EmailInbound | None:
    """The oldest message due for processing, claimed for `hold` (None when none is due)."""
    return _claim(session, EmailInbound, ("received", "admitted"), now, hold)


def pending_inbound(*, session: Session) -> int:
    """Messages not yet answered or set aside."""
    return len(
        session.exec(
            select(EmailInbound.id).where(col(EmailInbound.state).in_(("received", "admitted")))
        ).all()
    )


def finish_inbound(
    *,
    session: Session,
    inbound_id: int,
    state: str,
    reason: str = "",
    conversation_id: str | None = None,
) -> None:
    row = session.get(EmailInbound, inbound_id)
    assert row is not None
    row.state, row.reason, row.claimed_until = state, reason[:300], None
    row.conversation_id = conversation_id or row.conversation_id
    row.processed_at = utcnow()
    session.add(row)


def retry_inbound(*, session: Session, inbound_id: int, error: str, base: float) -> datetime:
    """Leave a message that failed to be tried again after a back-off (`base` seconds,
    doubling with each attempt, at most an hour); returns when."""
    row = session.get(EmailInbound, inbound_id)
    assert row is not None
    wait = min(3600.0, base * 2 ** max(0, row.attempts - 1))
    row.next_attempt_at = utcnow() + timedelta(seconds=wait)
    row.claimed_until, row.last_error = None, error[:2000]
    session.add(row)
    return row.next_attempt_at


def admit_inbound(
    *, session: Session, inbound_id: int, conversation_id: str, after_sequence: int
) -> None:
    """Mark a message as taken into its conversation by a turn (in that turn's first
    transaction, so it is never posted twice)."""
    row = session.get(EmailInbound, inbound_id)
    assert row is not None
    row.state, row.conversation_id, row.admitted_after = "admitted", conversation_id, after_sequence
    session.add(row)


def answer_after(*, session: Session, conversation_id: str, sequence: int) -> Message | None:
    """The bot's answer stored after `sequence` (a text reply, no tool call), if any."""
    rows = session.exec(
        select(Message)
        .where(Message.conversation_id == conversation_id)
        .where(Message.sequence > sequence)
        .where(Message.role == "assistant")
        .order_by(col(Message.sequence))
    ).all()
    for message in reversed(rows):
        if message.author is None and any(b.get("type") == "text" for b in message.content):
            return message
    return None


# -- threads ------------------------------------------------------------------------------


def new_token() -> str:
    return "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(8))


def create_thread(
    *,
    session: Session,
    conversation_id: str,
    address: str,
    shop_address: str,
    subject: str,
    dkim_domain: str | None = None,
) -> EmailThread:
    thread = EmailThread(
        conversation_id=conversation_id,
        address=address.lower()[:320],
        shop_address=shop_address[:320],
        subject=subject[:500],
        token=new_token(),
        dkim_domain=dkim_domain,
    )
    session.add(thread)
    session.flush()
    return thread


def get_thread(*, session: Session, conversation_id: str) -> EmailThread | None:
    return session.get(EmailThread, conversation_id)


def note_inbound(
    *, session: Session, conversation_id: str, message_id: str, references: list[str]
) -> None:
    """The newest message of the thread: what our next reply answers and refers to."""
    thread = session.get(EmailThread, conversation_id)
    if thread is None:
        return
    chain = [*(r for r in references if r != message_id), message_id]
    text = " ".join(chain)
    while len(text) > REFERENCES_MAX_CHARS and len(chain) > 2:
        chain = [chain[0], *chain[2:]]  # keep the thread's first id, drop the oldest after it
        text = " ".join(chain)
    thread.last_message_id, thread.references = fit_message_id(message_id), text[:8000]
    session.add(thread)


def threads_by_message_ids(*, session: Session, message_ids: list[str]) -> list[EmailThread]:
    """The email conversations that sent or received any of these Message-IDs, newest first."""
    ids = [fit_message_id(m) for m in message_ids if m][:200]
    if not ids:
        return []
    found: set[str] = set()
    for table in (EmailOutbox, EmailInbound):
        rows = session.exec(
            select(table.conversation_id).where(col(table.message_id).in_(ids))  # type: ignore[attr-defined]
        ).all()
        found.update(r for r in rows if r)
    if not found:
        return []
    return list(
        session.exec(
            select(EmailThread)
            .where(col(EmailThread.conversation_id).in_(found))
            .order_by(col(EmailThread.created_at).desc())
        ).all()
    )


def thread_by_token(*, session: Session, token: str) -> EmailThread | None:
    return session.exec(select(EmailThread).where(EmailThread.token == token.upper())).first()


def conversation_state(*, session: Session, conversation_id: str) -> Conversation | None:
    return session.get(Conversation, conversation_id)


# -- outbox -------------------------------------------------------------------------------


def enqueue_exists(*, session: Session, key: str) -> bool:
    return session.exec(select(EmailOutbox.id).where(EmailOutbox.key == key)).first() is not None


def enqueue(
    *, session: Session, key: str, conversation_id: str, text: str, kind: str = "reply"
) -> EmailOutbox | None:
    """Queue `text` as a reply in the conversation's email thread, to the address the
    conversation belongs to (and no other); once per `key`. None when the conversation is not
    an email conversation."""
    found = session.exec(select(EmailOutbox).where(EmailOutbox.key == key)).first()
    if found is not None:
        return found
    thread = session.get(EmailThread, conversation_id)
    if thread is None:
        return None
    domain = thread.shop_address.rpartition("@")[2] or "supportbot.invalid"
    subject = thread.subject or "Your message"
    row = EmailOutbox(
        key=key[:200],
        kind=kind,
        conversation_id=conversation_id,
        to_address=thread.address,
        from_address=thread.shop_address,
        subject=f"Re: {subject} [#{thread.token}]"[:500],
        message_id=f"<sb.{conversation_id[:8]}.{secrets.token_hex(8)}@{domain}>",
        in_reply_to=thread.last_message_id,
        references=thread.references,
        text=text[:40_000],
    )
    session.add(row)
    session.flush()
    return row


def claim_outbox(*, session: Session, now: datetime, hold: timedelta) -> EmailOutbox | None:
    """The oldest reply due for sending, claimed for `hold` (None when none is due)."""
    return _claim(session, EmailOutbox, ("pending",), now, hold)


def _claim(
    session: Session,
    table: type[Claimed],
    states: tuple[str, ...],
    now: datetime,
    hold: timedelta,
) -> Claimed | None:
    """The oldest row of `table` in one of `states` that is due and not claimed by another
    worker (skipped, not waited for, where the database can), claimed for `hold`; its attempt
    counted."""
    query = (
        select(table)
        .where(col(table.state).in_(states))
        .where(col(table.next_attempt_at) <= now)
        .where(or_(col(table.claimed_until).is_(None), col(table.claimed_until) < now))
        .order_by(col(table.id))
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    row = session.exec(query).first()
    if row is None:
        return None
    row.claimed_until = now + hold
    row.attempts += 1
    session.add(row)
    session.flush()
    return row


def outbox_done(*, session: Session, outbox_id: int, state: str, error: str | None = None) -> None:
    row = session.get(EmailOutbox, outbox_id)
    assert row is not None
    row.state, row.claimed_until, row.last_error = state, None, error
    if state == "sent":
        row.sent_at = utcnow()
    session.add(row)


def outbox_retry(*, session: Session, outbox_id: int, error: str, base: float) -> datetime:
    row = session.get(EmailOutbox, outbox_id)
    assert row is not None
    wait = min(3600.0, base * 2 ** max(0, row.attempts - 1))
    row.next_attempt_at = utcnow() + timedelta(seconds=wait)
    row.claimed_until, row.last_error = None, error[:2000]
    session.add(row)
    return row.next_attempt_at


def outbox_for(*, session: Session, conversation_id: str) -> list[EmailOutbox]:
    return list(
        session.exec(
            select(EmailOutbox)
            .where(EmailOutbox.conversation_id == conversation_id)
            .order_by(col(EmailOutbox.id))
        ).all()
    )


# -- links --------------------------------------------------------------------------------


def create_link(
    *, session: Session, action_id: str, conversation_id: str, expires_at: datetime
) -> EmailLink:
    link = EmailLink(
        id=secrets.token_urlsafe(18),
        action_id=action_id,
        conversation_id=conversation_id,
        expires_at=expires_at,
    )
    session.add(link)
    session.flush()
    return link


def get_link(*, session: Session, link_id: str, lock: bool = False) -> EmailLink | None:
    query = select(EmailLink).where(EmailLink.id == link_id)
    return session.exec(query.with_for_update() if lock else query).first()


def use_link(*, session: Session, link: EmailLink) -> None:
    link.used_at = utcnow()
    session.add(link)
