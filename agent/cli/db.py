"""`supportbot db`: the database schema."""

from __future__ import annotations

import typer

from agent.cli.common import console, fail, load_settings

app = typer.Typer(help="The database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade() -> None:
    """Bring the database to the newest schema in place (a database made by an earlier release
    keeps all its data). `serve` and every command do the same on start; this says what it did."""
    from agent.store.db import make_engine, migrations_done
    from agent.store.migrate import current, head

    settings = load_settings()
    try:
        engine = make_engine(settings.resolved_database_url())  # migrates
        done = migrations_done(engine)
        with engine.connect() as connection:
            revision = current(connection)
    except Exception as exc:  # a database that cannot be reached or read
        raise fail(f"cannot upgrade {settings.resolved_database_url()}: {exc}") from exc
    console.print("; ".join(done) if done else "the schema was current", soft_wrap=True)
    console.print(f"schema revision {revision} (newest: {head()})")
