"""Engine and sessions. SQLite by default, PostgreSQL via SUPPORTBOT_DATABASE_URL."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Connection, Dialect, Engine, event, exc
from sqlmodel import Session, create_engine

from agent.store.migrate import migrate


def make_engine(url: str, pool_size: int = 20) -> Engine:
    """An engine with the pragmas and pool settings each backend needs, on a database brought
    to the newest schema (agent.store.migrate: created, or upgraded in place).

    Every turn in flight can hold a connection for a moment, so the pool follows the expected
    concurrency (`pool_size`, plus as many again on overflow).
    """
    kwargs: dict[str, Any] = {"pool_size": pool_size, "max_overflow": pool_size}
    path: Path | None = None
    if url.startswith("sqlite"):
        name = url.split("///", 1)[-1]
        if name and name != ":memory:":
            path = Path(name)
            path.parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    engine = create_engine(url, **kwargs)
    if not url.startswith("sqlite"):
        event.listen(engine, "checkin", _idle_from)
        event.listen(engine, "checkout", _ping_if_idle(engine.dialect))
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        # Write transactions go through this variant of the engine, one at a time.
        writer = _Writer(engine.execution_options(**{_IMMEDIATE: True}), path)
        setattr(engine, _WRITER, writer)  # lives and dies with the engine
        done = migrate(writer.engine, writer.hold())
    else:
        done = migrate(engine)
    setattr(engine, _MIGRATED, done)
    return engine


_MIGRATED = "_supportbot_migrated"

# A pooled PostgreSQL connection is pinged before use only when it sat idle in the pool for
# longer than this: a server restarted or a connection dropped while idle (a firewall, an idle
# timeout) shows there, and the pool then opens a new one (SQLAlchemy's documented custom
# "pessimistic" check: DisconnectionError from a checkout handler). A connection in steady use
# is not pinged: under load a ping before every checkout was ~3 of a turn's ~20 round trips
# (bench/README.md). A connection that breaks while in use fails its statement, and SQLAlchemy
# then invalidates the pool's older connections (its optimistic handling).
PING_AFTER_IDLE_SECONDS = 10.0
_IDLE_SINCE = "supportbot_idle_since"


def _idle_from(_dbapi_connection: Any, record: Any) -> None:
    record.info[_IDLE_SINCE] = time.monotonic()


def _ping_if_idle(dialect: Dialect) -> Callable[[Any, Any, Any], None]:
    def check(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop(_IDLE_SINCE, None)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return  # new, or back in the pool a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:  # the pool retries with a new connection
            raise exc.DisconnectionError(str(error)) from error

    return check


def migrations_done(engine: Engine) -> list[str]:
    """What `make_engine` did to bring this engine's database to the newest schema."""
    return list(getattr(engine, _MIGRATED, []))


# SQLite has one writer at a time. Left to itself, a writer that finds the database locked
# polls with sleeps of up to 100 ms (the busy handler): under load most turns sleep while the
# CPU idles. And a transaction that reads first cannot always become a writer later (WAL
# snapshots), which fails at once whatever the timeout. So write transactions (`transaction`)
# queue: on a lock among the threads of a process, then on an flock() of `<db>.writer`
# among processes (workers, CLI commands), which wakes the next writer the moment the last
# one ends; and they take SQLite's write lock when they begin (BEGIN IMMEDIATE).
_IMMEDIATE = "supportbot_begin_immediate"
_WRITER = "_supportbot_writer"


class _Writer:
    def __init__(self, engine: Engine, path: Path | None) -> None:
        self.engine = engine
        self.threads = threading.RLock()
        self.lock_file = path.with_name(path.name + ".writer") if path else None
        self.depth = 0  # nested transactions of the thread holding the lock
        self.handle: IO[str] | None = None
        self.pid = 0

    @contextmanager
    def hold(self) -> Iterator[None]:
        with self.threads:
            if self.lock_file is None or self.depth:
                self.depth += 1
                try:
                    yield
                finally:
                    self.depth -= 1
                return
            if self.handle is None or self.pid != os.getpid():
                # Opened once per process (a forked child shares its parent's open file, and
                # with it the lock): the lock is then taken and released on it.
                self.handle, self.pid = self.lock_file.open("a"), os.getpid()
            fcntl.flock(self.handle, fcntl.LOCK_EX)
            self.depth += 1
            try:
                yield
            finally:
                self.depth -= 1
                fcntl.flock(self.handle, fcntl.LOCK_UN)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # the driver's implicit BEGIN: see _sqlite_begin
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    # Write transactions begin here. Read-only sessions run each statement on its own, as the
    # driver always did (no BEGIN/ROLLBACK round trips for a lookup).
    if connection.get_execution_options().get(_IMMEDIATE, False):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on any exception."""
    writer: _Writer | None = getattr(engine, _WRITER, None)
    if writer is None:  # PostgreSQL: row locks, no global writer
        with _session(engine) as session:
            yield session
        return
    with writer.hold(), _session(writer.engine) as session:
        yield session


@contextmanager
def reading(engine: Engine) -> Iterator[Session]:
    """A session that reads and never writes, outside the writer: on SQLite it takes no lock
    (each statement runs on its own, or in a read snapshot while a savepoint is open), so
    other conversations' writes go on meanwhile; on PostgreSQL a transaction rolled back at
    the end. What it reads may change before a write transaction reads it again."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
        finally:
            session.rollback()


_KEPT = "supportbot_kept"


def keep(session: Session, row: object) -> None:
    """Keep `row` loaded for the rest of the session: a later `session.get` of it then needs
    no query. (A session's identity map holds unchanged rows only weakly: one that nothing
    else refers to is gone by the next look-up, and read again.)"""
    session.info.setdefault(_KEPT, []).append(row)


@contextmanager
def _session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
