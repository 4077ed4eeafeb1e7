"""The turn lease: one turn per conversation at a time, across workers, replicas and hosts.

A lease is a row per conversation (`turn_lease`): the turn holding it (`owner`,
"host:pid:uuid") and when it lapses (`expires_at`, seconds since the epoch by the database's
clock on PostgreSQL, so that replicas on several hosts need not agree on the time; by the one
host's clock on SQLite). It is taken only while the conversation row is locked, and moved from
a lapsed holder only if that holder has not renewed it meanwhile (compare and set), so two
turns never both hold it; every write of a turn checks that it still holds it.

A lease is short (`LeaseTiming.lease_seconds`, 15 s by default) and renewed while its turn
runs: by every write of the turn, and by a heartbeat (`Heartbeat`) that renews all the leases
this process holds in one statement every `renew_seconds`, through long model calls, streams
and tool rounds alike. When a process dies, on any host, its turns' leases lapse within
`lease_seconds` (on its own host at once: a dead process's lease is void). A turn that makes no
progress (no write) for `stall_seconds` is no longer renewed, so a hung turn frees its
conversation too.

A turn that ends without its answer (an error, a client that left) marks its lease lapsed
instead of deleting it, as a dead turn leaves it: the turn that takes it over knows the message
before its own went unanswered (agent.adapters.sql_turns acknowledges it).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Float, bindparam, cast, delete, event, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from agent.engine.port import lease_holder_gone
from agent.errors import TurnInProgress, TurnLost
from agent.store.db import transaction
from agent.store.tables import TurnLease

log = logging.getLogger(__name__)
_leases = TurnLease.__table__  # type: ignore[attr-defined]
BUSY = (
    "The assistant is still answering an earlier message in this conversation; "
    "send this one when it has finished."
)
LOST = "This turn lost its turn to another one and stopped."
ABANDONED = 0.0  # the expiry of a lease whose turn ended without its answer


@dataclass(frozen=True)
class LeaseTiming:
    """How long a hold lasts unrenewed, how often the heartbeat renews it, and how long a
    turn may go without progress before it stops being renewed (agent.config derives them
    from the settings)."""

    lease_seconds: float = 15.0
    renew_seconds: float = 5.0
    stall_seconds: float = 600.0


def _dialect_insert(dialect: str) -> Any:
    """The INSERT of `dialect` that can say ON CONFLICT DO NOTHING."""
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def _clock(dialect: str) -> ColumnElement[float]:
    """Now, in seconds since the epoch: the database server's clock on PostgreSQL (one clock
    for every host), this host's on SQLite (bound as `now` with each statement)."""
    if dialect == "postgresql":
        return cast(func.extract("epoch", func.clock_timestamp()), Float)
    return bindparam("now", type_=Float)


class Leases:
    """The lease statements of one database, and the heartbeat of this process's leases."""

    def __init__(self, engine: Engine, timing: LeaseTiming) -> None:
        self.timing = timing
        now = _clock(engine.dialect.name)
        until = now + bindparam("seconds", type_=Float)
        c = _leases.c
        mine = (c.conversation_id == bindparam("cid"), c.owner == bindparam("me"))
        self._read = select(c.owner, c.expires_at, now).where(c.conversation_id == bindparam("cid"))
        # Taken where no row is (the last turn answered): one statement, no read first.
        self._take = (
            _dialect_insert(engine.dialect.name)(_leases)
            .values(conversation_id=bindparam("cid"), owner=bindparam("me"), expires_at=until)
            .on_conflict_do_nothing(index_elements=[c.conversation_id])
            .returning(c.conversation_id)  # a row when taken (rowcount says -1 on psycopg)
        )
        self._move = (  # only from the holder that was read, as it was read
            update(_leases)
            .where(
                c.conversation_id == bindparam("cid"),
                c.owner == bindparam("old"),
                c.expires_at == bindparam("old_until"),
            )
            .values(owner=bindparam("me"), expires_at=until)
        )
        self._renew = update(_leases).where(*mine).values(expires_at=until)
        self._drop = delete(_leases).where(*mine)
        self._lapse = update(_leases).where(*mine).values(expires_at=ABANDONED)
        self.heartbeat = Heartbeat(engine, self._beat_statement(until), timing)

    def _beat_statement(self, until: ColumnElement[float]) -> Any:
        """All this process's leases in one statement. Rows locked by their own turn's
        transaction (a tool round) are skipped rather than waited for, on PostgreSQL: that
        transaction renews its lease as it commits."""
        c = _leases.c
        free = (
            select(c.conversation_id)
            .where(
                c.conversation_id.in_(bindparam("cids", expanding=True)),
                c.owner.in_(bindparam("owners", expanding=True)),
                c.expires_at > ABANDONED,  # a beat that overlaps the turn's end revives nothing
            )
            .with_for_update(skip_locked=True)
        )
        return update(_leases).where(c.conversation_id.in_(free)).values(expires_at=until)

    def _params(self, conversation_id: str, lease: str, **more: Any) -> dict[str, Any]:
        return {"cid": conversation_id, "me": lease, "now": time.time(),
                "seconds": self.timing.lease_seconds, **more}  # fmt: skip

    def take(self, session: Session, conversation_id: str, lease: str) -> bool:
        """Take the conversation's lease for `lease` (the conversation row is locked), or
        raise TurnInProgress with how long the running turn's hold lasts unrenewed. True when
        it was taken over from a turn that ended without its answer (it died, failed or was
        left by its client). Renewed by the heartbeat once the transaction commits."""
        connection = session.connection()
        params = self._params(conversation_id, lease)
        taken_over = False
        held = None
        while held is None and connection.execute(self._take, params).first() is None:
            held = connection.execute(self._read, params).first()  # a row is there: whose?
        if held is not None:
            owner, until, now = held
            if owner != lease and until > now and not lease_holder_gone(owner):
                raise TurnInProgress(BUSY, retry_after=seconds_left(until - now))
            moved = connection.execute(self._move, {**params, "old": owner, "old_until": until})
            if moved.rowcount != 1:  # its holder renewed it just now: still running
                raise TurnInProgress(BUSY, retry_after=seconds_left(self.timing.lease_seconds))
            taken_over = owner != lease
        _at_commit(session, self, conversation_id, lease, hold=True)
        return taken_over

    def renew(self, session: Session, conversation_id: str, lease: str) -> None:
        """A write of the turn: check that it still holds its lease, and renew it."""
        self.heartbeat.progress(lease)
        result = session.connection().execute(self._renew, self._params(conversation_id, lease))
        if result.rowcount != 1:  # another turn took over (this one stalled past its lease)
            raise self._lost(session, conversation_id)
        _at_commit(session, self, conversation_id, lease, hold=False)

    def refresh(self, session: Session, conversation_id: str, lease: str) -> None:
        """Renew the lease again as a long transaction of its turn commits (its row was
        locked meanwhile, so the heartbeat skipped it)."""
        session.connection().execute(self._renew, self._params(conversation_id, lease))

    def release_held(self, session: Session, conversation_id: str, lease: str) -> None:
        """Release the lease this turn still holds (the last write of a turn that answered)."""
        self.heartbeat.drop(lease)
        result = session.connection().execute(self._drop, self._params(conversation_id, lease))
        if result.rowcount != 1:
            raise self._lost(session, conversation_id)

    def abandon(self, session: Session, conversation_id: str, lease: str) -> None:
        """End the turn without its answer: its lease lapses now, and the next turn knows the
        message before its own went unanswered. Idempotent."""
        self.heartbeat.drop(lease)
        session.connection().execute(self._lapse, self._params(conversation_id, lease))

    def _lost(self, session: Session, conversation_id: str) -> TurnLost:
        held = session.connection().execute(self._read, self._params(conversation_id, "")).first()
        left = held[1] - held[2] if held is not None else 0.0
        return TurnLost(LOST, retry_after=seconds_left(left))


def running(session: Session, conversation_id: str) -> bool:
    """Whether a running turn holds the conversation's lease: one neither released, abandoned,
    lapsed (by the database's clock on PostgreSQL), nor left by a process gone from this host.
    A turn's process renews its lease while the turn runs (Heartbeat), through its calls."""
    c = _leases.c
    now = _clock(session.get_bind().dialect.name)
    read = select(c.owner, c.expires_at, now).where(c.conversation_id == bindparam("cid"))
    held = session.connection().execute(read, {"cid": conversation_id, "now": time.time()}).first()
    if held is None:
        return False
    owner, until, at = held
    return bool(until > at) and not lease_holder_gone(owner)


# What a transaction that took or renewed a lease does as it ends (session.info): a lease taken
# is renewed by the heartbeat once it commits (a rolled-back take holds nothing), and one
# whose transaction lasted longer than a heartbeat is renewed again as it commits.
_AT_COMMIT = "supportbot_leases"
_Pending = tuple[Leases, str, str, float, bool]


def _at_commit(session: Session, leases: Leases, conversation_id: str, lease: str, *,
               hold: bool) -> None:  # fmt: skip
    pending: list[_Pending] = session.info.setdefault(_AT_COMMIT, [])
    pending.append((leases, conversation_id, lease, time.monotonic(), hold))


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    for leases, conversation_id, lease, since, _ in session.info.get(_AT_COMMIT, ()):
        if time.monotonic() - since > leases.timing.renew_seconds:
            leases.refresh(session, conversation_id, lease)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    for leases, conversation_id, lease, _, hold in session.info.pop(_AT_COMMIT, ()):
        if hold:
            leases.heartbeat.hold(conversation_id, lease)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_AT_COMMIT, None)


def seconds_left(seconds: float) -> int:
    """`seconds` as a Retry-After: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(seconds))


class Heartbeat:
    """Renews the leases of this process's running turns: one thread, started with the first
    lease and ended with the last, renews them all in one statement every `renew_seconds`
    (one short write however many turns are in flight). A lease whose turn has made no
    progress for `stall_seconds` is left to lapse."""

    def __init__(self, engine: Engine, statement: Any, timing: LeaseTiming) -> None:
        self.engine = engine
        self.statement = statement
        self.timing = timing
        self._held: dict[str, tuple[str, float]] = {}  # lease -> (conversation, last progress)
        self._lock = threading.Condition()
        self._thread: threading.Thread | None = None
        self.beats = 0  # renewals made (for tests and benchmarks)

    def hold(self, conversation_id: str, lease: str) -> None:
        with self._lock:
            self._held[lease] = (conversation_id, time.monotonic())
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="turn-lease-heartbeat",
                                                daemon=True)  # fmt: skip
                self._thread.start()

    def progress(self, lease: str) -> None:
        with self._lock:
            held = self._held.get(lease)
            if held is not None:
                self._held[lease] = (held[0], time.monotonic())

    def drop(self, lease: str) -> None:
        with self._lock:
            self._held.pop(lease, None)

    def held(self) -> list[str]:
        with self._lock:
            return list(self._held)

    def _run(self) -> None:
        while True:
            with self._lock:
                self._lock.wait(self.timing.renew_seconds)
                stalled = [lease for lease, (_, at) in self._held.items()
                           if time.monotonic() - at > self.timing.stall_seconds]  # fmt: skip
                for lease in stalled:
                    log.warning("turn %s made no progress for %.0f s: its conversation is "
                                "let go", lease, self.timing.stall_seconds)  # fmt: skip
                    del self._held[lease]
                if not self._held:
                    self._thread = None
                    return
                leases = dict(self._held)
            try:
                self._beat(leases)
            except Exception as exc:  # the database is away: the next beat tries again
                log.warning("could not renew the leases of %d running turns: %s", len(leases),
                            exc)  # fmt: skip

    def _beat(self, leases: dict[str, tuple[str, float]]) -> None:
        params = {"cids": sorted({cid for cid, _ in leases.values()}), "owners": list(leases),
                  "now": time.time(), "seconds": self.timing.lease_seconds}  # fmt: skip
        with transaction(self.engine) as session:
            session.connection().execute(self.statement, params)
        self.beats += 1
