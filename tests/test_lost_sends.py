"""The sweep of changes left "being sent" by a process that died (agent.features.lost_sends),
on both backends: several sweeps at once tell staff of each change once, and a change whose
turn still holds its conversation is left to it. (The processes killed mid-call, on SQLite:
tests/test_connector_writer.py.)"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from sqlalchemy import text as sql
from sqlmodel import Session
from typer.testing import CliRunner

from agent.adapters.sql_turns import SENDING_LOST
from agent.cli import app
from agent.domain import ActionStatus, utcnow
from agent.engine.consent import SENDING
from agent.features import staff_actions
from agent.features.lost_sends import sweep
from agent.runtime import build_runtime
from agent.store.conversations import create_conversation
from agent.store.db import transaction
from agent.store.importer import import_path
from agent.store.proposals import new_action_id
from agent.store.tables import ProposedAction, TurnLease
from tests.conftest import IVAN, RETAIL_SLICE, SettingsFactory, customer_id

SWEEPS = 4


def _left_being_sent(session: Session, customer: str, conversation: str | None, result: str,
                     by: str) -> str:  # fmt: skip
    """What a process killed mid-call leaves: the action recorded as being sent an hour ago."""
    sent = utcnow() - timedelta(hours=1)
    action = ProposedAction(id=new_action_id(), conversation_id=conversation, customer_id=customer,
                            tool="cancel_pending_order", arguments={"order_id": "#W1"},
                            summary="Cancel order #W1", status=ActionStatus.UNKNOWN,
                            proposed_by=by, decided_by=by, result=result, created_at=sent,
                            expires_at=sent, decided_at=sent)  # fmt: skip
    session.add(action)
    return action.id


def test_sweeps_at_once_tell_staff_of_each_change_once(
    make_settings: SettingsFactory, any_db_url: str
) -> None:
    runtime = build_runtime(make_settings(database_url=any_db_url))
    assert not import_path(runtime.engine, RETAIL_SLICE).problems
    ivan = customer_id(runtime, IVAN["email"])
    with transaction(runtime.engine) as session:
        ids = {}
        for lease in ("lapsed", "abandoned", "released", "running"):
            conversation = create_conversation(session=session, customer_id=ivan, channel="api")
            ids[lease] = _left_being_sent(session, ivan, conversation.id, SENDING, "customer")
            until = {"lapsed": time.time() - 60, "abandoned": 0.0,
                     "running": time.time() + 600}.get(lease)  # fmt: skip
            if until is not None:  # a turn of another host: only its expiry says it is gone
                session.add(TurnLease(conversation_id=conversation.id,
                                      owner="elsewhere:1:turn", expires_at=until))  # fmt: skip
        ids["staff"] = _left_being_sent(session, ivan, None, staff_actions.SENDING, "staff:anna")
    start = threading.Barrier(SWEEPS)
    told: list[list[str]] = []
    failures: list[BaseException] = []

    def run() -> None:
        try:
            start.wait(30)
            told.append(sweep(runtime.engine, grace=60))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run) for _ in range(SWEEPS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    swept = sorted(x for each in told for x in each)
    assert swept == sorted(v for k, v in ids.items() if k != "running")
    with Session(runtime.engine) as session:
        tickets = session.execute(sql("SELECT summary FROM ticket")).scalars().all()
        results = dict(session.execute(sql("SELECT id, result FROM proposed_action")).all())
        desk = session.execute(sql("SELECT count(*) FROM conversation WHERE channel = 'desk'"))
        assert desk.scalar_one() == 1  # the staff change's, for its ticket
    assert sorted(t.split(":")[0] for t in tickets) == [f"Action {v}" for v in swept]
    assert results.pop(ids["running"]) == SENDING  # its turn still runs: left to it
    assert set(results.values()) == {SENDING_LOST}
    assert sweep(runtime.engine, grace=60) == []


def test_the_sweep_command_tells_staff_and_says_what_it_found(
    make_settings: SettingsFactory, db_url: str
) -> None:
    runtime = build_runtime(make_settings())
    assert not import_path(runtime.engine, RETAIL_SLICE).problems
    ivan = customer_id(runtime, IVAN["email"])
    with transaction(runtime.engine) as session:
        conversation = create_conversation(session=session, customer_id=ivan, channel="api")
        action = _left_being_sent(session, ivan, conversation.id, SENDING, "customer")
    env = {"SUPPORTBOT_DATABASE_URL": db_url}
    found = CliRunner().invoke(app, ["orders", "sweep"], env=env)
    assert found.exit_code == 0, found.output
    assert f"action {action}:" in found.output and "1 change(s)" in found.output
    again = CliRunner().invoke(app, ["orders", "sweep"], env=env)
    assert again.exit_code == 0 and "0 change(s)" in again.output
    with Session(runtime.engine) as session:
        tickets = session.execute(sql("SELECT conversation_id FROM ticket")).scalars().all()
    assert tickets == [conversation.id]
