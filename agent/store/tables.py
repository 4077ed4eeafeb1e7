"""SQLModel tables. The API and tools return their own public models, never these."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

# The states and the clock are ground-level words (agent/domain.py), named here too for the
# modules that speak in rows.
from agent.domain import (  # noqa: F401
    ActionStatus,
    ConversationState,
    TicketStatus,
    UtcTime,
    aware,
    utcnow,
)
from agent.store.scopes import KeyScope


class Customer(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=64)
    first_name: str = Field(max_length=100)
    last_name: str = Field(max_length=100)
    email: str = Field(index=True, unique=True, max_length=320)  # stored lower-case
    zip_code: str = Field(default="", max_length=20)
    address: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # When an import last wrote (or found unchanged) this record: a change made here after it
    # is one an import must not undo silently (agent/store/importer.py).
    imported_at: datetime | None = None


class Order(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=32)  # "#W2611340"
    customer_id: str = Field(foreign_key="customer.id", index=True)
    status: str = Field(max_length=32)
    address: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    total_cents: int = 0
    placed_seq: int = Field(default=0, description="Import order; stands in for a placed date")
    # What the order actions set (tools/order_actions.py), as the τ²-bench retail domain does.
    cancel_reason: str | None = Field(default=None, max_length=32)
    return_items: list[str] | None = Field(default=None, sa_column=Column(JSON))
    return_payment_method_id: str | None = Field(default=None, max_length=64)
    exchange_items: list[str] | None = Field(default=None, sa_column=Column(JSON))
    exchange_new_items: list[str] | None = Field(default=None, sa_column=Column(JSON))
    exchange_payment_method_id: str | None = Field(default=None, max_length=64)
    exchange_price_difference_cents: int | None = None
    imported_at: datetime | None = None  # as Customer.imported_at


class OrderItem(SQLModel, table=True):
    __tablename__ = "order_item"
    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(foreign_key="order.id", index=True)
    position: int
    item_id: str = Field(max_length=64)
    product_id: str = Field(default="", max_length=64)
    name: str = Field(max_length=200)
    price_cents: int
    options: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Shipment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(foreign_key="order.id", index=True)
    position: int
    tracking_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    item_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class Product(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(index=True, max_length=200)


class ProductVariant(SQLModel, table=True):
    __tablename__ = "product_variant"
    item_id: str = Field(primary_key=True, max_length=64)
    product_id: str = Field(foreign_key="product.id", index=True)
    options: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    available: bool = True
    price_cents: int


class PaymentMethod(SQLModel, table=True):
    """A customer's way to pay: a credit card (brand and last four digits only), PayPal, or a
    gift card with its balance."""

    __tablename__ = "payment_method"
    id: str = Field(primary_key=True, max_length=64)  # "credit_card_7815826", "gift_card_..."
    customer_id: str = Field(foreign_key="customer.id", index=True)
    source: str = Field(max_length=32)  # credit_card | paypal | gift_card
    brand: str | None = Field(default=None, max_length=32)
    last_four: str | None = Field(default=None, max_length=4)
    balance_cents: int | None = None  # gift cards only
    # Gift cards: the balance before every entry of the payment histories stored here, set at
    # import; balance = opening + refunds - payments to it, whatever happens since.
    opening_balance_cents: int | None = None


class OrderPayment(SQLModel, table=True):
    """One entry of an order's payment history: a payment or a refund, in integer cents."""

    __tablename__ = "order_payment"
    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(foreign_key="order.id", index=True)
    position: int
    transaction_type: str = Field(max_length=16)  # payment | refund
    amount_cents: int
    payment_method_id: str = Field(max_length=64)


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_key"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    scope: KeyScope = Field(max_length=16)
    prefix: str = Field(max_length=16)  # shown in listings; the secret itself is never stored
    secret_hash: str = Field(index=True, unique=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    revoked: bool = False


class Conversation(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=36)
    customer_id: str | None = Field(default=None, foreign_key="customer.id", index=True)
    state: ConversationState = Field(default=ConversationState.BOT, max_length=16)
    failed_verifications: int = 0
    last_sequence: int = 0  # sequence of the newest message; callers lock the row to append
    # Where the model request starts (an index into the history) and, with the summarize
    # strategy, the summary of what came before it.
    context_cut: int = 0
    summary: str | None = Field(default=None, max_length=20_000)
    channel: str = Field(default="api", max_length=32)
    # Hash of the token a widget holds to prove the conversation is its own.
    access_token_hash: str | None = Field(default=None, max_length=64)
    # The proposed action waiting for the customer's confirmation (at most one at a time).
    pending_action_id: str | None = Field(default=None, max_length=40)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Message(SQLModel, table=True):
    """One Messages-API message, stored exactly as sent to or received from Claude."""

    __table_args__ = (UniqueConstraint("conversation_id", "sequence"),)
    id: int | None = Field(default=None, primary_key=True)
    # Both set by conversations.append_messages, which numbers messages as it stores them.
    conversation_id: str = Field(default="", foreign_key="conversation.id", index=True)
    sequence: int = 0
    role: str = Field(max_length=16)  # "user" | "assistant"
    content: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    stop_reason: str | None = Field(default=None, max_length=64)
    model: str | None = Field(default=None, max_length=100)
    usage: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    degraded: bool = False
    author: str | None = Field(default=None, max_length=100)  # "staff:<name>" for human replies
    # Sources an assistant reply cites as [n]: {number, title, section, source, url, page}.
    citations: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow)


class TurnLease(SQLModel, table=True):
    """The turn a conversation is running, if any: one turn per conversation at a time, across
    workers and instances (agent/adapters/leases.py). Renewed while its turn runs; a lease left
    by a dead process lapses (`expires_at`, seconds since the epoch) or, on the same host, is
    taken over as soon as its process is gone. A turn that ended without its answer leaves
    its row with `expires_at` 0 (the answer deletes it)."""

    __tablename__ = "turn_lease"
    conversation_id: str = Field(primary_key=True, foreign_key="conversation.id", max_length=36)
    owner: str = Field(max_length=200)  # "host:pid:uuid" of the turn holding it
    expires_at: float


class ProposedAction(SQLModel, table=True):
    """A store-changing tool call: proposed by the model and executed only when the customer
    confirms (or run by staff from the desk). Bound to the conversation's verified customer."""

    __tablename__ = "proposed_action"
    id: str = Field(primary_key=True, max_length=40)
    conversation_id: str | None = Field(default=None, foreign_key="conversation.id", index=True)
    customer_id: str = Field(foreign_key="customer.id", index=True)
    tool: str = Field(max_length=64)
    arguments: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    summary: str = Field(max_length=2000)
    # The model's tool_use block this answers, and the results of the other calls of its
    # round, sent back together once the action is settled.
    tool_use_id: str | None = Field(default=None, max_length=64)
    held_results: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    status: ActionStatus = Field(default=ActionStatus.PROPOSED, max_length=16, index=True)
    proposed_by: str = Field(default="assistant", max_length=120)  # or "staff:<name>"
    decided_by: str | None = Field(default=None, max_length=120)  # customer, backend:<key>, ...
    result: str | None = Field(default=None, max_length=20_000)  # the tool's result, as sent
    # What the order system answered when it carried the change out, and where that differed
    # from what the customer confirmed (agent/engine/port.py's Settled).
    system_reply: str | None = Field(default=None, max_length=20_000)
    discrepancy: str | None = Field(default=None, max_length=2000)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime = Field(default_factory=utcnow)
    decided_at: datetime | None = None


class IdentityCheck(SQLModel, table=True):
    """A failed or refused identity check (successful ones are not kept): what locks an
    account or a client out of verification, across conversations and workers, and what
    staff see of attempts to guess a customer's facts."""

    __tablename__ = "identity_check"
    id: int | None = Field(default=None, primary_key=True)
    # The account named: "customer:<id>", or "email:<sha256>" for an email on no account.
    target: str = Field(max_length=80, index=True)
    client: str | None = Field(default=None, max_length=80, index=True)  # the caller's address
    conversation_id: str | None = Field(default=None, max_length=36)
    outcome: str = Field(max_length=16)  # failed | locked
    detail: str = Field(default="", max_length=300)
    created_at: datetime = Field(default_factory=utcnow, index=True)


class Ticket(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(foreign_key="conversation.id", index=True)
    customer_id: str | None = Field(default=None, foreign_key="customer.id")
    reason: str = Field(max_length=500)
    summary: str = Field(max_length=4000)
    status: TicketStatus = Field(default=TicketStatus.OPEN, max_length=16)
    claimed_by: str | None = Field(default=None, max_length=100)  # the person's display name
    # The staff account working it (None for an admin key, or when nobody is assigned).
    assignee_id: int | None = Field(default=None, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    resolved_at: datetime | None = None


class StaffAccount(SQLModel, table=True):
    """A member of staff who signs in on the desk (created with `supportbot staff add`)."""

    __tablename__ = "staff_account"
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(index=True, unique=True, max_length=64)  # stored lower-case
    display_name: str = Field(max_length=100)  # what customers and colleagues see
    password_hash: str = Field(max_length=200)  # scrypt, salted (agent/store/staff.py)
    disabled: bool = False
    created_at: datetime = Field(default_factory=utcnow)


class StaffSession(SQLModel, table=True):
    """A desk sign-in: a random token shown once; only its SHA-256 is stored."""

    __tablename__ = "staff_session"
    token_hash: str = Field(primary_key=True, max_length=64)
    staff_id: int = Field(foreign_key="staff_account.id", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime


class TicketNote(SQLModel, table=True):
    """An internal note on a ticket: for staff only, never in the conversation (so never seen
    by the customer or the model)."""

    __tablename__ = "ticket_note"
    id: int | None = Field(default=None, primary_key=True)
    ticket_id: int = Field(foreign_key="ticket.id", index=True)
    author: str = Field(max_length=100)
    text: str = Field(max_length=4000)
    created_at: datetime = Field(default_factory=utcnow)


class SavedReply(SQLModel, table=True):
    """A canned answer staff insert into a reply and edit before sending."""

    __tablename__ = "saved_reply"
    id: int | None = Field(default=None, primary_key=True)
    title: str = Field(unique=True, max_length=100)
    text: str = Field(max_length=4000)
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=utcnow)


class DeskEvent(SQLModel, table=True):
    """What happened on the desk, in order: the feed behind the desk's live updates and the
    customer's "Anna joined the conversation" notices (agent/store/desk_events.py)."""

    __tablename__ = "desk_event"
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    ticket_id: int | None = Field(default=None)
    conversation_id: str | None = Field(default=None, max_length=36, index=True)
    public: bool = False  # shown to the customer too
    actor: str = Field(default="", max_length=100)
    text: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow)


class ConversationEnd(SQLModel, table=True):
    """The customer said the conversation is over ("I'm done" in the web chat, or the API):
    their confirmation that it needs nothing more (see agent/features/outcomes.py). The
    conversation is closed with it; the first end is kept."""

    __tablename__ = "conversation_end"
    conversation_id: str = Field(primary_key=True, foreign_key="conversation.id", max_length=36)
    ended_by: str = Field(max_length=120)  # "customer" or "backend:<key name>"
    ended_at: datetime = Field(default_factory=utcnow)


class ConversationRating(SQLModel, table=True):
    """The customer's rating of a conversation: thumbs up or down and an optional comment. One
    per conversation: a later rating replaces it."""

    __tablename__ = "conversation_rating"
    conversation_id: str = Field(primary_key=True, foreign_key="conversation.id", max_length=36)
    score: str = Field(max_length=8)  # up | down
    comment: str | None = Field(default=None, max_length=2000)
    rated_by: str = Field(max_length=120)  # "customer" or "backend:<key name>"
    rated_at: datetime = Field(default_factory=utcnow)


class RateCounter(SQLModel, table=True):
    """Requests per key and fixed window, shared by every worker through the database."""

    __tablename__ = "rate_counter"
    key: str = Field(primary_key=True, max_length=200)
    window: int = Field(primary_key=True)  # window start, in seconds since the epoch
    count: int = 0


class EmailInbound(SQLModel, table=True):
    """A message that reached the shop's address (agent/email): kept whole as it arrived,
    with where its processing stands. One row per Message-ID, so a message fetched or
    delivered twice is handled once; a failure leaves it here to be tried again."""

    __tablename__ = "email_inbound"
    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(max_length=500, unique=True)
    source: str = Field(default="imap", max_length=16)  # imap | lmtp | smtp
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    size: int = 0  # bytes as it arrived (raw holds only the headers beyond the size limit)
    sender: str = Field(default="", max_length=320)  # the From address, lower-case: a claim
    subject: str = Field(default="", max_length=500)
    # received (waiting or to be tried again) | admitted (its turn stored it) | answered |
    # ignored (noise, a loop, over the sender's limit: recorded, never answered)
    state: str = Field(default="received", max_length=16, index=True)
    reason: str = Field(default="", max_length=300)
    conversation_id: str | None = Field(default=None, max_length=36, index=True)
    # The conversation's last message sequence when its turn was admitted: what came after it
    # is this message's turn (a retry after a crash finds its answer there).
    admitted_after: int | None = None
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    claimed_until: datetime | None = None
    last_error: str | None = Field(default=None, max_length=2000)
    received_at: datetime = Field(default_factory=utcnow)
    processed_at: datetime | None = None


class EmailOutbox(SQLModel, table=True):
    """A reply to send: the outbox the sender works through (agent/email/outbox.py), so an SMTP
    server that is down loses nothing. `key` makes each reply enqueued once (the answer to one
    inbound message, one staff reply, one notice)."""

    __tablename__ = "email_outbox"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True)
    kind: str = Field(default="reply", max_length=16)  # reply | staff | notice
    conversation_id: str = Field(max_length=36, index=True)
    to_address: str = Field(max_length=320)
    from_address: str = Field(max_length=320)
    subject: str = Field(max_length=500)
    message_id: str = Field(max_length=200, unique=True)
    in_reply_to: str | None = Field(default=None, max_length=500)
    references: str = Field(default="", max_length=8000)
    text: str = Field(max_length=40_000)
    state: str = Field(default="pending", max_length=16, index=True)  # pending | sent | refused
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    claimed_until: datetime | None = None
    last_error: str | None = Field(default=None, max_length=2000)
    created_at: datetime = Field(default_factory=utcnow)
    sent_at: datetime | None = None


class EmailThread(SQLModel, table=True):
    """An email conversation: the address it belongs to (replies go there and nowhere else),
    its subject and subject token, and the thread its replies continue."""

    __tablename__ = "email_thread"
    conversation_id: str = Field(primary_key=True, foreign_key="conversation.id", max_length=36)
    address: str = Field(max_length=320, index=True)  # lower-case
    shop_address: str = Field(max_length=320)
    subject: str = Field(default="", max_length=500)  # the first message's, without Re:
    token: str = Field(max_length=16, unique=True)  # "[#TOKEN]" in our replies' subjects
    last_message_id: str | None = Field(default=None, max_length=500)  # the newest inbound
    references: str = Field(default="", max_length=8000)  # what our next reply refers to
    dkim_domain: str | None = Field(default=None, max_length=255)  # trusted DKIM that bound it
    created_at: datetime = Field(default_factory=utcnow)


class EmailLink(SQLModel, table=True):
    """A one-time confirmation link sent with a proposed change: bound to the action, expiring
    with it, used at most once."""

    __tablename__ = "email_link"
    id: str = Field(primary_key=True, max_length=40)  # the token's nonce
    action_id: str = Field(max_length=40, index=True)
    conversation_id: str = Field(max_length=36)
    expires_at: datetime
    used_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
