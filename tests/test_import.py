"""Importing the store's customers and orders, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from agent.errors import ImportFailed
from agent.store.db import make_engine
from agent.store.importer import import_path
from agent.store.orders import get_order
from agent.store.tables import Customer, Order, OrderItem, Shipment
from tests.conftest import RETAIL_SLICE

SHARED_STORE = Path(__file__).resolve().parents[2] / "shared" / "data" / "retail" / "db.json"


def _counts(engine) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        return {
            t.__name__: session.exec(select(func.count()).select_from(t)).one()
            for t in (Customer, Order, OrderItem, Shipment)
        }


def test_import_is_idempotent(any_db_url: str) -> None:
    engine = make_engine(any_db_url)
    first = import_path(engine, RETAIL_SLICE)
    counts = _counts(engine)
    second = import_path(engine, RETAIL_SLICE)

    assert (first.customers.created, first.orders.created) == (4, 14)
    assert (second.customers.unchanged, second.orders.unchanged) == (4, 14)
    assert second.customers.created == second.orders.created == second.orders.updated == 0
    assert _counts(engine) == counts and not first.problems and not second.problems
    with Session(engine) as session:
        order = get_order(session=session, order_id="#W6893533", customer_id="ivan_santos_6635")
    assert order is not None and order.status == "delivered" and order.items


def test_changed_order_is_replaced_not_duplicated(any_db_url: str, tmp_path: Path) -> None:
    engine = make_engine(any_db_url)
    import_path(engine, RETAIL_SLICE)
    data = json.loads(RETAIL_SLICE.read_text())
    data["orders"]["#W8770097"]["status"] = "delivered"
    data["orders"]["#W8770097"]["items"] = data["orders"]["#W8770097"]["items"][:1]
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(data))

    report = import_path(engine, changed)
    assert report.orders.updated == 1 and report.orders.unchanged == 13
    with Session(engine) as session:
        order = get_order(session=session, order_id="#W8770097", customer_id="ivan_santos_6635")
    assert order is not None and order.status == "delivered" and len(order.items) == 1


def test_bad_records_are_reported_and_skipped_whole(any_db_url: str, tmp_path: Path) -> None:
    data = json.loads(RETAIL_SLICE.read_text())
    data["users"]["ivan_santos_6635"]["email"] = "not-an-email"
    data["orders"]["#W2497857"]["items"][1]["price"] = "lots"  # yara's order, second item
    data["orders"]["#W4140680"]["user_id"] = "ghost_0000"
    data["orders"]["#W6310710"]["status"] = "teleported"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    engine = make_engine(any_db_url)

    report = import_path(engine, bad)
    joined = "\n".join(report.problems)
    assert "user ivan_santos_6635: email" in joined
    assert "order #W2497857: items.1.price" in joined
    assert "order #W4140680: customer 'ghost_0000' is unknown" in joined
    assert "order #W6310710: status" in joined
    # Ivan's 4 orders are skipped because Ivan was; the bad orders are skipped whole.
    assert report.orders.created == 14 - 4 - 3
    with Session(engine) as session:
        assert session.get(Order, "#W2497857") is None
        assert not session.exec(select(OrderItem).where(OrderItem.order_id == "#W2497857")).all()


def test_csv_import_groups_lines_into_orders(any_db_url: str, tmp_path: Path) -> None:
    csv = tmp_path / "orders.csv"
    csv.write_text(
        "order_id,customer_id,email,first_name,last_name,zip,status,item_id,item_name,price,tracking_id\n"
        "#W1000001,c1,Ann@Example.com,Ann,Lee,02139,shipped,i1,Kettle,19.99,TRK1\n"
        "#W1000001,c1,ann@example.com,Ann,Lee,02139,shipped,i2,Mug,5.00,TRK1\n"
        "#W1000002,c1,ann@example.com,Ann,Lee,02139,pending,i3,Lamp,abc,\n"
        "#W1000003,c2,bo@example.com,Bo,Chen,94110,pending,i4,Desk,120,\n"
    )
    engine = make_engine(any_db_url)
    report = import_path(engine, csv)
    assert report.orders.created == 2 and report.customers.created == 2
    assert report.problems == ["order #W1000002 (lines 4): line 4: price 'abc' is not a number"]
    with Session(engine) as session:
        order = get_order(session=session, order_id="w1000001", customer_id="c1")
        assert session.get(Customer, "c1").email == "ann@example.com"  # type: ignore[union-attr]
    assert order is not None and order.total == "$24.99"
    assert order.shipments[0].tracking_ids == ["TRK1"]
    assert import_path(engine, csv).orders.unchanged == 2


def test_unreadable_files_fail_with_the_reason(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "cols.csv").write_text("order_id,email\n#W1,a@b.co\n")
    with pytest.raises(ImportFailed, match="not valid JSON"):
        import_path(engine, tmp_path / "broken.json")
    with pytest.raises(ImportFailed, match="missing columns: customer_id"):
        import_path(engine, tmp_path / "cols.csv")
    with pytest.raises(ImportFailed, match="unsupported format"):
        (tmp_path / "orders.xlsx").write_bytes(b"PK")
        import_path(engine, tmp_path / "orders.xlsx")


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_STORE.exists(), reason="../shared/data/retail/db.json not present")
def test_full_retail_store_imports(any_db_url: str) -> None:
    engine = make_engine(any_db_url)
    report = import_path(engine, SHARED_STORE)
    assert (report.customers.created, report.orders.created, report.problems) == (500, 1000, [])
    assert _counts(engine)["Order"] == 1000
