"""Importing the shop's file again never silently undoes what was changed here: the
customer's confirmed changes and the changes staff ran are kept and reported as conflicts,
and only `--overwrite` replaces them, listing them first. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from agent.cli import app
from agent.config import Settings
from agent.runtime import build_runtime
from agent.store.db import make_engine
from agent.store.importer import import_path
from agent.store.invariants import check
from agent.store.tables import Customer, Order, OrderPayment, PaymentMethod
from tests.conftest import RETAIL_SLICE

ANYA = "anya_garcia_3271"
ANYA_ORDER = "#W6436609"  # pending, paid $3,005.33 with gift_card_4374071 (balance $51.00)
ADDRESS = {"address1": "1 Main St", "address2": "", "city": "Austin", "state": "TX",
           "country": "USA", "zip": "73301"}  # fmt: skip
runner = CliRunner()


@pytest.fixture
def settings(any_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SUPPORTBOT_DATABASE_URL", any_db_url)
    return Settings(data_dir=tmp_path / "data", database_url=any_db_url)


def _import(*extra: str) -> str:
    result = runner.invoke(app, ["orders", "import", str(RETAIL_SLICE), *extra])
    assert result.exit_code == 0, result.output
    return result.output


def _changes_by_staff(settings: Settings) -> None:
    """What an agent's confirmed change or staff's run change leaves: both go through the same
    action, recorded as executed."""
    from agent.features.staff_actions import run_for_customer

    runtime = build_runtime(settings)
    for tool, arguments in (
        ("modify_pending_order_payment", {"order_id": ANYA_ORDER,
                                          "payment_method_id": "credit_card_8955149"}),
        ("cancel_pending_order", {"order_id": ANYA_ORDER, "reason": "no longer needed"}),
        ("modify_user_address", ADDRESS),
    ):  # fmt: skip
        done = run_for_customer(runtime.engine, runtime.agent.tools, runtime.settings,
                                customer_id=ANYA, tool=tool, arguments=arguments,
                                staff="Anna Berg")  # fmt: skip
        assert done.status == "executed", done.result


def _state(settings: Settings) -> tuple[str, str, int | None, int]:
    with Session(make_engine(settings.resolved_database_url())) as session:
        order = session.get(Order, ANYA_ORDER)
        customer = session.get(Customer, ANYA)
        card = session.get(PaymentMethod, "gift_card_4374071")
        rows = session.exec(select(OrderPayment).where(OrderPayment.order_id == ANYA_ORDER))
        assert order and customer and card
        return order.status, customer.zip_code, card.balance_cents, len(rows.all())


def test_importing_the_same_file_again_keeps_the_changes_made_here(settings: Settings) -> None:
    _import()
    _changes_by_staff(settings)
    changed = _state(settings)
    assert changed == ("cancelled", "73301", 5100 + 300533, 4)

    output = _import()  # what every `make demo` does
    assert _state(settings) == changed  # nothing undone
    assert f"kept order {ANYA_ORDER}: changed here (cancel_pending_order, " in output
    assert "modify_pending_order_payment) since its last import" in output
    assert f"kept customer {ANYA}: changed here" in output
    assert "orders: 0 created, 0 updated, 13 unchanged, 1 kept" in output
    assert "customers: 0 created, 0 updated, 3 unchanged, 1 kept" in output
    assert check(make_engine(settings.resolved_database_url())) == []  # money still adds up

    output = _import("--overwrite")  # the operator's explicit choice, listed first
    assert output.index(f"overwritten order {ANYA_ORDER}") < output.index("orders:")
    assert "1 overwritten" in output
    assert _state(settings) == ("pending", "19036", 5100, 1)  # the file's store again
    assert check(make_engine(settings.resolved_database_url())) == []
    # The file is now what was last imported: a third import changes nothing.
    assert "orders: 0 created, 0 updated, 14 unchanged\n" in _import()


def test_a_file_that_caught_up_with_the_changes_imports_without_conflict(
    settings: Settings, tmp_path: Path
) -> None:
    """The shop's next export includes what was changed here: it matches, nothing is kept,
    and later changes in the file apply again."""
    _import()
    _changes_by_staff(settings)
    data = json.loads(RETAIL_SLICE.read_text())
    order = data["orders"][ANYA_ORDER]
    order["status"], order["cancel_reason"] = "cancelled", "no longer needed"
    order["payment_history"] += [
        {"transaction_type": "payment", "amount": 3005.33, "payment_method_id": "credit_card_8955149"},
        {"transaction_type": "refund", "amount": 3005.33, "payment_method_id": "gift_card_4374071"},
        {"transaction_type": "refund", "amount": 3005.33, "payment_method_id": "credit_card_8955149"},
    ]  # fmt: skip
    user = data["users"][ANYA]
    user["address"] = ADDRESS
    user["payment_methods"]["gift_card_4374071"]["balance"] = 3056.33
    caught_up = tmp_path / "caught_up.json"
    caught_up.write_text(json.dumps(data))
    engine = make_engine(settings.resolved_database_url())
    report = import_path(engine, caught_up)
    assert report.conflicts == [] and report.orders.unchanged == 14
    order["status"] = "processed"  # the warehouse moved on: applies, no conflict
    caught_up.write_text(json.dumps(data))
    report = import_path(engine, caught_up)
    assert report.conflicts == [] and report.orders.updated == 1
    assert _state(settings)[0] == "processed"
