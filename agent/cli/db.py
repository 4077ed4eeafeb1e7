"""`supportbot db`: the database schema."""

from __future__ import annotations

import typer

from agent.cli.common import console, fail, load_settings

app = typer.Typer(help="Upgrade the database's schema, or check its invariants.",
                  no_args_is_help=True)  # fmt: skip


@app.command("upgrade")
def upgrade() -> None:
    """Bring the database to the newest schema, in place.

    A database made by an earlier release keeps all its data. `serve` and every other command
    do the same on start; this one says what it did.
    """
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


@app.command("check")
def check() -> None:
    """Check the store's invariants and list every violation.

    One violation a line: money that does not add up (refunds beyond what a method paid, an
    order holding more or less than its total, a gift card whose balance its history does not
    explain), a customer with a blank email or zip code, an executed change the store does not
    show. Exit code 1 when there is any.
    """
    from agent.store.db import make_engine
    from agent.store.invariants import check as check_store

    settings = load_settings()
    try:
        violations = check_store(make_engine(settings.resolved_database_url()))
    except Exception as exc:  # a database that cannot be reached or read
        raise fail(f"cannot check {settings.resolved_database_url()}: {exc}") from exc
    for violation in violations:
        console.print(str(violation), soft_wrap=True, markup=False, highlight=False)
    if violations:
        console.print(f"{len(violations)} violation(s)")
        raise typer.Exit(1)
    console.print("no violations: money adds up, identities are sound, changes stand")
