"""Alembic's environment for supportbot: runs on the connection agent.store.migrate hands it."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from agent.store import tables  # noqa: F401  (registers the tables on SQLModel.metadata)

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
