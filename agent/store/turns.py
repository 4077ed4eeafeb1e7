"""The SQL implementation of the turn's storage port (agent.engine.port): one transaction a
method, and the lease that lets one turn per conversation run at a time.

The lease (agent.store.leases) is a row per conversation (`turn_lease`), taken only while the
conversation row is locked (FOR UPDATE on PostgreSQL; SQLite's single writer), so two workers
or replicas never both hold it. It is short, renewed by every write of the turn and by the
process's heartbeat while the turn runs, and released with its answer; a lease whose process
died lapses within `lease_seconds`, or at once when that process was on this host.

A turn that takes over the lease of a turn that ended without its answer (it died, failed, or
its client left) first stores the assistant's acknowledgement of the message left unanswered
(agent.engine.history.interrupted_reply), so the new message is not merged into it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, bindparam, select
from sqlmodel import Session

from agent.engine.history import UNREADABLE, interrupted_reply, to_api_messages
from agent.engine.port import (
    Admission,
    Decision,
    PendingAction,
    Recorded,
    RoundRecord,
    RunTools,
    Settle,
    Settled,
    TurnStart,
    new_lease,
)
from agent.errors import ActionDecided, Conflict, ConversationClosed, NotFound
from agent.store import desk_events, proposals
from agent.store.conversations import (
    append_messages,
    create_conversation,
    create_ticket,
    load_messages,
    lock_conversation,
)
from agent.store.db import transaction
from agent.store.desk_events import DeskEventKind
from agent.store.leases import Leases, LeaseTiming
from agent.store.tables import (
    ActionStatus,
    Conversation,
    ConversationState,
    Customer,
    Message,
    ProposedAction,
    utcnow,
)

__all__ = ["SqlTurnStore", "new_lease"]
log = logging.getLogger(__name__)
_messages = Message.__table__  # type: ignore[attr-defined]
_LAST_ROLE = (
    select(_messages.c.role)
    .where(_messages.c.conversation_id == bindparam("cid"))
    .order_by(_messages.c.sequence.desc())
    .limit(1)
)


class SqlTurnStore:
    def __init__(
        self,
        engine: Engine,
        *,
        lease_seconds: float = 15.0,
        renew_seconds: float | None = None,
        stall_seconds: float = 600.0,
    ) -> None:
        self.engine = engine
        self.lease_seconds = lease_seconds
        self.leases = Leases(engine, LeaseTiming(lease_seconds, renew_seconds or lease_seconds / 3,
                                                 stall_seconds))  # fmt: skip

    # -- the lease -----------------------------------------------------------------------
    def _take(self, session: Session, conversation_id: str, lease: str) -> None:
        if self.leases.take(session, conversation_id, lease):
            _acknowledge_unanswered(session, conversation_id)

    def _renew(self, session: Session, conversation_id: str, lease: str) -> None:
        self.leases.renew(session, conversation_id, lease)

    def _release_held(self, session: Session, conversation_id: str, lease: str) -> None:
        """Release the lease this turn still holds (the last write of a turn)."""
        self.leases.release_held(session, conversation_id, lease)

    # -- the port ---------------------------------------------------------------------------
    def start_conversation(self, *, customer_id: str | None = None, channel: str = "api") -> str:
        with transaction(self.engine) as session:
            return create_conversation(session=session, customer_id=customer_id, channel=channel).id

    def open_turn(
        self,
        conversation_id: str,
        content: list[dict[str, Any]],
        *,
        lease: str,
        admit: Admission | None = None,
        settle: Settle | None = None,
        decision: Decision | None = None,
    ) -> TurnStart:
        with transaction(self.engine) as session:
            conversation = (
                admit(session)
                if admit is not None
                else lock_conversation(session=session, conversation_id=conversation_id)
            )
            if conversation.state == ConversationState.CLOSED:
                raise ConversationClosed(f"Conversation {conversation_id} is closed")
            state = conversation.state
            if decision is not None:
                _check_decision(session, conversation, decision)
            if state != ConversationState.HUMAN:
                self._take(session, conversation_id, lease)
            settled = None
            if conversation.pending_action_id is not None:
                settled, results = _settle(session, conversation, settle, decision)
                content = [*results, *content]
            (message,) = append_messages(
                session=session,
                conversation_id=conversation_id,
                messages=[Message(role="user", content=content)],
            )
            assert message.id is not None
            if state == ConversationState.HUMAN:  # a person has it: tell the desk
                said = " ".join(b["text"] for b in content if b.get("type") == "text")
                photos = sum(b.get("type") == "image" for b in content)
                desk_events.record(
                    session=session,
                    kind=DeskEventKind.CUSTOMER_MESSAGE,
                    conversation_id=conversation_id,
                    actor="customer",
                    text=said or (f"({photos} photo{'s' * (photos > 1)})" if photos else ""),
                )
            start = TurnStart(message_id=message.id, state=state, settled=settled)
            if state != ConversationState.HUMAN:  # same transaction: one round trip fewer
                start.messages = to_api_messages(
                    load_messages(session=session, conversation_id=conversation_id)
                )
                if conversation.customer_id:
                    start.customer = session.get(Customer, conversation.customer_id)
                start.cut, start.summary = conversation.context_cut, conversation.summary
            return start

    def record_round(
        self, conversation_id: str, *, lease: str, assistant: Message, run_tools: RunTools
    ) -> RoundRecord:
        with transaction(self.engine) as session:
            conversation = lock_conversation(session=session, conversation_id=conversation_id)
            self._renew(session, conversation_id, lease)
            done = run_tools(session, conversation.customer_id)
            customer = session.get(Customer, done.customer_id) if done.customer_id else None
            proposal = done.proposal
            if proposal is None:
                append_messages(  # the tool_use message and its results land together
                    session=session,
                    conversation_id=conversation_id,
                    messages=[assistant, Message(role="user", content=done.results)],
                )
                return RoundRecord(results=done.results, customer=customer)
            # The turn waits for the customer: the tool_use message now, its results when
            # the action is settled (see open_turn).
            assert done.customer_id is not None, "only a verified customer's action is proposed"
            (stored,) = append_messages(
                session=session, conversation_id=conversation_id, messages=[assistant]
            )
            action = proposals.propose(
                session=session,
                conversation=conversation,
                customer_id=done.customer_id,
                tool=proposal.tool,
                arguments=proposal.arguments,
                summary=proposal.summary,
                tool_use_id=proposal.tool_use_id,
                held_results=done.results,
                expires_at=proposal.expires_at,
            )
            self._release_held(session, conversation_id, lease)
            return RoundRecord(
                results=done.results,
                customer=customer,
                pending=pending_view(action),
                message_id=stored.id,
            )

    def record_answer(self, conversation_id: str, *, lease: str, message: Message) -> Recorded:
        with transaction(self.engine) as session:
            # Held in a variable: the session keeps only weak references to clean objects,
            # and a dropped one would be read again.
            conversation = lock_conversation(session=session, conversation_id=conversation_id)
            self._release_held(session, conversation_id, lease)
            (stored,) = append_messages(
                session=session, conversation_id=conversation_id, messages=[message]
            )
            assert stored.id is not None
            return Recorded(message_id=stored.id, state=conversation.state)

    def record_hand_off(
        self,
        conversation_id: str,
        *,
        lease: str,
        message: Callable[[int], Message],
        reason: str,
        summary: str,
    ) -> Recorded:
        with transaction(self.engine) as session:
            conversation = lock_conversation(session=session, conversation_id=conversation_id)
            self._release_held(session, conversation_id, lease)
            ticket = create_ticket(
                session=session,
                conversation_id=conversation_id,
                customer_id=conversation.customer_id,
                reason=reason,
                summary=summary,
            )
            conversation.state = ConversationState.HUMAN
            conversation.updated_at = utcnow()
            session.add(conversation)
            session.flush()
            assert ticket.id is not None
            (stored,) = append_messages(
                session=session, conversation_id=conversation_id, messages=[message(ticket.id)]
            )
            assert stored.id is not None
            return Recorded(
                message_id=stored.id, state=ConversationState.HUMAN, ticket_id=ticket.id
            )

    def move_cut(self, conversation_id: str, *, lease: str, cut: int, summary: str | None) -> None:
        with transaction(self.engine) as session:
            conversation = lock_conversation(session=session, conversation_id=conversation_id)
            self._renew(session, conversation_id, lease)
            conversation.context_cut, conversation.summary = cut, summary
            session.add(conversation)

    def set_aside_images(
        self, conversation_id: str, *, lease: str, message_ids: list[int] | None
    ) -> None:
        with transaction(self.engine) as session:
            lock_conversation(session=session, conversation_id=conversation_id)
            self._renew(session, conversation_id, lease)
            for row in load_messages(session=session, conversation_id=conversation_id):
                if row.role != "user" or (message_ids is not None and row.id not in message_ids):
                    continue
                if any(b.get("type") == "image" and not b.get(UNREADABLE) for b in row.content):
                    row.content = [{**b, UNREADABLE: True} if b.get("type") == "image" else b
                                   for b in row.content]  # fmt: skip
                    session.add(row)

    def release(self, conversation_id: str, *, lease: str) -> None:
        with transaction(self.engine) as session:
            self.leases.abandon(session, conversation_id, lease)


def _acknowledge_unanswered(session: Session, conversation_id: str) -> None:
    """The turn before this one ended without its answer: if the customer's message (or its
    tool round) is still the last word, the assistant says it was interrupted before the new
    message goes in (the roles alternate, and nothing is merged into the unanswered message)."""
    if session.connection().execute(_LAST_ROLE, {"cid": conversation_id}).scalar() == "user":
        log.warning("conversation %s: the previous turn ended without its answer; "
                    "acknowledging the message it left", conversation_id)  # fmt: skip
        append_messages(session=session, conversation_id=conversation_id,
                        messages=[interrupted_reply()])  # fmt: skip


def pending_view(action: ProposedAction) -> PendingAction:
    assert action.tool_use_id is not None
    return PendingAction(
        id=action.id,
        tool=action.tool,
        arguments=dict(action.arguments),
        summary=action.summary,
        tool_use_id=action.tool_use_id,
        customer_id=action.customer_id,
        expires_at=proposals.aware(action.expires_at),
    )


def _check_decision(session: Session, conversation: Conversation, decision: Decision) -> None:
    """The decided action must be this conversation's, and still pending."""
    action = proposals.get_action(session=session, action_id=decision.action_id)
    if action is None or action.conversation_id != conversation.id:
        raise NotFound(f"Action {decision.action_id} not found")
    if conversation.pending_action_id != action.id:
        raise ActionDecided(
            f"Action {action.id} was settled already ({action.status.value}).", action.id
        )
    if conversation.state == ConversationState.HUMAN:
        raise Conflict("A member of our team has this conversation now; tell them instead.")


def _settle(
    session: Session,
    conversation: Conversation,
    settle: Settle | None,
    decision: Decision | None,
) -> tuple[tuple[PendingAction, Settled], list[dict[str, Any]]]:
    """Settle the conversation's pending action: (how it ended, the tool results that open the
    next user message: the rest of its round's, then its own)."""
    action = proposals.get_action(session=session, action_id=conversation.pending_action_id or "",
                                  lock=True)  # fmt: skip
    assert action is not None and action.tool_use_id is not None
    pending = pending_view(action)
    if conversation.customer_id != action.customer_id:  # cannot happen: identity never changes
        outcome = Settled(ActionStatus.SUPERSEDED, "Not carried out: the customer changed.", True)
    elif settle is None or conversation.state == ConversationState.HUMAN:
        outcome = Settled(
            ActionStatus.SUPERSEDED,
            "Not carried out: the conversation went to a member of staff before the customer "
            "confirmed. Nothing was changed.",
            True,
        )
    else:
        outcome = settle(session, pending)
    proposals.settle(
        session=session,
        conversation=conversation,
        action=action,
        status=outcome.status,
        result=outcome.content,
        decided_by=decision.decided_by if decision is not None else outcome.decided_by,
    )
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": action.tool_use_id,
                             "content": outcome.content}  # fmt: skip
    if outcome.is_error:
        block["is_error"] = True
    return (pending, outcome), [*action.held_results, block]
