"""What a turn records, as one small port: each method is one transaction of the store.

The turn (agent.engine.loop) decides; it never opens a transaction itself. The port speaks
the engine's own plain types (below), never the store's rows: the SQL implementation
(agent/adapters/sql_turns.py) converts them, and imports the engine, never the other way
round; tests of turn logic may use an in-memory one (tests/memory_turns.py). Every decision
of a turn, the customer-facing words included, is made by the engine (agent.engine.consent's
TurnOpening, the turn in agent.engine.loop): a store finds facts and records.

Every method but `open_turn` is called while the turn holds its conversation's lease (one turn
per conversation at a time) and renews it; a turn whose lease another turn took over gets
TurnInProgress and stops.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from agent.domain import ActionStatus, ConversationState

ApiMessage = dict[str, Any]
_HOST = socket.gethostname()


class Admission(Protocol):
    """Who may post to a conversation, and within which limits: supplied by each channel
    (the HTTP API checks the caller's key, scope, token and rate limits; the CLI admits its
    operator). Runs first in the turn's first transaction, on the store's own session, and
    returns the conversation locked; raising refuses the turn and stores nothing. A channel
    that knows the caller's address may say it as `client` (identity checks count failures
    per client), and who is speaking as `speaker` ("customer", "backend:<key name>"): who
    settled a proposal with a reply that confirms it."""

    def __call__(self, session: Any) -> Any: ...


@dataclass(frozen=True)
class CustomerFacts:
    """The verified customer, as the prompt names them."""

    id: str
    first_name: str
    last_name: str
    email: str


@dataclass
class NewMessage:
    """A Messages-API message to record, with what the turn knows of it."""

    role: str  # "user" | "assistant"
    content: list[dict[str, Any]]
    stop_reason: str | None = None
    model: str | None = None
    usage: dict[str, Any] | None = None
    degraded: bool = False
    author: str | None = None  # "staff:<name>" for a person's reply
    citations: list[dict[str, Any]] | None = None


@dataclass(frozen=True)
class Proposal:
    """A store-changing call the model made, checked against the store's rules as they stand
    and held for the customer's confirmation (see agent.engine.consent)."""

    tool: str
    arguments: dict[str, Any]  # validated: exactly what runs on confirmation
    summary: str  # what would change, in the customer's words
    tool_use_id: str
    expires_at: datetime


@dataclass(frozen=True)
class PendingAction:
    """A stored proposal waiting for the customer."""

    id: str
    tool: str
    arguments: dict[str, Any]
    summary: str
    tool_use_id: str
    customer_id: str
    expires_at: datetime


@dataclass(frozen=True)
class Settled:
    """How a pending action ended, and the tool result the model receives for it."""

    status: ActionStatus
    content: str
    is_error: bool
    # Who settled it, as the audit trail shows it: "customer" (their own reply, button or
    # token), "backend:<key name>" (the shop's backend acting for them), "staff:<name>" …
    decided_by: str = "customer"
    # What the order system answered when it carried the change out (its refund or return id,
    # the record as it is now), and where that differs from what the customer confirmed.
    receipt: str | None = None
    discrepancy: str | None = None
    # Confirmed, and carried out in a remote order system after the transaction that records
    # this (`Opening.carry_out`, with no write lock held): recorded meanwhile as sent with its
    # outcome unknown, which is what stays if the outcome never comes back.
    sending: bool = False

    @property
    def for_staff(self) -> str | None:
        """Why staff must look at this action (a ticket): an outcome nobody knows, or an order
        system that did something other than what the customer confirmed."""
        if self.sending:  # not known yet: the outcome, once recorded, says
            return None
        if self.status == ActionStatus.UNKNOWN:
            return "An order change was sent to the order system, which never confirmed it"
        if self.discrepancy:
            return (
                f"The order system did something other than what was confirmed: {self.discrepancy}"
            )
        return None


@dataclass(frozen=True)
class Decision:
    """The customer's explicit answer to one proposal (a button, the API, the terminal)."""

    action_id: str
    confirm: bool
    decided_by: str  # "customer", "backend:<key name>", "operator", ...


@dataclass(frozen=True)
class NamedAction:
    """The proposed action a decision names, as the store found it."""

    id: str
    conversation_id: str | None
    status: ActionStatus


@dataclass(frozen=True)
class Found:
    """What the store found when it locked the conversation to open a turn: facts only."""

    conversation_id: str
    state: ConversationState
    customer_id: str | None
    pending_action_id: str | None
    named: NamedAction | None = None  # the action the turn's decision names, if it exists


class Opening(Protocol):
    """What a turn decides as it opens (agent.engine.consent.TurnOpening), called by the store
    inside the opening transaction: whether the turn may open at all, how the conversation's
    pending action ends, and the words that acknowledge a message an earlier turn left
    unanswered."""

    @property
    def decision(self) -> Decision | None:
        """The explicit answer this turn brings, if any (the store looks its action up)."""
        ...

    def check(self, found: Found) -> None:
        """Raise to refuse the turn (closed, no such action, settled already, a person has
        it); before anything is taken or stored."""
        ...

    def settle(self, session: Any, found: Found, pending: PendingAction) -> Settled:
        """How the pending action ends now (run in the store's transaction). A confirmed
        change in a remote order system comes back `sending`: the store records it as sent
        (unknown) with the customer's message, commits, and then has it carried out."""
        ...

    def carry_out(self, session: Any, pending: PendingAction) -> Settled:
        """Carry out a change `settle` answered `sending` for: called once, after the
        transaction that recorded it as sent, on a session that holds no write lock; what it
        returns replaces the `sending` outcome."""
        ...

    def acknowledgement(self) -> NewMessage:
        """The assistant's words for a customer message its turn left unanswered."""
        ...


@dataclass
class TurnStart:
    """What a turn starts from."""

    message_id: int  # the customer's message, stored
    state: ConversationState
    # None when a human has the conversation: no turn runs (and no lease is held).
    messages: list[ApiMessage] | None = None
    customer: CustomerFacts | None = None
    cut: int = 0  # where the model request starts (index into `messages`)
    summary: str | None = None
    # The proposal this turn's opening settled (confirmed, declined, lapsed), if any.
    settled: tuple[PendingAction, Settled] | None = None


@dataclass
class Round:
    """What a round of tools produced: their results (held with the proposal, if the round
    made one), the verified customer after it, and a proposal that ends the turn."""

    results: list[dict[str, Any]]
    customer_id: str | None
    proposal: Proposal | None = None


# Runs a round's tools inside the round's transaction: (session, verified customer id as the
# transaction reads it) -> what the round produced. It may also have a `prepare(session,
# verified customer id)`, which a store calls first, on a session that holds no write lock
# (no transaction that other conversations' writes wait for): the calls that need no write
# run there, and the call in the transaction then runs the rest, or all of them again if the
# verified customer it finds is not the one `prepare` was given.
RunTools = Callable[[Any, str | None], Round]


@dataclass
class RoundRecord:
    results: list[dict[str, Any]]
    customer: CustomerFacts | None  # the verified customer after the round
    pending: PendingAction | None = None  # stored: the turn ends, waiting for the customer
    message_id: int | None = None  # the assistant's tool_use message


@dataclass
class Recorded:
    message_id: int
    state: ConversationState
    ticket_id: int | None = None


def new_lease() -> str:
    """A turn's lease id: where it runs (host, process) and which turn it is, so a store can
    tell a lease whose process died on its own host."""
    return f"{_HOST}:{os.getpid()}:{uuid.uuid4().hex}"


def lease_holder_gone(lease: str) -> bool:
    """Whether the turn holding `lease` was a process on this host that no longer exists
    (its hold is void at once; a holder elsewhere can only time out)."""
    host, _, rest = lease.partition(":")
    pid = rest.partition(":")[0]
    if host != _HOST or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, under another user
        return False
    return False


class TurnStore(Protocol):
    def start_conversation(self, *, customer_id: str | None, channel: str) -> str:
        """A new conversation (bound to a customer the caller vouches for, or anonymous)."""
        ...

    def open_turn(
        self,
        conversation_id: str,
        content: list[dict[str, Any]],
        *,
        lease: str,
        opening: Opening,
        admit: Admission | None = None,
    ) -> TurnStart:
        """Lock the conversation, admit the caller, let `opening.check` refuse the turn (on
        the Found facts: with `opening.decision`, the action it names), take the turn's lease
        (TurnInProgress while another turn holds it), store the customer's message and load
        the history. With a decision, `content` may be empty.

        A pending action is settled first, by `opening.settle`: its tool result (with the
        held results of its round) opens the stored user message, before `content`. An
        outcome `sending` (a confirmed change in a remote order system) is recorded as sent,
        unknown, and committed with the message and the lease; then `opening.carry_out` makes
        the call with no write lock held, once, and its outcome is recorded in a second
        transaction (the action, a ticket for staff if need be, and the tool result in the
        stored message, changed in place): `settled` is that outcome. Were the process to
        die in between, the action stays unknown and the model is told so.

        When the turn before ended without its answer (its process died, or it was
        released) and left the customer's message or its tool round as the last word,
        `opening.acknowledgement()` is stored before `content`: the history alternates, and
        nothing is merged into the unanswered message."""
        ...

    def record_round(
        self, conversation_id: str, *, lease: str, assistant: NewMessage, run_tools: RunTools
    ) -> RoundRecord:
        """Run a round's tools and store the tool_use message with its results, together (its
        reads first, with no write held, through `run_tools.prepare` when it has one; then,
        in the transaction, the lease renewed and the verified customer read again, the rest:
        see RunTools). A round that proposes an action stores the tool_use message and the
        proposal (holding the other results), and releases the lease: the turn waits for the
        customer."""
        ...

    def record_answer(self, conversation_id: str, *, lease: str, message: NewMessage) -> Recorded:
        """Store the turn's answer and release the lease."""
        ...

    def record_hand_off(
        self,
        conversation_id: str,
        *,
        lease: str,
        message: Callable[[int], NewMessage],
        reason: str,
        summary: str,
    ) -> Recorded:
        """Open a ticket, give the conversation to a human, store the message telling the
        customer so (`message(ticket id)`), and release the lease."""
        ...

    def move_cut(self, conversation_id: str, *, lease: str, cut: int, summary: str | None) -> None:
        """Where the model request starts from now on (and the summary of what came before)."""
        ...

    def set_aside_images(
        self, conversation_id: str, *, lease: str, message_ids: list[int] | None
    ) -> None:
        """Mark the photos of these stored messages (None: of every message) as ones the model
        could not process: kept, and sent as a note from now on."""
        ...

    def release(self, conversation_id: str, *, lease: str) -> None:
        """End the turn without an answer (an error, a client that left): the conversation is
        free, and the next turn acknowledges the message this one leaves; idempotent."""
        ...
