"""An in-memory implementation of the turn's storage port (agent.engine.port), for tests of
turn logic that need no database: the same contract as agent.adapters.sql_turns.SqlTurnStore
(tests/test_turn_store_contract.py runs the same suite against both), kept in dictionaries.
It finds facts and records; every decision comes from the engine's Opening."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.adapters.builtin_orders import BuiltinOrders
from agent.config import Settings
from agent.domain import ActionStatus, ConversationState
from agent.engine.consent import TurnOpening
from agent.engine.history import UNREADABLE, to_api_messages
from agent.engine.port import (
    Admission,
    CustomerFacts,
    Decision,
    Found,
    NamedAction,
    NewMessage,
    Opening,
    PendingAction,
    Recorded,
    RoundRecord,
    RunTools,
    TurnStart,
)
from agent.errors import NotFound, TurnInProgress, TurnLost


class _NoSavepoint:
    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass


class NoSession:
    """What tools get for a session here: savepoints that do nothing."""

    def begin_nested(self) -> _NoSavepoint:
        return _NoSavepoint()


@dataclass
class Kept:
    """A recorded message, numbered as it was stored."""

    id: int
    message: NewMessage

    @property
    def role(self) -> str:
        return self.message.role

    @property
    def content(self) -> list[dict[str, Any]]:
        return self.message.content


@dataclass
class StoredConversation:
    customer_id: str | None = None
    state: ConversationState = ConversationState.BOT
    messages: list[Kept] = field(default_factory=list)
    cut: int = 0
    summary: str | None = None
    lease: tuple[str, float] | None = None
    tickets: list[dict[str, Any]] = field(default_factory=list)
    # The pending action and the results of its round; every action ever proposed here.
    pending: tuple[PendingAction, list[dict[str, Any]]] | None = None
    actions: dict[str, ActionStatus] = field(default_factory=dict)


class MemoryTurnStore:
    def __init__(
        self, customers: dict[str, CustomerFacts] | None = None, lease_seconds: float = 60
    ) -> None:
        self.conversations: dict[str, StoredConversation] = {}
        self.customers = customers or {}
        self.lease_seconds = lease_seconds
        self._ids = 0

    def start_conversation(self, *, customer_id: str | None = None, channel: str = "api") -> str:
        return self.add_conversation(f"c{len(self.conversations) + 1}", customer_id)

    def add_conversation(self, conversation_id: str, customer_id: str | None = None) -> str:
        self.conversations[conversation_id] = StoredConversation(customer_id=customer_id)
        return conversation_id

    def _get(self, conversation_id: str) -> StoredConversation:
        if conversation_id not in self.conversations:
            raise NotFound(f"Conversation {conversation_id} not found")
        return self.conversations[conversation_id]

    def _append(self, conversation: StoredConversation, *messages: NewMessage) -> int:
        """Store `messages`; the id of the last."""
        for message in messages:
            self._ids += 1
            conversation.messages.append(Kept(self._ids, message))
        return self._ids

    def _renew(self, conversation: StoredConversation, lease: str) -> None:
        if conversation.lease is None or conversation.lease[0] != lease:
            raise TurnLost("This turn lost its turn to another one and stopped.", retry_after=1)
        conversation.lease = (lease, time.time() + self.lease_seconds)

    def open_turn(
        self,
        conversation_id: str,
        content: list[dict[str, Any]],
        *,
        lease: str,
        opening: Opening,
        admit: Admission | None = None,
    ) -> TurnStart:
        conversation = self._get(conversation_id)
        if admit is not None:
            admit(None)
        pending_id = conversation.pending[0].id if conversation.pending else None
        named = None
        if opening.decision is not None and opening.decision.action_id in conversation.actions:
            action_id = opening.decision.action_id
            named = NamedAction(action_id, conversation_id, conversation.actions[action_id])
        found = Found(conversation_id, conversation.state, conversation.customer_id, pending_id,
                      named)  # fmt: skip
        opening.check(found)
        if conversation.state != ConversationState.HUMAN:
            held = conversation.lease
            if held is not None and held[0] != lease and held[1] > time.time():
                left = max(1, math.ceil(held[1] - time.time()))
                raise TurnInProgress("The assistant is still answering an earlier message.", left)
            conversation.lease = (lease, time.time() + self.lease_seconds)
            last = conversation.messages[-1] if conversation.messages else None
            if held is not None and held[0] != lease and last is not None and last.role == "user":
                self._append(conversation, opening.acknowledgement())  # left unanswered
        settled = None
        if conversation.pending is not None:
            (action, held_results), conversation.pending = conversation.pending, None
            outcome = opening.settle(NoSession(), found, action)
            if outcome.sending:  # a remote change: no write lock to leave here
                outcome = opening.carry_out(NoSession(), action)
            conversation.actions[action.id] = outcome.status
            block: dict[str, Any] = {"type": "tool_result", "tool_use_id": action.tool_use_id,
                                     "content": outcome.content}  # fmt: skip
            if outcome.is_error:
                block["is_error"] = True
            content = [*held_results, block, *content]
            settled = (action, outcome)
        message_id = self._append(conversation, NewMessage(role="user", content=content))
        start = TurnStart(message_id=message_id, state=conversation.state, settled=settled)
        if conversation.state != ConversationState.HUMAN:
            start.messages = to_api_messages(conversation.messages)
            start.customer = self.customers.get(conversation.customer_id or "")
            start.cut, start.summary = conversation.cut, conversation.summary
        return start

    def record_round(
        self, conversation_id: str, *, lease: str, assistant: NewMessage, run_tools: RunTools
    ) -> RoundRecord:
        conversation = self._get(conversation_id)
        self._renew(conversation, lease)
        done = run_tools(NoSession(), conversation.customer_id)
        conversation.customer_id = done.customer_id
        customer = self.customers.get(done.customer_id or "")
        if done.proposal is None:
            self._append(conversation, assistant, NewMessage(role="user", content=done.results))
            return RoundRecord(done.results, customer)
        assistant_id = self._append(conversation, assistant)
        proposal, self._ids = done.proposal, self._ids + 1
        pending = PendingAction(f"act_{self._ids}", proposal.tool, proposal.arguments,
                                proposal.summary, proposal.tool_use_id,
                                done.customer_id or "", proposal.expires_at)  # fmt: skip
        conversation.pending = (pending, done.results)
        conversation.actions[pending.id] = ActionStatus.PROPOSED
        conversation.lease = None
        return RoundRecord(done.results, customer, pending=pending, message_id=assistant_id)

    def record_answer(self, conversation_id: str, *, lease: str, message: NewMessage) -> Recorded:
        conversation = self._get(conversation_id)
        self._renew(conversation, lease)
        message_id = self._append(conversation, message)
        conversation.lease = None
        return Recorded(message_id, conversation.state)

    def record_hand_off(
        self,
        conversation_id: str,
        *,
        lease: str,
        message: Callable[[int], NewMessage],
        reason: str,
        summary: str,
    ) -> Recorded:
        conversation = self._get(conversation_id)
        self._renew(conversation, lease)
        ticket = len(conversation.tickets) + 1
        conversation.tickets.append({"id": ticket, "reason": reason, "summary": summary})
        conversation.state = ConversationState.HUMAN
        message_id = self._append(conversation, message(ticket))
        conversation.lease = None
        return Recorded(message_id, conversation.state, ticket_id=ticket)

    def move_cut(self, conversation_id: str, *, lease: str, cut: int, summary: str | None) -> None:
        conversation = self._get(conversation_id)
        self._renew(conversation, lease)
        conversation.cut, conversation.summary = cut, summary

    def set_aside_images(
        self, conversation_id: str, *, lease: str, message_ids: list[int] | None
    ) -> None:
        conversation = self._get(conversation_id)
        self._renew(conversation, lease)
        for row in conversation.messages:
            if row.role == "user" and (message_ids is None or row.id in message_ids):
                row.message.content = [{**b, UNREADABLE: True} if b.get("type") == "image" else b
                                       for b in row.content]  # fmt: skip

    def release(self, conversation_id: str, *, lease: str) -> None:
        conversation = self._get(conversation_id)
        if conversation.lease is not None and conversation.lease[0] == lease:
            conversation.lease = (lease, 0.0)  # lapsed: the next turn knows it went unanswered


def opening(text: str = "", decision: Decision | None = None) -> TurnOpening:
    """The engine's decisions for a turn opened straight on a store (a test of the store
    itself): the shipped tools, run on the given session."""
    from tools import default_registry
    from tools.tool_context import ToolContext

    def context(session: Any, customer_id: str) -> ToolContext:
        return ToolContext(
            session,
            Settings(),
            conversation_id="",
            customer_id=customer_id,
            orders=BuiltinOrders(session),
        )

    return TurnOpening(default_registry(), context, text=text, decision=decision)
