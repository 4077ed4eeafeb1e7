"""Schema migrations: a database made by release 0.1 upgrades in place, losing nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlmodel import SQLModel
from typer.testing import CliRunner

from agent.cli import app
from agent.store.db import make_engine, migrations_done
from agent.store.migrate import current, head
from tests.fixtures.release_0_1_tables import Base


def _release_0_1_database(url: str) -> None:
    """A database exactly as release 0.1 left it: its create_all, and some data."""
    engine = create_engine(url)
    Base.metadata.create_all(engine)
    t = Base.metadata.tables
    when = datetime(2026, 11, 1, 10, tzinfo=UTC)
    with engine.begin() as connection:
        connection.execute(
            t["customer"]
            .insert()
            .values(
                id="c1",
                first_name="Ann",
                last_name="Lee",
                email="ann@example.com",
                zip_code="10001",
                address={},
            )
        )
        connection.execute(
            t["order"]
            .insert()
            .values(
                id="#W1",
                customer_id="c1",
                status="pending",
                address={},
                total_cents=1234,
                placed_seq=1,
            )
        )
        connection.execute(
            t["conversation"]
            .insert()
            .values(
                id="conv1",
                customer_id="c1",
                state="BOT",
                failed_verifications=0,
                last_sequence=1,
                context_cut=0,
                channel="api",
                created_at=when,
                updated_at=when,
            )
        )
        connection.execute(
            t["message"]
            .insert()
            .values(
                conversation_id="conv1",
                sequence=1,
                role="user",
                degraded=False,
                created_at=when,
                content=[{"type": "text", "text": "hi"}],
            )
        )
    engine.dispose()  # fmt: skip


def test_a_release_0_1_database_upgrades_in_place(any_db_url: str) -> None:
    _release_0_1_database(any_db_url)
    engine = make_engine(any_db_url)
    assert migrations_done(engine)[0] == "stamped 0001_release_0_1"
    with engine.connect() as connection:
        assert current(connection) == head()
        tables = set(inspect(connection).get_table_names())
        assert {"turn_lease", "payment_method", "order_payment"} <= tables
        assert connection.execute(text("SELECT email FROM customer")).scalar() == "ann@example.com"
        assert connection.execute(text('SELECT total_cents FROM "order"')).scalar() == 1234
        assert connection.execute(text("SELECT role FROM message")).scalar() == "user"
        # What the migrations built is what the models describe.
        assert compare_metadata(MigrationContext.configure(connection), SQLModel.metadata) == []
    engine.dispose()
    again = make_engine(any_db_url)  # current: nothing to do
    assert migrations_done(again) == []
    again.dispose()


def test_a_new_database_is_created_current(any_db_url: str) -> None:
    engine = make_engine(any_db_url)
    assert migrations_done(engine) == [f"created at {head()}"]
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), SQLModel.metadata) == []
    engine.dispose()


def test_db_upgrade_command_says_what_it_did(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'old.db'}"
    _release_0_1_database(url)
    monkeypatch.setenv("SUPPORTBOT_DATABASE_URL", url)
    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "stamped 0001_release_0_1; upgraded 0001_release_0_1 -> " in result.output
    assert f"schema revision {head()}" in result.output
    again = CliRunner().invoke(app, ["db", "upgrade"])
    assert "the schema was current" in again.output


def test_the_previous_release_upgrades_to_the_desk_keeping_its_tickets(any_db_url: str) -> None:
    """A database at 0007 (the release before the desk) with tickets upgrades in place: the
    ticket table is rebuilt on SQLite to take the assignee column, and every row survives."""
    from alembic import command

    from agent.store.migrate import _config

    _release_0_1_database(any_db_url)
    engine = create_engine(any_db_url)
    with engine.begin() as connection:
        config = _config(connection)
        command.stamp(config, "0001_release_0_1")
        command.upgrade(config, "0007_outcomes")
        connection.execute(
            text(
                "INSERT INTO ticket (conversation_id, customer_id, reason, summary, status,"
                " claimed_by, created_at, resolved_at) VALUES ('conv1', 'c1', 'refund', 'wants"
                " money back', 'RESOLVED', 'me', :when, :when)"
            ),
            {"when": datetime(2026, 11, 2, 9, tzinfo=UTC)},
        )
    engine.dispose()
    upgraded = make_engine(any_db_url)
    assert migrations_done(upgraded) == [f"upgraded 0007_outcomes -> {head()}"]
    with upgraded.connect() as connection:
        assert current(connection) == head()
        row = connection.execute(
            text("SELECT reason, summary, status, claimed_by, assignee_id FROM ticket")
        ).one()
        assert tuple(row) == ("refund", "wants money back", "RESOLVED", "me", None)
        assert compare_metadata(MigrationContext.configure(connection), SQLModel.metadata) == []
    upgraded.dispose()


def test_the_head_the_code_knows_is_the_newest_migration() -> None:
    """migrate.HEAD lets a current database skip loading Alembic: it must name the newest
    revision (add a migration, move HEAD)."""
    from agent.store.migrate import HEAD

    assert head() == HEAD


def test_the_release_before_import_marks_upgrades_with_gift_cards_that_add_up(
    any_db_url: str,
) -> None:
    """A database at 0008 with a gift card that paid for an order and got a refund upgrades in
    place: its opening balance is what explains its balance, so `supportbot db check` finds
    the money sound; nothing is lost, and no record has an import mark yet."""
    from alembic import command

    from agent.store.invariants import check
    from agent.store.migrate import _config

    _release_0_1_database(any_db_url)
    engine = create_engine(any_db_url)
    with engine.begin() as connection:
        config = _config(connection)
        command.stamp(config, "0001_release_0_1")
        command.upgrade(config, "0008_desk")
        connection.execute(text(
            "INSERT INTO payment_method (id, customer_id, source, balance_cents) VALUES"
            " ('gift_card_1', 'c1', 'gift_card', 2500)"
        ))  # fmt: skip
        order = connection.execute(text('SELECT id, total_cents FROM "order"')).first()
        assert order is not None
        for position, kind, cents in ((0, "payment", order[1]), (1, "refund", 700),
                                      (2, "payment", 700)):  # fmt: skip
            connection.execute(
                text("INSERT INTO order_payment (order_id, position, transaction_type,"
                     " amount_cents, payment_method_id) VALUES (:o, :p, :k, :c, 'gift_card_1')"),
                {"o": order[0], "p": position, "k": kind, "c": cents},
            )  # fmt: skip
    engine.dispose()
    upgraded = make_engine(any_db_url)
    assert migrations_done(upgraded) == [f"upgraded 0008_desk -> {head()}"]
    with upgraded.connect() as connection:
        row = connection.execute(text(
            "SELECT balance_cents, opening_balance_cents FROM payment_method"
        )).one()  # fmt: skip
        assert tuple(row) == (2500, 2500 + order[1])
        marks = connection.execute(text('SELECT imported_at FROM "order"')).all()
        assert marks and all(m[0] is None for m in marks)
        assert compare_metadata(MigrationContext.configure(connection), SQLModel.metadata) == []
    assert [v for v in check(upgraded) if v.rule == "money.gift_card"] == []
