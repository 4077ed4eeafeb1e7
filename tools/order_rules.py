"""The rules every order change checks, and the store writes they make: one place, shared by
the seven changes in tools/order_actions.py.

Each takes the caller's session (the change runs in the caller's transaction) and the verified
customer's id, never one from an argument; a refusal raises ActionRefused (a ToolError: the
model gets the reason, and the change's savepoint is rolled back, so nothing is written).
Money is integer cents; the order's and the gift card's rows are locked for the change.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlmodel import Session, col, select

from agent.store.addresses import BadValue, checked_address
from agent.store.orders import format_cents, method_label, net_by_method, normalize_order_id
from agent.store.tables import (
    Order,
    OrderItem,
    OrderPayment,
    PaymentMethod,
    ProductVariant,
)
from tools.tool_context import ToolError

CANCEL_REASONS = ("no longer needed", "ordered by mistake")
PENDING = "pending"
ITEMS_MODIFIED = "pending (item modified)"


class ActionRefused(ToolError):
    """The store's policy does not allow this change; nothing was changed."""


def locked_order(session: Session, customer_id: str, order_id: str) -> Order:
    """The customer's own order, locked; another customer's order reads as missing."""
    order = session.exec(
        select(Order)
        .where(Order.id == normalize_order_id(order_id), Order.customer_id == customer_id)
        .with_for_update()
    ).first()
    if order is None:
        raise ActionRefused(f"Order {normalize_order_id(order_id)} was not found.")
    return order


def locked_method(session: Session, customer_id: str, payment_method_id: str) -> PaymentMethod:
    method = session.exec(
        select(PaymentMethod)
        .where(PaymentMethod.id == payment_method_id, PaymentMethod.customer_id == customer_id)
        .with_for_update()
    ).first()
    if method is None:
        raise ActionRefused(f"Payment method {payment_method_id} was not found on the account.")
    return method


def history(session: Session, order_id: str) -> list[OrderPayment]:
    return list(
        session.exec(
            select(OrderPayment)
            .where(OrderPayment.order_id == order_id)
            .order_by(col(OrderPayment.position))
        ).all()
    )


def net_paid(session: Session, order_id: str) -> dict[str, int]:
    return net_by_method(history(session, order_id))


def record_entry(session: Session, order: Order, kind: str, cents: int, method_id: str) -> None:
    position = len(history(session, order.id))
    session.add(OrderPayment(order_id=order.id, position=position, transaction_type=kind,
                             amount_cents=cents, payment_method_id=method_id))  # fmt: skip


def credit_gift_card(method: PaymentMethod, cents: int) -> None:
    """Move a gift card's balance (refunds to other methods take days, outside the store)."""
    if method.source == "gift_card":
        method.balance_cents = (method.balance_cents or 0) + cents


def chosen_lines(session: Session, order: Order, item_ids: list[str]) -> list[OrderItem]:
    """The order's lines for `item_ids` (an item ordered twice may be named twice)."""
    if not item_ids:
        raise ActionRefused("Name at least one item of the order.")
    lines = list(
        session.exec(
            select(OrderItem)
            .where(OrderItem.order_id == order.id)
            .order_by(col(OrderItem.position))
        ).all()
    )
    wanted = Counter(item_ids)
    have = Counter(line.item_id for line in lines)
    for item_id, count in wanted.items():
        if have[item_id] < count:
            raise ActionRefused(f"Item {item_id} is not in order {order.id}.")
    chosen: list[OrderItem] = []
    for item_id in item_ids:
        chosen.append(next(li for li in lines if li.item_id == item_id and li not in chosen))
    return chosen


def new_variants(
    session: Session, lines: list[OrderItem], new_item_ids: list[str]
) -> list[ProductVariant]:
    """Each new item: an available variant of the same product, with different options."""
    if len(new_item_ids) != len(lines):
        raise ActionRefused("Give exactly one new item for each item to change.")
    variants = []
    for line, new_id in zip(lines, new_item_ids, strict=True):
        variant = session.get(ProductVariant, new_id)
        if variant is None:
            raise ActionRefused(f"Item {new_id} does not exist.")
        if variant.product_id != line.product_id:
            raise ActionRefused(
                f"Item {new_id} is a different product from item {line.item_id}; only other "
                "options of the same product are possible."
            )
        if new_id == line.item_id:
            raise ActionRefused(f"Item {new_id} has the same options as the item it replaces.")
        if not variant.available:
            raise ActionRefused(f"Item {new_id} is not available.")
        variants.append(variant)
    return variants


def swap(
    session: Session,
    customer_id: str,
    order: Order,
    item_ids: list[str],
    new_item_ids: list[str],
    payment_method_id: str,
) -> tuple[list[OrderItem], list[ProductVariant], PaymentMethod, int]:
    """Items of `order` for other options of the same products (a modification or an
    exchange): (the lines, their new variants, the method that settles the difference, the
    difference in cents: positive the customer pays, negative they get back)."""
    lines = chosen_lines(session, order, item_ids)
    variants = new_variants(session, lines, new_item_ids)
    method = locked_method(session, customer_id, payment_method_id)
    difference = sum(v.price_cents for v in variants) - sum(li.price_cents for li in lines)
    check_covers(method, difference)
    return lines, variants, method, difference


def check_refundable(session: Session, order: Order, method: PaymentMethod, cents: int) -> None:
    """A refund goes back to a method that paid at least as much for the order, net of what it
    got back already: money never leaves the shop through a method that did not bring it."""
    paid = net_paid(session, order.id).get(method.id, 0)
    if cents > paid:
        raise ActionRefused(
            f"A refund of {format_cents(cents)} for order {order.id} can only go back to a "
            f"method that paid that much for it; {method_label(method)} paid "
            f"{format_cents(max(paid, 0))}."
        )


def check_covers(method: PaymentMethod, cents: int) -> None:
    if method.source == "gift_card" and cents > 0 and (method.balance_cents or 0) < cents:
        raise ActionRefused(
            f"Gift card {method.id} has {format_cents(method.balance_cents or 0)}, not enough "
            f"for {format_cents(cents)}."
        )


def valid_address(**fields: str) -> dict[str, str]:
    try:
        return checked_address(fields)
    except BadValue as exc:
        raise ActionRefused(str(exc)) from exc


def same_address(stored: dict[str, Any], address: dict[str, str]) -> bool:
    return all(str(stored.get(k) or "") == v for k, v in address.items())


def check_status(order: Order, *allowed: str) -> None:
    if order.status not in allowed:
        what = " or ".join(f"'{a}'" for a in allowed)
        raise ActionRefused(f"Order {order.id} is '{order.status}'; this needs a {what} order.")


def outcome(order: Order, **extra: Any) -> dict[str, Any]:
    return {"order_id": order.id, "status": order.status, **extra}
