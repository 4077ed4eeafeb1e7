"""The turn lease and its heartbeat (agent/adapters/leases.py): a running turn keeps its
conversation however long it runs, a turn whose process died on another host lets it go
within the lease, a 409 says honestly how long the hold lasts, and the heartbeat costs one
statement per beat however many turns are in flight."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import event, update
from sqlalchemy.engine import Engine

from agent.adapters.sql_turns import SqlTurnStore, new_lease
from agent.config import Settings
from agent.engine.history import INTERRUPTED_REPLY, validate
from agent.engine.port import NewMessage, Round
from agent.errors import TurnInProgress
from agent.store.conversations import create_conversation
from agent.store.db import make_engine, transaction
from agent.store.tables import TurnLease
from tests.memory_turns import opening

HELLO = [{"type": "text", "text": "hello"}]


def _conversation(engine: Engine) -> str:
    with transaction(engine) as session:
        return create_conversation(session=session).id


def _texts(messages: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    return [(m["role"], [b.get("text") or b["type"] for b in m["content"]]) for m in messages]


def _open_until_free(store: SqlTurnStore, conversation: str, text: str) -> Any:
    """Open a turn and end it at once, as a client would: retrying after each 409's
    Retry-After (bounded)."""
    for _ in range(20):
        lease = new_lease()
        try:
            begun = store.open_turn(
                conversation, [{"type": "text", "text": text}], lease=lease, opening=opening()
            )
        except TurnInProgress as busy:
            time.sleep(busy.retry_after)
            continue
        store.release(conversation, lease=lease)
        return begun
    raise AssertionError("the conversation was never free")


def test_a_running_turn_keeps_its_hold_longer_than_the_lease(any_db_url: str) -> None:
    engine = make_engine(any_db_url)
    store = SqlTurnStore(engine, lease_seconds=2, renew_seconds=0.4)
    conversation = _conversation(engine)
    running = new_lease()
    store.open_turn(conversation, HELLO, lease=running, opening=opening())
    time.sleep(4)  # twice the lease, no write: a long model call
    with pytest.raises(TurnInProgress) as busy:
        store.open_turn(conversation, HELLO, lease=new_lease(), opening=opening())
    assert 1 <= busy.value.retry_after <= 2  # the most it can still take, were its owner gone
    store.release(conversation, lease=running)
    assert store.leases.heartbeat.held() == []


def test_retry_after_is_how_long_the_hold_lasts_unrenewed(any_db_url: str) -> None:
    engine = make_engine(any_db_url)
    conversation = _conversation(engine)
    with transaction(engine) as session:  # a turn on another host, 7.5 s from lapsing
        session.add(TurnLease(conversation_id=conversation, owner="other-host:1:x",
                              expires_at=time.time() + 7.5))  # fmt: skip
    with pytest.raises(TurnInProgress) as busy:
        SqlTurnStore(engine).open_turn(conversation, HELLO, lease=new_lease(), opening=opening())
    assert busy.value.retry_after in (7, 8)


def _turn_on_another_host(url: str, conversation: str, ready: Any) -> None:
    """A process on 'other-host' that opens a turn, stores a tool round and then waits for
    the model for ever (until it is killed)."""
    import agent.engine.port

    agent.engine.port._HOST = "other-host"
    store = SqlTurnStore(make_engine(url), lease_seconds=2, renew_seconds=0.4)
    lease = agent.engine.port.new_lease()
    store.open_turn(
        conversation,
        [{"type": "text", "text": "where are my orders?"}],
        lease=lease,
        opening=opening(),
    )
    call = {"type": "tool_use", "id": "toolu_1", "name": "list_orders", "input": {}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "[]"}
    store.record_round(conversation, lease=lease, run_tools=lambda *_: Round([result], None),
                       assistant=NewMessage(role="assistant", content=[call]))  # fmt: skip
    ready.set()
    time.sleep(600)


@pytest.mark.slow
def test_a_turn_killed_on_another_host_lets_its_conversation_go(any_db_url: str) -> None:
    engine = make_engine(any_db_url)
    store = SqlTurnStore(engine, lease_seconds=2, renew_seconds=0.4)
    conversation = _conversation(engine)
    spawn = multiprocessing.get_context("spawn")
    ready = spawn.Event()
    other = spawn.Process(target=_turn_on_another_host, args=(any_db_url, conversation, ready))
    other.start()
    try:
        assert ready.wait(120), "the other host's turn did not start"
        time.sleep(4)  # alive, it keeps the conversation past its 2 s lease
        with pytest.raises(TurnInProgress):
            store.open_turn(conversation, HELLO, lease=new_lease(), opening=opening())
        assert other.pid is not None
        os.kill(other.pid, signal.SIGKILL)
        other.join(30)
        with pytest.raises(TurnInProgress) as busy:  # a dead process elsewhere: time tells
            store.open_turn(conversation, HELLO, lease=new_lease(), opening=opening())
        assert 1 <= busy.value.retry_after <= 2
        time.sleep(busy.value.retry_after)
        taking_over = new_lease()
        begun = store.open_turn(conversation, [{"type": "text", "text": "hello?"}],
                                lease=taking_over, opening=opening())  # fmt: skip
        store.release(conversation, lease=taking_over)
    finally:
        other.kill()
    assert begun.messages is not None
    validate(begun.messages)  # alternating, every tool_use answered, nothing merged
    assert _texts(begun.messages) == [
        ("user", ["where are my orders?"]),
        ("assistant", ["tool_use"]),
        ("user", ["tool_result"]),
        ("assistant", [INTERRUPTED_REPLY]),
        ("user", ["hello?"]),
    ]


def test_a_turn_that_makes_no_progress_is_let_go(any_db_url: str) -> None:
    engine = make_engine(any_db_url)
    store = SqlTurnStore(engine, lease_seconds=1, renew_seconds=0.2, stall_seconds=1.5)
    conversation = _conversation(engine)
    store.open_turn(
        conversation, HELLO, lease=new_lease(), opening=opening()
    )  # and hangs, never writing again
    begun = _open_until_free(store, conversation, "anyone there?")
    assert begun.messages is not None and begun.messages[-1]["content"][0]["text"] == (
        "anyone there?"
    )


def test_the_heartbeat_renews_every_running_turn_in_one_statement(tmp_path: Any) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'lease.db'}")
    store = SqlTurnStore(engine, lease_seconds=3, renew_seconds=0.3)
    leases = [(_conversation(engine), new_lease()) for _ in range(10)]
    for conversation, lease in leases:
        store.open_turn(conversation, HELLO, lease=lease, opening=opening())
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if threading.current_thread().name == "turn-lease-heartbeat":
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    beats = store.leases.heartbeat.beats
    time.sleep(1.5)
    event.remove(engine, "before_cursor_execute", count)
    done = store.leases.heartbeat.beats - beats
    writes = [s for s in statements if s.lstrip().upper().startswith("UPDATE")]
    assert done >= 1 and len(writes) in (done, done + 1)  # one per beat, not one per turn
    for conversation, lease in leases:
        store.release(conversation, lease=lease)


@pytest.mark.postgres
def test_a_hold_renewed_while_it_is_taken_over_stays_with_its_turn(postgres_server: Any) -> None:
    """The heartbeat renews without the conversation's lock: a turn that read the hold as
    lapsed moves it only if nobody renewed it since (PostgreSQL: concurrent transactions)."""
    with postgres_server.database(f"t_cas_{os.getpid()}") as url:
        engine, elsewhere = make_engine(url), make_engine(url)
        conversation = _conversation(engine)
        with transaction(engine) as session:
            session.add(TurnLease(conversation_id=conversation, owner="other-host:1:x",
                                  expires_at=time.time() - 1))  # fmt: skip

        def heartbeat_lands(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
            if "SET owner" in statement:  # between reading the hold and moving it
                with elsewhere.begin() as connection:
                    connection.execute(update(TurnLease).values(expires_at=time.time() + 60))

        event.listen(engine, "before_cursor_execute", heartbeat_lands)
        with pytest.raises(TurnInProgress):
            SqlTurnStore(engine).open_turn(
                conversation, HELLO, lease=new_lease(), opening=opening()
            )
        with transaction(engine) as session:
            held = session.get(TurnLease, conversation)
            assert held is not None and held.owner == "other-host:1:x"
        engine.dispose()
        elsewhere.dispose()


def test_renewals_must_come_well_within_the_lease() -> None:
    assert Settings(turn_lease_seconds=15).turn_renew() == 5
    with pytest.raises(ValidationError, match="at most half"):
        Settings(turn_lease_seconds=10, turn_renew_seconds=6)
