"""The turn store's contract (agent.engine.port.TurnStore), one suite run against every
implementation: the SQL store on SQLite and PostgreSQL, and the in-memory one the engine's
tests use. The stores find facts and record; the engine decides (consent.TurnOpening), so
the words and outcomes below are the same whichever store keeps them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.adapters.builtin_orders import BuiltinOrders
from agent.adapters.sql_turns import SqlTurnStore
from agent.config import Settings
from agent.domain import ActionStatus, ConversationState, utcnow
from agent.engine import consent
from agent.engine.history import INTERRUPTED_REPLY
from agent.engine.port import (
    CustomerFacts,
    Decision,
    NewMessage,
    Proposal,
    Round,
    TurnStore,
    new_lease,
)
from agent.errors import ActionDecided, Conflict, ConversationClosed, NotFound, TurnInProgress
from agent.store.db import make_engine, transaction
from agent.store.importer import import_path
from agent.store.tables import Conversation
from tests.conftest import RETAIL_SLICE
from tests.memory_turns import MemoryTurnStore
from tools import Kind, ToolRegistry, tool
from tools.tool_context import ToolContext

IVAN = CustomerFacts("ivan_santos_6635", "Ivan", "Santos", "ivan.santos3158@example.com")


@tool(kind=Kind.CHANGE, summarize=lambda a, r: f"Note “{a['text']}”.")
def note_it(ctx: ToolContext, text: str) -> dict[str, Any]:
    """A change that writes nothing (what the contract needs of a tool: it runs once)."""
    ctx.require_customer()
    return {"noted": text}


TOOLS = ToolRegistry([note_it])


@dataclass
class Subject:
    store: TurnStore
    close: Any  # closes a conversation the way the store's channel would

    def conversation(self) -> str:
        return self.store.start_conversation(customer_id=IVAN.id, channel="api")


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def subject(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Subject]:
    if request.param == "memory":
        store = MemoryTurnStore(customers={IVAN.id: IVAN})

        def close_memory(conversation_id: str) -> None:
            store.conversations[conversation_id].state = ConversationState.CLOSED

        yield Subject(store, close_memory)
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'contract.db'}"
        yield from _sql(url)
        return
    server = request.getfixturevalue("postgres_server")
    with server.database(f"t_{uuid.uuid4().hex[:12]}") as url:
        yield from _sql(url)


def _sql(url: str) -> Iterator[Subject]:
    engine = make_engine(url)
    import_path(engine, RETAIL_SLICE)

    def close_sql(conversation_id: str) -> None:
        with transaction(engine) as session:
            row = session.get(Conversation, conversation_id)
            assert row is not None
            row.state = ConversationState.CLOSED
            session.add(row)

    store = SqlTurnStore(engine, lease_seconds=30)
    yield Subject(store, close_sql)
    # Turns these tests leave open (their leases held) are let go: the heartbeat would renew
    # them on a database that is gone.
    for lease in store.leases.heartbeat.held():
        store.leases.heartbeat.drop(lease)


def _context(session: Any, customer_id: str) -> ToolContext:
    return ToolContext(
        session,
        Settings(),
        conversation_id="",
        customer_id=customer_id,
        orders=BuiltinOrders(session),
    )


def _opening(text: str = "", decision: Decision | None = None, **kw: Any) -> consent.TurnOpening:
    return consent.TurnOpening(TOOLS, _context, text=text, decision=decision, **kw)


def _say(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": text}]


def _propose(subject: Subject, conversation: str, text: str = "hello") -> str:
    """A turn that proposes note_it; the pending action's id."""
    store, lease = subject.store, new_lease()
    store.open_turn(conversation, _say("note this please"), lease=lease, opening=_opening())
    call = {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:8]}", "name": "note_it",
            "input": {"text": text}}  # fmt: skip
    proposal = Proposal("note_it", {"text": text}, f"Note “{text}”.", call["id"],
                        utcnow() + timedelta(minutes=5))  # fmt: skip
    record = store.record_round(
        conversation, lease=lease, assistant=NewMessage("assistant", [call]),
        run_tools=lambda session, customer: Round([], customer, proposal),
    )  # fmt: skip
    assert record.pending is not None and record.pending.customer_id == IVAN.id
    return record.pending.id


def test_a_turn_stores_the_message_and_loads_the_history(subject: Subject) -> None:
    conversation = subject.conversation()
    lease = new_lease()
    begun = subject.store.open_turn(conversation, _say("hi"), lease=lease, opening=_opening())
    assert begun.state == ConversationState.BOT and begun.settled is None
    assert begun.messages == [{"role": "user", "content": _say("hi")}]
    assert begun.customer == IVAN  # plain facts, not a row
    recorded = subject.store.record_answer(conversation, lease=lease,
                                           message=NewMessage("assistant", _say("hello!")))  # fmt: skip
    assert recorded.state == ConversationState.BOT and recorded.message_id > begun.message_id
    again = subject.store.open_turn(conversation, _say("bye"), lease=new_lease(),
                                    opening=_opening())  # fmt: skip
    assert [m["role"] for m in again.messages or []] == ["user", "assistant", "user"]


def test_one_turn_at_a_time_and_an_unanswered_message_is_acknowledged(subject: Subject) -> None:
    conversation = subject.conversation()
    first = new_lease()
    subject.store.open_turn(conversation, _say("one"), lease=first, opening=_opening())
    with pytest.raises(TurnInProgress):
        subject.store.open_turn(conversation, _say("two"), lease=new_lease(), opening=_opening())
    subject.store.release(conversation, lease=first)  # it ended without its answer
    begun = subject.store.open_turn(conversation, _say("two"), lease=new_lease(),
                                    opening=_opening())  # fmt: skip
    assert begun.messages == [
        {"role": "user", "content": _say("one")},
        {"role": "assistant", "content": _say(INTERRUPTED_REPLY)},  # the engine's words
        {"role": "user", "content": _say("two")},
    ]


def test_a_round_is_recorded_with_its_results(subject: Subject) -> None:
    conversation = subject.conversation()
    lease = new_lease()
    subject.store.open_turn(conversation, _say("orders?"), lease=lease, opening=_opening())
    call = {"type": "tool_use", "id": "toolu_1", "name": "list_orders", "input": {}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "[]"}
    record = subject.store.record_round(
        conversation, lease=lease, assistant=NewMessage("assistant", [call]),
        run_tools=lambda session, customer: Round([result], customer),
    )  # fmt: skip
    assert record.results == [result] and record.pending is None and record.customer == IVAN
    subject.store.move_cut(conversation, lease=lease, cut=2, summary="asked for orders")
    subject.store.record_answer(conversation, lease=lease,
                                message=NewMessage("assistant", _say("none yet")))  # fmt: skip
    begun = subject.store.open_turn(conversation, _say("ok"), lease=new_lease(),
                                    opening=_opening())  # fmt: skip
    assert [m["role"] for m in begun.messages or []] == ["user", "assistant", "user",
                                                         "assistant", "user"]  # fmt: skip
    assert (begun.cut, begun.summary) == (2, "asked for orders")


@pytest.mark.parametrize(
    ("said", "status", "words"),
    [
        ("yes", ActionStatus.EXECUTED, '"noted":"milk"'),
        ("what about my other order?", ActionStatus.SUPERSEDED, consent.NOT_CONFIRMED),
    ],
)
def test_a_reply_settles_the_pending_action_as_the_engine_decides(
    subject: Subject, said: str, status: ActionStatus, words: str
) -> None:
    conversation = subject.conversation()
    _propose(subject, conversation, "milk")  # the lease is free: the turn waits
    begun = subject.store.open_turn(conversation, _say(said), lease=new_lease(),
                                    opening=_opening(said, speaker="backend:shop"))  # fmt: skip
    assert begun.settled is not None
    pending, settled = begun.settled
    assert (settled.status, settled.decided_by) == (status, "backend:shop")
    assert words in settled.content
    opened = (begun.messages or [])[-1]["content"]  # the result first, then the customer's words
    assert opened[0]["tool_use_id"] == pending.tool_use_id and opened[-1] == _say(said)[0]


def test_decisions_are_checked_by_the_engine(subject: Subject) -> None:
    conversation = subject.conversation()
    action = _propose(subject, conversation)
    with pytest.raises(NotFound):
        subject.store.open_turn(conversation, [], lease=new_lease(),
                                opening=_opening(decision=Decision("act_nope", True, "customer")))  # fmt: skip
    declined = subject.store.open_turn(
        conversation, [], lease=new_lease(),
        opening=_opening(decision=Decision(action, False, "customer")),
    )  # fmt: skip
    assert declined.settled is not None
    assert (declined.settled[1].status, declined.settled[1].content) == (
        ActionStatus.DECLINED, consent.DECLINED)  # fmt: skip
    with pytest.raises(ActionDecided):
        subject.store.open_turn(conversation, [], lease=new_lease(),
                                opening=_opening(decision=Decision(action, True, "customer")))  # fmt: skip


def test_with_a_person_the_turn_waits_and_a_pending_change_lapses(subject: Subject) -> None:
    conversation = subject.conversation()
    action = _propose(subject, conversation)
    lease = new_lease()
    subject.store.open_turn(conversation, _say("a person please"), lease=lease,
                            opening=_opening())  # fmt: skip
    recorded = subject.store.record_hand_off(
        conversation, lease=lease, reason="asked", summary="wants a person",
        message=lambda ticket: NewMessage("assistant", _say(f"Ticket {ticket}.")),
    )  # fmt: skip
    assert recorded.state == ConversationState.HUMAN and recorded.ticket_id is not None
    queued = subject.store.open_turn(conversation, _say("hello?"), lease=new_lease(),
                                     opening=_opening("hello?"))  # fmt: skip
    assert queued.state == ConversationState.HUMAN and queued.messages is None
    # The change proposed before was already settled (superseded) by the hand-off's opening.
    with pytest.raises((ActionDecided, Conflict)):
        subject.store.open_turn(conversation, [], lease=new_lease(),
                                opening=_opening(decision=Decision(action, True, "customer")))  # fmt: skip


def test_a_closed_conversation_opens_no_turn(subject: Subject) -> None:
    conversation = subject.conversation()
    subject.close(conversation)
    with pytest.raises(ConversationClosed):
        subject.store.open_turn(conversation, _say("hi"), lease=new_lease(), opening=_opening())
