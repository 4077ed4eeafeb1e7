"""Schema migrations (Alembic): every database is brought to the newest schema in place.

A new, empty database gets the tables and is stamped as current. A database made by release
0.1 (tables, but no migration history: it was made by `create_all`) is stamped with the
baseline revision, which is exactly that release's schema, and upgraded from there; a migrated
database is upgraded from wherever it stands. Nothing is dropped. Workers and commands starting
at once take turns (SQLite's writer lock, a PostgreSQL advisory lock), so one of them upgrades
and the others find the schema current.
"""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager, nullcontext
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text
from sqlmodel import SQLModel

from agent.store import tables  # noqa: F401  (registers the tables on SQLModel.metadata)

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

# The newest revision, known without loading Alembic (a quarter of a second): a database
# already at it needs nothing, which is every start but the first after an upgrade.
# tests/test_migrations.py checks it is the head of migrations/.
HEAD = "0011_email"

MIGRATIONS = Path(__file__).with_name("migrations")
BASELINE = "0001_release_0_1"  # release 0.1's schema, as its create_all made it
_ADVISORY_KEY = 72_201_110  # PostgreSQL advisory lock id for migrations


def _config(connection: Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


@cache
def head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    found = ScriptDirectory.from_config(config).get_current_head()
    assert found is not None
    return found


def current(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def _at_head(engine: Engine) -> bool:
    """Whether the database is already at HEAD (one read; no lock, no Alembic)."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return False
        return connection.execute(text("SELECT version_num FROM alembic_version")).all() == [
            (HEAD,)
        ]


def migrate(engine: Engine, writer: AbstractContextManager[object] | None = None) -> list[str]:
    """Bring the database to the newest schema; returns what was done (empty: it was current).

    `writer` is held while migrating (SQLite's writer lock among processes)."""
    if _at_head(engine):
        return []
    from alembic import command

    done: list[str] = []
    with writer or nullcontext(), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_KEY})
        names = set(inspect(connection).get_table_names())
        config = _config(connection)
        if "alembic_version" not in names:
            if not names & set(SQLModel.metadata.tables):  # a new database
                SQLModel.metadata.create_all(connection)
                command.stamp(config, "head")
                return ["created at " + head()]
            log.warning("database made by release 0.1 (no migration history): upgrading it")
            command.stamp(config, BASELINE)
            done.append("stamped " + BASELINE)
        before = current(connection)
        if before != head():
            command.upgrade(config, "head")
            log.warning("database upgraded from %s to %s", before, head())
            done.append(f"upgraded {before} -> {head()}")
    return done
