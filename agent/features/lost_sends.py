"""Changes whose sender died before recording their outcome go to staff, without waiting for
the customer.

A confirmed change in the shop's own system is recorded as being sent (unknown) before it is
sent, and its outcome after (agent.adapters.sql_turns, agent.features.staff_actions). When the
process dies mid-call the action stays "being sent". The conversation's next turn notices as it
takes the turn over; this sweep notices when there is no next turn. It takes an action that has
been "being sent" for longer than a grace period (longer than the longest call the connector
allows, so a slow call that is still alive is never taken) and whose turn no longer runs (its
conversation's lease released, abandoned, lapsed, or left by a dead process), and applies the
same outcome as the turn that takes over would: it stays unknown (SENDING_LOST), nothing is
sent again, and staff get one ticket. A change staff ran from the desk holds no lease: the
grace period alone says its sender is gone.

Each action is settled in a transaction of its own, under its conversation's lock and its own
row's (FOR UPDATE on PostgreSQL, the single writer on SQLite), and looked at again there: any
number of workers and instances may sweep at once, and each action gets one ticket.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from sqlalchemy import Engine, select

from agent.adapters.connectors.spec import ConnectorSpec
from agent.adapters.leases import running
from agent.adapters.sql_turns import send_lost, unrecorded_sends
from agent.domain import ActionStatus, utcnow
from agent.engine.consent import SENDING
from agent.features import staff_actions
from agent.store import proposals
from agent.store.conversations import create_conversation, lock_conversation
from agent.store.db import reading, transaction
from agent.store.tables import ProposedAction

log = logging.getLogger(__name__)
EVERY = 300.0  # seconds between sweeps of a server process (and one as it starts)
_BEING_SENT = (SENDING, staff_actions.SENDING)
_c = ProposedAction.__table__.c  # type: ignore[attr-defined]


def grace_seconds(spec: ConnectorSpec | None, lease_seconds: float) -> float:
    """How long an action may stay "being sent" before its sender counts as gone: well past
    the longest a carried-out change can take (the reads that check its rules again, with
    their retries, and the change, each up to the connector's timeouts), and a lease's
    lapse; at least ten minutes."""
    fields = ConnectorSpec.model_fields
    connect, call, retries = (
        getattr(spec, name) if spec is not None else fields[name].default
        for name in ("connect_timeout", "call_timeout", "read_retries")
    )
    per_call = (connect + call) * (retries + 1)
    return max(600.0, 4 * per_call) + lease_seconds


def sweep(engine: Engine, *, grace: float) -> list[str]:
    """Tell staff of every change still "being sent" after `grace` seconds whose sender is
    gone (see the module's docstring): the ids of the actions told, each by one sweep only."""
    cutoff = utcnow() - timedelta(seconds=grace)
    with reading(engine) as session:
        found = session.execute(
            select(_c.id, _c.conversation_id, _c.result)
            .where(
                _c.status == ActionStatus.UNKNOWN,
                _c.result.in_(_BEING_SENT),
                _c.decided_at < cutoff,
            )
            .order_by(_c.decided_at)
        ).all()
    told: list[str] = []
    for action_id, conversation_id, result in found:
        try:
            if result == SENDING:
                told += _customer_change(engine, conversation_id)
            else:
                told += _staff_change(engine, action_id, conversation_id)
        except Exception:  # the next sweep tries again
            log.exception("could not tell staff of action %s, sent with its outcome never "
                          "recorded", action_id)  # fmt: skip
    if told:
        log.warning("told staff (a ticket each) of %d change(s) sent with their outcome never "
                    "recorded: %s", len(told), ", ".join(told))  # fmt: skip
    return sorted(set(told))


def _customer_change(engine: Engine, conversation_id: str | None) -> list[str]:
    """A customer's confirmed change: told unless a turn of its conversation still runs."""
    if conversation_id is None:  # a customer's change always has its conversation
        return []
    with transaction(engine) as session:
        lock_conversation(session=session, conversation_id=conversation_id)
        if running(session, conversation_id):  # alive: its turn records the outcome
            return []
        return unrecorded_sends(session, conversation_id)


def _staff_change(engine: Engine, action_id: str, conversation_id: str | None) -> list[str]:
    """A change staff ran from the desk. One run for no conversation gets one of its own, the
    customer's, to carry the ticket (channel "desk", no messages)."""
    with transaction(engine) as session:
        if conversation_id is not None:
            lock_conversation(session=session, conversation_id=conversation_id)
        action = proposals.get_action(session=session, action_id=action_id, lock=True)
        if (
            action is None
            or action.status != ActionStatus.UNKNOWN
            or action.result != staff_actions.SENDING
            or action.conversation_id != conversation_id  # given one by another sweep
        ):
            return []
        if action.conversation_id is None:
            conversation = create_conversation(
                session=session, customer_id=action.customer_id, channel="desk"
            )
            action.conversation_id = conversation.id
        send_lost(session, action.conversation_id, action)
        return [action.id]


class Sweeper:
    """The sweep of a server process: once as it starts, then every `every` seconds, in a
    thread of its own, until stopped."""

    def __init__(self, engine: Engine, *, grace: float, every: float = EVERY) -> None:
        self.engine, self.grace, self.every = engine, grace, every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lost-sends-sweep", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                sweep(self.engine, grace=self.grace)
            except Exception as exc:  # the database is away: the next sweep tries again
                log.warning("could not sweep changes sent with their outcome never "
                            "recorded: %s", exc)  # fmt: skip
            self._stop.wait(self.every)
