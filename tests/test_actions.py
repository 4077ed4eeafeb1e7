"""The order actions: every rule of the store's policy, in code, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from agent.adapters.builtin_orders import BuiltinOrders
from agent.config import Settings
from agent.store.db import make_engine, transaction
from agent.store.importer import import_path
from agent.store.tables import Customer, Order, OrderItem, OrderPayment, PaymentMethod
from tests.conftest import RETAIL_SLICE
from tools import default_registry
from tools.order_rules import ActionRefused
from tools.registry import Preview, ToolOutcome
from tools.tool_context import ToolContext

IVAN, ANYA, AARAV = "ivan_santos_6635", "anya_garcia_3271", "aarav_anderson_8794"
ADDRESS = {"address1": "1 Main St", "address2": "Apt 2", "city": "Austin", "state": "TX",
           "country": "USA", "zip": "73301"}  # fmt: skip


@pytest.fixture
def engine(any_db_url: str) -> Iterator[Engine]:
    built = make_engine(any_db_url)
    import_path(built, RETAIL_SLICE)
    yield built
    built.dispose()


def act(engine: Engine, action: str, customer: str, **arguments: Any) -> dict[str, Any]:
    """The change's rule itself (the tool's function), in one transaction."""
    change = default_registry().get(action)
    assert change is not None
    with transaction(engine) as session:
        ctx = ToolContext(
            session,
            Settings(),
            conversation_id="",
            customer_id=customer,
            orders=BuiltinOrders(session),
        )
        result: dict[str, Any] = change.fn(ctx, **arguments)
        return result


def refused(engine: Engine, action: str, customer: str, match: str, **arguments: Any) -> None:
    before = _snapshot(engine)
    with pytest.raises(ActionRefused, match=match):
        act(engine, action, customer, **arguments)
    assert _snapshot(engine) == before  # a refused action changes nothing


def _snapshot(engine: Engine) -> list[Any]:
    with Session(engine) as session:
        return [
            [o.model_dump() for o in session.exec(select(Order).order_by(Order.id)).all()],
            [p.model_dump() for p in session.exec(select(OrderPayment).order_by(OrderPayment.id))],
            [m.model_dump() for m in session.exec(select(PaymentMethod).order_by(PaymentMethod.id))],
            [i.model_dump() for i in session.exec(select(OrderItem).order_by(OrderItem.id)).all()],
        ]  # fmt: skip


def _balance(engine: Engine, method: str) -> int | None:
    with Session(engine) as session:
        found = session.get(PaymentMethod, method)
        assert found is not None
        return found.balance_cents


def _payments(engine: Engine, order: str) -> list[tuple[str, int, str]]:
    with Session(engine) as session:
        rows = session.exec(select(OrderPayment).where(OrderPayment.order_id == order)
                            .order_by(OrderPayment.position)).all()  # fmt: skip
        return [(p.transaction_type, p.amount_cents, p.payment_method_id) for p in rows]


def _order(engine: Engine, order: str) -> Order:
    with Session(engine) as session:
        found = session.get(Order, order)
        assert found is not None
        return found


def _gift_card(engine: Engine, customer: str, cents: int) -> str:
    with transaction(engine) as session:
        session.add(PaymentMethod(id=f"gift_card_{customer}", customer_id=customer,
                                  source="gift_card", balance_cents=cents))  # fmt: skip
    return f"gift_card_{customer}"


def test_cancel_refunds_every_payment_and_credits_gift_cards_at_once(engine: Engine) -> None:
    out = act(engine, "cancel_pending_order", ANYA, order_id="#W6436609",
              reason="ordered by mistake")  # fmt: skip
    assert out["status"] == "cancelled" and out["refunds"][0]["amount"] == "$3,005.33"
    assert _balance(engine, "gift_card_4374071") == 5100 + 300533  # exact cents
    assert _payments(engine, "#W6436609")[-1] == ("refund", 300533, "gift_card_4374071")
    assert _order(engine, "#W6436609").cancel_reason == "ordered by mistake"
    act(engine, "cancel_pending_order", IVAN, order_id="W8770097", reason="no longer needed")
    assert _payments(engine, "#W8770097") == [("payment", 54429, "paypal_6151711"),
                                              ("refund", 54429, "paypal_6151711")]  # fmt: skip


def test_cancel_refusals(engine: Engine) -> None:
    refused(engine, "cancel_pending_order", IVAN, "'delivered'", order_id="#W6893533",
            reason="no longer needed")  # fmt: skip
    refused(engine, "cancel_pending_order", IVAN, "reason must be", order_id="#W8770097",
            reason="found it cheaper")  # fmt: skip
    # Another customer's order reads as missing.
    refused(engine, "cancel_pending_order", IVAN, "not found", order_id="#W6436609",
            reason="no longer needed")  # fmt: skip


def test_address_of_a_pending_order_and_of_the_account(engine: Engine) -> None:
    act(engine, "modify_pending_order_address", IVAN, order_id="#W8770097", **ADDRESS)
    assert _order(engine, "#W8770097").address == ADDRESS
    refused(engine, "modify_pending_order_address", IVAN, "'delivered'", order_id="#W6893533",
            **ADDRESS)  # fmt: skip
    act(engine, "modify_user_address", IVAN, **ADDRESS)
    with Session(engine) as session:
        customer = session.get(Customer, IVAN)
        assert customer is not None and customer.address == ADDRESS and customer.zip_code == "73301"
    assert _order(engine, "#W6893533").address != ADDRESS  # orders keep their own


def test_modify_items_once_with_the_price_difference(engine: Engine) -> None:
    out = act(engine, "modify_pending_order_items", IVAN, order_id="#W8770097",
              item_ids=["4274709903"], new_item_ids=["1793929609"],
              payment_method_id="paypal_6151711")  # fmt: skip
    assert out["status"] == "pending (item modified)" and out["price_difference"] == "-$29.95"
    assert _payments(engine, "#W8770097")[-1] == ("refund", 2995, "paypal_6151711")
    order = _order(engine, "#W8770097")
    assert order.total_cents == 51434
    with Session(engine) as session:
        line = session.exec(select(OrderItem).where(OrderItem.order_id == "#W8770097")).one()
        assert (line.item_id, line.price_cents, line.options["backrest height"]) == (
            "1793929609", 51434, "high-back")  # fmt: skip
    # Once per order; a modified order may still change its address, not be cancelled.
    refused(engine, "modify_pending_order_items", IVAN, "pending \\(item modified\\)",
            order_id="#W8770097", item_ids=["1793929609"], new_item_ids=["8426249116"],
            payment_method_id="paypal_6151711")  # fmt: skip
    act(engine, "modify_pending_order_address", IVAN, order_id="#W8770097", **ADDRESS)
    refused(engine, "cancel_pending_order", IVAN, "item modified", order_id="#W8770097",
            reason="no longer needed")  # fmt: skip


@pytest.mark.parametrize(
    ("new_item", "match"),
    [
        ("4064702754", "different product"),  # a kettle for a chair
        ("4274709903", "same options"),
        ("0000000000", "does not exist"),
    ],
)
def test_modify_items_refusals(engine: Engine, new_item: str, match: str) -> None:
    refused(engine, "modify_pending_order_items", IVAN, match, order_id="#W8770097",
            item_ids=["4274709903"], new_item_ids=[new_item],
            payment_method_id="paypal_6151711")  # fmt: skip


def test_modify_items_other_refusals(engine: Engine) -> None:
    common = {"order_id": "#W8770097", "payment_method_id": "paypal_6151711"}
    refused(engine, "modify_pending_order_items", IVAN, "not in order", item_ids=["1"],
            new_item_ids=["1793929609"], **common)  # fmt: skip
    refused(engine, "modify_pending_order_items", IVAN, "exactly one new item",
            item_ids=["4274709903"], new_item_ids=[], **common)  # fmt: skip
    refused(engine, "modify_pending_order_items", IVAN, "not found on the account",
            order_id="#W8770097", item_ids=["4274709903"], new_item_ids=["1793929609"],
            payment_method_id="gift_card_4374071")  # Anya's card  # fmt: skip


def test_a_gift_card_must_cover_a_payment(engine: Engine) -> None:
    card = _gift_card(engine, IVAN, 1000)
    refused(engine, "modify_pending_order_payment", IVAN, "not enough", order_id="#W8770097",
            payment_method_id=card)  # fmt: skip
    # An exchange that costs more than the card holds: refused; within it: recorded.
    refused(engine, "exchange_delivered_order_items", AARAV, "not enough",
            order_id="#W3470184", item_ids=["2366567022"], new_item_ids=["4579334072"],
            payment_method_id=_gift_card(engine, AARAV, 50))  # fmt: skip
    out = act(engine, "exchange_delivered_order_items", AARAV, order_id="#W3470184",
              item_ids=["2366567022"], new_item_ids=["4579334072"],
              payment_method_id="gift_card_7245904")  # fmt: skip
    assert out["status"] == "exchange requested" and out["price_difference"] == "+$0.81"
    order = _order(engine, "#W3470184")
    assert (order.exchange_items, order.exchange_new_items) == (["2366567022"], ["4579334072"])
    assert order.exchange_price_difference_cents == 81
    refused(engine, "exchange_delivered_order_items", AARAV, "'exchange requested'",
            order_id="#W3470184", item_ids=["2366567022"], new_item_ids=["3453331371"],
            payment_method_id="gift_card_7245904")  # once per order  # fmt: skip


def test_exchange_refuses_an_unavailable_item(engine: Engine) -> None:
    refused(engine, "exchange_delivered_order_items", AARAV, "not available",
            order_id="#W3470184", item_ids=["2366567022"], new_item_ids=["1434748144"],
            payment_method_id="gift_card_7245904")  # fmt: skip


def test_change_the_payment_of_a_pending_order(engine: Engine) -> None:
    out = act(engine, "modify_pending_order_payment", ANYA, order_id="#W6436609",
              payment_method_id="credit_card_8955149")  # fmt: skip
    assert out["refunded_to"] == "gift_card_4374071"
    assert _payments(engine, "#W6436609")[-2:] == [
        ("payment", 300533, "credit_card_8955149"), ("refund", 300533, "gift_card_4374071")]  # fmt: skip
    assert _balance(engine, "gift_card_4374071") == 5100 + 300533
    refused(engine, "modify_pending_order_payment", ANYA, "already the order's",
            order_id="#W6436609", payment_method_id="credit_card_8955149")  # fmt: skip
    refused(engine, "modify_pending_order_payment", IVAN, "already the order's",
            order_id="#W8770097", payment_method_id="paypal_6151711")  # fmt: skip


def test_a_cancel_after_a_payment_change_refunds_what_each_method_paid_net(
    engine: Engine,
) -> None:
    """Gift card -> card, then cancel: the card gets its $3,005.33 back, the gift card nothing
    more (it was refunded when the payment moved). Refunding every payment entry paid the
    customer $3,005.33 twice and doubled the gift card."""
    act(engine, "modify_pending_order_payment", ANYA, order_id="#W6436609",
        payment_method_id="credit_card_8955149")  # fmt: skip
    out = act(engine, "cancel_pending_order", ANYA, order_id="#W6436609",
              reason="no longer needed")  # fmt: skip
    assert [(r["amount"], r["payment_method_id"]) for r in out["refunds"]] == [
        ("$3,005.33", "credit_card_8955149")]  # fmt: skip
    assert _balance(engine, "gift_card_4374071") == 5100 + 300533  # moved once, not twice
    paid = sum(c if t == "payment" else -c for t, c, _ in _payments(engine, "#W6436609"))
    assert paid == 0  # a cancelled order keeps nothing and gives back nothing extra


def test_moving_the_payment_twice_moves_the_money_twice(engine: Engine) -> None:
    act(engine, "modify_pending_order_payment", ANYA, order_id="#W6436609",
        payment_method_id="credit_card_8955149")  # fmt: skip
    out = act(engine, "modify_pending_order_payment", ANYA, order_id="#W6436609",
              payment_method_id="gift_card_4374071")  # fmt: skip
    assert (out["amount"], out["refunded_to"]) == ("$3,005.33", "credit_card_8955149")
    assert _balance(engine, "gift_card_4374071") == 5100  # back where it started
    act(engine, "cancel_pending_order", ANYA, order_id="#W6436609", reason="no longer needed")
    assert _balance(engine, "gift_card_4374071") == 5100 + 300533
    assert _payments(engine, "#W6436609")[-1] == ("refund", 300533, "gift_card_4374071")


def test_a_price_difference_is_refunded_only_to_a_method_that_paid_it(engine: Engine) -> None:
    card = _gift_card(engine, IVAN, 0)  # paid nothing for #W8770097 (PayPal did)
    refused(engine, "modify_pending_order_items", IVAN, "only go back to a method that paid",
            order_id="#W8770097", item_ids=["4274709903"], new_item_ids=["1793929609"],
            payment_method_id=card)  # fmt: skip
    assert _balance(engine, card) == 0


def test_return_refunds_to_the_original_method_or_a_gift_card(engine: Engine) -> None:
    refused(engine, "return_delivered_order_items", IVAN, "'pending'", order_id="#W8770097",
            item_ids=["4274709903"], payment_method_id="paypal_6151711")  # fmt: skip
    card = _gift_card(engine, IVAN, 0)
    out = act(engine, "return_delivered_order_items", IVAN, order_id="#W6893533",
              item_ids=["5206946487"], payment_method_id=card)  # fmt: skip
    assert out["status"] == "return requested" and out["refund_to"] == card
    order = _order(engine, "#W6893533")
    assert (order.return_items, order.return_payment_method_id) == (["5206946487"], card)
    # An item ordered twice may be returned twice, not three times.
    refused(engine, "return_delivered_order_items", AARAV, "not in order", order_id="#W4316152",
            item_ids=["7292993796"] * 3, payment_method_id="gift_card_7245904")  # fmt: skip
    act(engine, "return_delivered_order_items", AARAV, order_id="#W4316152",
        item_ids=["7292993796"] * 2, payment_method_id="gift_card_7245904")  # fmt: skip


def test_a_refund_may_not_go_to_a_card_that_did_not_pay(engine: Engine) -> None:
    with transaction(engine) as session:
        session.add(PaymentMethod(id="credit_card_x", customer_id=IVAN, source="credit_card",
                                  brand="visa", last_four="1111"))  # fmt: skip
    refused(
        engine,
        "return_delivered_order_items",
        IVAN,
        "original payment method",
        order_id="#W6893533",
        item_ids=["5206946487"],
        payment_method_id="credit_card_x",
    )


def test_preview_checks_every_rule_and_writes_nothing(engine: Engine) -> None:
    before = _snapshot(engine)
    with transaction(engine) as session:
        ctx = ToolContext(session=session, settings=Settings(), conversation_id="",
                          customer_id=ANYA, orders=BuiltinOrders(session))  # fmt: skip
        out = default_registry().preview("cancel_pending_order", {"order_id": "#W6436609",
                                         "reason": "no longer needed"}, ctx)  # fmt: skip
        assert isinstance(out, Preview) and '"status":"cancelled"' in out.content
        refused = default_registry().preview("cancel_pending_order", {"order_id": "#W6310710",
                                             "reason": "no longer needed"}, ctx)  # fmt: skip
        assert isinstance(refused, ToolOutcome) and refused.is_error
    assert _snapshot(engine) == before
