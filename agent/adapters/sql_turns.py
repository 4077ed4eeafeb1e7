"""The SQL implementation of the turn's storage port (agent.engine.port): one transaction a
method, and the lease that lets one turn per conversation run at a time.

The lease (agent.adapters.leases) is a row per conversation (`turn_lease`), taken only while the
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
from dataclasses import fields
from typing import Any

from sqlalchemy import Engine, bindparam, select
from sqlmodel import Session

from agent.adapters.history_cache import HistoryCache
from agent.adapters.leases import Leases, LeaseTiming
from agent.domain import ActionStatus
from agent.engine.consent import SENDING
from agent.engine.history import UNREADABLE, ApiMessage, extend_api_messages, to_api_messages
from agent.engine.port import (
    Admission,
    CustomerFacts,
    Found,
    NamedAction,
    NewMessage,
    Opening,
    PendingAction,
    Recorded,
    RoundRecord,
    RunTools,
    Settled,
    TurnStart,
    new_lease,
)
from agent.store import desk_events, proposals
from agent.store.conversations import (
    append_messages,
    append_messages_state,
    create_conversation,
    create_ticket,
    load_messages,
    lock_conversation,
    mark_history_changed,
)
from agent.store.db import reading, transaction
from agent.store.desk_events import DeskEventKind
from agent.store.tables import (
    Conversation,
    ConversationState,
    Customer,
    Message,
    ProposedAction,
    utcnow,
)

__all__ = ["SqlTurnStore", "new_lease", "send_lost", "unrecorded_sends"]
# An action recorded as being sent whose turn ended before recording its outcome (see
# unrecorded_sends): the model was told the outcome is unknown (SENDING).
SENDING_LOST = (
    "Sent to the order system by a turn that ended before its answer was recorded: whether it "
    "was carried out is unknown. Check in the order system before doing it again."
)
# What the model is told when carrying a confirmed change out failed here, before or after
# the call: whether it was sent is not known, so it is never sent again.
SENDING_FAILED = (
    "Carrying this change out failed unexpectedly, so whether the order system received it is "
    "unknown. Do not try it again. Tell the customer that a member of staff will check what "
    "happened and get back to them."
)
log = logging.getLogger(__name__)
_messages = Message.__table__  # type: ignore[attr-defined]
_conversations = Conversation.__table__  # type: ignore[attr-defined]
_CUSTOMER = select(_conversations.c.customer_id).where(_conversations.c.id == bindparam("cid"))
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
        history_conversations: int = 256,
    ) -> None:
        self.engine = engine
        self.lease_seconds = lease_seconds
        # Conversations' histories between their turns (agent.adapters.history_cache).
        self.history = HistoryCache(history_conversations)
        self.leases = Leases(engine, LeaseTiming(lease_seconds, renew_seconds or lease_seconds / 3,
                                                 stall_seconds))  # fmt: skip

    # -- the lease -----------------------------------------------------------------------
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
        opening: Opening,
        admit: Admission | None = None,
    ) -> TurnStart:
        stored: list[Message] = []  # this transaction's rows
        with transaction(self.engine) as session:
            conversation: Conversation = (
                admit(session)
                if admit is not None
                else lock_conversation(session=session, conversation_id=conversation_id)
            )
            found = _found(session, conversation, opening)
            opening.check(found)
            state = conversation.state
            if state != ConversationState.HUMAN and self.leases.take(
                session, conversation_id, lease
            ):
                unrecorded_sends(session, conversation_id)
                stored += _acknowledge_unanswered(session, conversation_id, opening)
            settled = None
            if conversation.pending_action_id is not None:
                settled, results = _settle(session, conversation, found, opening)
                content = [*results, *content]
            (message,) = append_messages(
                session=session,
                conversation_id=conversation_id,
                messages=[Message(role="user", content=content)],
            )
            assert message.id is not None
            stored.append(message)
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
                start.messages = self._history(session, conversation, stored)
                start.customer = _customer(session, conversation.customer_id)
                start.cut, start.summary = conversation.context_cut, conversation.summary
        if start.messages is None:
            self.history.extend(conversation_id, stored)
        else:  # committed: the next turn starts from here
            self.history.put(conversation_id, conversation.last_sequence, start.messages)
        if settled is not None and settled[1].sending:
            self._carry_out(conversation_id, start, opening, settled[0], message.id)
        return start

    def _carry_out(
        self,
        conversation_id: str,
        start: TurnStart,
        opening: Opening,
        pending: PendingAction,
        message_id: int,
    ) -> None:
        """A confirmed change in a remote order system, recorded as sent (unknown) and
        committed: sent now, with no write lock held, and its outcome recorded. The action
        left PROPOSED in the committed transaction, under the conversation's lock, so no
        other request or retry can send it again."""
        try:
            with reading(self.engine) as session:
                outcome = opening.carry_out(session, pending)
        except Exception:  # its outcome is not known: it stays unknown, and staff look
            log.exception("conversation %s: carrying out action %s failed", conversation_id,
                          pending.id)  # fmt: skip
            by = start.settled[1].decided_by if start.settled else "customer"
            outcome = Settled(ActionStatus.UNKNOWN, SENDING_FAILED, True, by)
        block = _result_block(pending.tool_use_id, outcome)
        with transaction(self.engine) as session:
            conversation = lock_conversation(session=session, conversation_id=conversation_id)
            action = proposals.get_action(session=session, action_id=pending.id, lock=True)
            assert action is not None
            _record_outcome(session, conversation_id, action, outcome)
            row = session.get(Message, message_id)
            assert row is not None
            row.content = [block if b.get("tool_use_id") == pending.tool_use_id
                           and b.get("type") == "tool_result" else b
                           for b in row.content]  # fmt: skip
            session.add(row)
            # Histories kept by other workers are read again (a gap in the numbering).
            mark_history_changed(session=session, conversation_id=conversation_id)
            last = conversation.last_sequence
        start.settled = (pending, outcome)
        if start.messages is not None:
            start.messages[-1] = {**start.messages[-1], "content": [
                block if b.get("tool_use_id") == pending.tool_use_id
                and b.get("type") == "tool_result" else b
                for b in start.messages[-1]["content"]]}  # fmt: skip
            self.history.put(conversation_id, last, start.messages)
        else:
            self.history.drop(conversation_id)

    def _history(
        self, session: Session, conversation: Conversation, stored: list[Message]
    ) -> list[ApiMessage]:
        """The conversation's history as request messages: the kept one and the rows stored
        after it, or all of its rows when none is kept or the rows after it leave a gap.
        When the rows after it are the ones this transaction just stored (`stored`: another
        worker stored nothing since), they are not read back."""
        last = conversation.last_sequence
        kept = self.history.get(conversation.id)
        if kept is None and [row.sequence for row in stored] == list(range(1, last + 1)):
            kept = (0, [])  # a new conversation: its rows are the ones just stored
        if kept is not None and kept[0] <= last:
            since, messages = kept
            if [row.sequence for row in stored] == list(range(since + 1, last + 1)):
                return extend_api_messages(messages, stored)
            rows = load_messages(session=session, conversation_id=conversation.id, after=since)
            if [row.sequence for row in rows] == list(range(since + 1, last + 1)):
                return extend_api_messages(messages, rows)
        return to_api_messages(load_messages(session=session, conversation_id=conversation.id))

    def record_round(
        self, conversation_id: str, *, lease: str, assistant: NewMessage, run_tools: RunTools
    ) -> RoundRecord:
        prepare = getattr(run_tools, "prepare", None)
        if prepare is not None:  # the tools' reads, with no write lock held
            with reading(self.engine) as session:
                customer_id = session.connection().execute(_CUSTOMER, {"cid": conversation_id})
                prepare(session, customer_id.scalar())
        with transaction(self.engine) as session:
            conversation = lock_conversation(session=session, conversation_id=conversation_id)
            self._renew(session, conversation_id, lease)
            done = run_tools(session, conversation.customer_id)
            customer = _customer(session, done.customer_id)
            proposal = done.proposal
            if proposal is None:
                rows = append_messages(  # the tool_use message and its results land together
                    session=session,
                    conversation_id=conversation_id,
                    messages=[_row(assistant), Message(role="user", content=done.results)],
                )
                record = RoundRecord(results=done.results, customer=customer)
            else:
                # The turn waits for the customer: the tool_use message now, its results
                # when the action is settled (see open_turn).
                assert done.customer_id is not None, "only a verified customer's action is proposed"
                rows = append_messages(
                    session=session, conversation_id=conversation_id, messages=[_row(assistant)]
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
                record = RoundRecord(
                    results=done.results,
                    customer=customer,
                    pending=pending_view(action),
                    message_id=rows[0].id,
                )
        self.history.extend(conversation_id, rows)  # committed
        return record

    def record_answer(self, conversation_id: str, *, lease: str, message: NewMessage) -> Recorded:
        with transaction(self.engine) as session:
            # The counter's update locks the conversation's row first (as lock_conversation
            # would) and says its state: no ORM row is loaded for the answer.
            (stored,), state = append_messages_state(
                session=session, conversation_id=conversation_id, messages=[_row(message)]
            )
            self._release_held(session, conversation_id, lease)
            assert stored.id is not None
        self.history.extend(conversation_id, [stored])  # committed
        return Recorded(message_id=stored.id, state=state)

    def record_hand_off(
        self,
        conversation_id: str,
        *,
        lease: str,
        message: Callable[[int], NewMessage],
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
                session=session,
                conversation_id=conversation_id,
                messages=[_row(message(ticket.id))],
            )
            assert stored.id is not None
        self.history.extend(conversation_id, [stored])  # committed
        return Recorded(message_id=stored.id, state=ConversationState.HUMAN, ticket_id=ticket.id)

    def move_cut(self, conversation_id: str, *, lease: str, cut: int, summary: str | None) -> None:
        with transaction(self.engine) as session:
            conversation = lock_conversation(session=session, conversation_id=conversation_id)
            self._renew(session, conversation_id, lease)
            conversation.context_cut, conversation.summary = cut, summary
            session.add(conversation)

    def set_aside_images(
        self, conversation_id: str, *, lease: str, message_ids: list[int] | None
    ) -> None:
        self.history.drop(conversation_id)
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
            # Histories kept by other workers are read again (a gap in the numbering).
            mark_history_changed(session=session, conversation_id=conversation_id)

    def release(self, conversation_id: str, *, lease: str) -> None:
        with transaction(self.engine) as session:
            self.leases.abandon(session, conversation_id, lease)


_FIELDS = tuple(f.name for f in fields(NewMessage))


def _row(message: NewMessage) -> Message:
    """The row of a message to record (a shallow copy: its content is not copied again)."""
    return Message(**{name: getattr(message, name) for name in _FIELDS})


def _customer(session: Session, customer_id: str | None) -> CustomerFacts | None:
    row = session.get(Customer, customer_id) if customer_id else None
    if row is None:
        return None
    return CustomerFacts(row.id, row.first_name, row.last_name, row.email)


def _found(session: Session, conversation: Conversation, opening: Opening) -> Found:
    named = None
    if opening.decision is not None:
        action = proposals.get_action(session=session, action_id=opening.decision.action_id)
        if action is not None:
            named = NamedAction(action.id, action.conversation_id, action.status)
    return Found(conversation.id, conversation.state, conversation.customer_id,
                 conversation.pending_action_id, named)  # fmt: skip


def _acknowledge_unanswered(
    session: Session, conversation_id: str, opening: Opening
) -> list[Message]:
    """The turn before this one ended without its answer: if the customer's message (or its
    tool round) is still the last word, the engine's acknowledgement goes in before the new
    message (the roles alternate, and nothing is merged into the unanswered message)."""
    if session.connection().execute(_LAST_ROLE, {"cid": conversation_id}).scalar() == "user":
        log.warning("conversation %s: the previous turn ended without its answer; "
                    "acknowledging the message it left", conversation_id)  # fmt: skip
        return append_messages(session=session, conversation_id=conversation_id,
                               messages=[_row(opening.acknowledgement())])  # fmt: skip
    return []


def unrecorded_sends(session: Session, conversation_id: str) -> list[str]:
    """Changes of the conversation recorded as being sent whose outcome its turn never
    recorded (its process died mid-call): they stay unknown, and staff are told (a ticket),
    once. Called with the conversation locked and no turn of it running: by the turn that
    takes the lease over, or by the sweep (agent.features.lost_sends). The ids told."""
    found = (
        session.execute(
            select(ProposedAction).where(
                ProposedAction.conversation_id == conversation_id,  # type: ignore[arg-type]
                ProposedAction.status == ActionStatus.UNKNOWN,  # type: ignore[arg-type]
                ProposedAction.result == SENDING,  # type: ignore[arg-type]
            )
        )
        .scalars()
        .all()
    )
    for action in found:
        send_lost(session, conversation_id, action)
    return [action.id for action in found]


def send_lost(session: Session, conversation_id: str, action: ProposedAction) -> None:
    """An action recorded as being sent whose sender ended before recording its outcome: it
    stays unknown (SENDING_LOST), nothing is sent again, and staff get one ticket."""
    log.warning("conversation %s: action %s was sent by a turn (or a desk request) that "
                "ended before its outcome was recorded; it stays unknown", conversation_id,
                action.id)  # fmt: skip
    outcome = Settled(ActionStatus.UNKNOWN, SENDING_LOST, True, action.decided_by or "")
    action.result = SENDING_LOST
    session.add(action)
    assert outcome.for_staff is not None
    create_ticket(session=session, conversation_id=conversation_id,
                  customer_id=action.customer_id, reason=outcome.for_staff,
                  summary=_for_staff(action, outcome))  # fmt: skip


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


def _for_staff(action: ProposedAction, outcome: Settled) -> str:
    """What staff need to check an order change in the shop's system."""
    by = action.proposed_by if action.proposed_by.startswith("staff:") else None
    lines = [f"Action {action.id}: {action.tool} {action.arguments}",
             f"Run by {by}: {action.summary}" if by else
             f"The customer confirmed: {action.summary}",
             f"Outcome: {outcome.status.value}. {outcome.content}"]  # fmt: skip
    if outcome.discrepancy:
        lines.append(f"Differs from what was confirmed: {outcome.discrepancy}")
    if outcome.receipt:
        lines.append(f"The order system answered: {outcome.receipt[:1500]}")
    return "\n".join(lines)


def _settle(
    session: Session, conversation: Conversation, found: Found, opening: Opening
) -> tuple[tuple[PendingAction, Settled], list[dict[str, Any]]]:
    """Settle the conversation's pending action as the engine decides: (how it ended, the
    tool results that open the next user message: the rest of its round's, then its own)."""
    action = proposals.get_action(session=session, action_id=conversation.pending_action_id or "",
                                  lock=True)  # fmt: skip
    assert action is not None and action.tool_use_id is not None
    pending = pending_view(action)
    outcome = opening.settle(session, found, pending)
    if conversation.pending_action_id == action.id:
        conversation.pending_action_id = None
        session.add(conversation)
    _record_outcome(session, conversation.id, action, outcome)
    return (pending, outcome), [*action.held_results, _result_block(action.tool_use_id, outcome)]


def _record_outcome(
    session: Session, conversation_id: str, action: ProposedAction, outcome: Settled
) -> None:
    """How an action ended (or that it is being sent), and a ticket when staff must look."""
    proposals.settle(
        session=session,
        conversation=None,
        action=action,
        status=outcome.status,
        result=outcome.content,
        decided_by=outcome.decided_by,
        system_reply=outcome.receipt,
        discrepancy=outcome.discrepancy,
    )
    if outcome.for_staff:
        create_ticket(session=session, conversation_id=conversation_id,
                      customer_id=action.customer_id, reason=outcome.for_staff,
                      summary=_for_staff(action, outcome))  # fmt: skip


def _result_block(tool_use_id: str, outcome: Settled) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_use_id,
                             "content": outcome.content}  # fmt: skip
    if outcome.is_error:
        block["is_error"] = True
    return block
