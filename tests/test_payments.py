"""The payment data order actions need: imported exactly, shown only to its own customer."""

from __future__ import annotations

import json
from pathlib import Path

from sqlmodel import Session, select

from agent.runtime import Runtime
from agent.store.db import make_engine
from agent.store.importer import import_path
from agent.store.tables import Order, OrderPayment, PaymentMethod
from tests.conftest import IVAN, RETAIL_SLICE, customer_id
from tests.fake_anthropic import FakeAnthropic, text, tool_use


def test_payment_methods_and_histories_import_exactly(any_db_url: str, tmp_path: Path) -> None:
    engine = make_engine(any_db_url)
    first = import_path(engine, RETAIL_SLICE)
    again = import_path(engine, RETAIL_SLICE)
    assert not first.problems and again.customers.unchanged == 4 and again.orders.unchanged == 14
    with Session(engine) as session:
        gift = session.get(PaymentMethod, "gift_card_4374071")
        card = session.get(PaymentMethod, "credit_card_8955149")
        assert gift is not None and (gift.customer_id, gift.balance_cents) == (
            "anya_garcia_3271",
            5100,
        )
        assert card is not None and (card.brand, card.last_four, card.balance_cents) == (
            "visa",
            "8674",
            None,
        )
        cancelled = session.exec(select(OrderPayment).where(OrderPayment.order_id == "#W4140680")
                                 .order_by(OrderPayment.position)).all()  # fmt: skip
        assert [(p.transaction_type, p.amount_cents) for p in cancelled] == [
            ("payment", 104851), ("refund", 104851)]  # fmt: skip
    # A changed balance in the source is an update, not a duplicate.
    data = json.loads(RETAIL_SLICE.read_text())
    data["users"]["anya_garcia_3271"]["payment_methods"]["gift_card_4374071"]["balance"] = 12.34
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(data))
    report = import_path(engine, changed)
    assert report.customers.updated == 1
    with Session(engine) as session:
        assert session.get(PaymentMethod, "gift_card_4374071").balance_cents == 1234  # type: ignore[union-attr]
        assert len(session.exec(select(PaymentMethod)).all()) == 5
    # An order CSV says nothing about payments: importing one keeps them.
    csv = tmp_path / "orders.csv"
    csv.write_text("order_id,customer_id,email,first_name,last_name,zip,status,item_id,item_name,"
                   "price\n#W6893533,ivan_santos_6635,ivan.santos3158@example.com,Ivan,Santos,"
                   "75277,delivered,1,Kettle,10.00\n")  # fmt: skip
    import_path(engine, csv)
    with Session(engine) as session:
        kept = session.exec(select(OrderPayment).where(OrderPayment.order_id == "#W6893533")).all()
        assert len(kept) == 1 and session.get(PaymentMethod, "paypal_6151711") is not None


def test_a_verified_customer_sees_their_own_payment_methods_only(
    runtime: Runtime, fake: FakeAnthropic
) -> None:
    conversation = runtime.agent.start_conversation(customer_id=customer_id(runtime, IVAN["email"]))
    fake.enqueue(tool_use("payment_methods", {}), tool_use("order_status", {"order_id": IVAN["orders"][0]}),
                 text("You paid by PayPal."))  # fmt: skip
    result = runtime.agent.ask(conversation, "How did I pay for my order?")
    methods = json.loads(fake.bodies[1]["messages"][-1]["content"][0]["content"])
    assert methods == [{"payment_method_id": "paypal_6151711", "kind": "paypal", "brand": None,
                        "last_four": None, "balance": None}]  # fmt: skip
    order = json.loads(fake.bodies[2]["messages"][-1]["content"][0]["content"])
    assert order["payments"] == [{"transaction_type": "payment", "amount": "$327.57",
                                  "payment_method_id": "paypal_6151711"}]  # fmt: skip
    assert [c.name for c in result.tool_calls] == ["payment_methods", "order_status"]
    # Anonymous: not verified, nothing shown.
    fake.enqueue(tool_use("payment_methods", {}), text("Please verify first."))
    runtime.agent.ask(runtime.agent.start_conversation(), "what cards do I have?")
    block = fake.bodies[-1]["messages"][-1]["content"][0]
    assert block["is_error"] is True and "not verified" in block["content"]


def test_what_the_order_actions_recorded_imports_from_db_json(
    any_db_url: str, tmp_path: Path
) -> None:
    """A db.json written after order actions (τ²-bench's optional order fields) imports whole,
    and a CSV, which says nothing of them, keeps them."""
    data = json.loads(RETAIL_SLICE.read_text())
    order = data["orders"]["#W3470184"]
    order.update(status="exchange requested", exchange_items=["2366567022"],
                 exchange_new_items=["4579334072"], exchange_payment_method_id="gift_card_7245904",
                 exchange_price_difference=-12.5)  # fmt: skip
    data["orders"]["#W6436609"].update(status="cancelled", cancel_reason="ordered by mistake")
    changed = tmp_path / "after_actions.json"
    changed.write_text(json.dumps(data))
    engine = make_engine(any_db_url)
    assert not import_path(engine, changed).problems
    assert import_path(engine, changed).orders.unchanged == 14
    csv = tmp_path / "orders.csv"
    csv.write_text("order_id,customer_id,email,first_name,last_name,zip,status,item_id,item_name,"
                   "price\n#W3470184,aarav_anderson_8794,aarav.anderson9752@example.com,Aarav,"
                   "Anderson,19031,exchange requested,1,Kettle,10.00\n")  # fmt: skip
    import_path(engine, csv)
    with Session(engine) as session:
        exchanged = session.get(Order, "#W3470184")
        cancelled = session.get(Order, "#W6436609")
        assert exchanged is not None and cancelled is not None
        assert (exchanged.status, exchanged.exchange_items, exchanged.exchange_new_items) == (
            "exchange requested", ["2366567022"], ["4579334072"])  # fmt: skip
        assert exchanged.exchange_price_difference_cents == -1250
        assert exchanged.exchange_payment_method_id == "gift_card_7245904"
        assert cancelled.cancel_reason == "ordered by mistake"
