"""The order actions of the store's policy (../shared/data/retail/policy.md), every rule in code.

Named and shaped as the τ²-bench retail domain's tools, so a harness written for that domain
can drive them. Each takes the verified customer's id from the caller (never from an
argument), runs in the caller's transaction with the order's row locked, changes nothing when
a rule refuses it (ActionRefused, with a reason the model can explain), and keeps money in
integer cents. (A dry run of an action: tools.registry.ToolRegistry.preview.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlmodel import Session, col, select

from agent.errors import SupportbotError
from agent.store.addresses import BadValue, checked_address
from agent.store.orders import format_cents, method_label, net_by_method, normalize_order_id
from agent.store.tables import (
    Customer,
    Order,
    OrderItem,
    OrderPayment,
    PaymentMethod,
    ProductVariant,
)

CANCEL_REASONS = ("no longer needed", "ordered by mistake")
PENDING = "pending"
ITEMS_MODIFIED = "pending (item modified)"


class ActionRefused(SupportbotError):
    """The store's policy does not allow this action; nothing was changed."""

    code = "action_refused"


# -- what every action needs ------------------------------------------------------------------


def _order(session: Session, customer_id: str, order_id: str) -> Order:
    """The customer's own order, locked; another customer's order reads as missing."""
    order = session.exec(
        select(Order)
        .where(Order.id == normalize_order_id(order_id), Order.customer_id == customer_id)
        .with_for_update()
    ).first()
    if order is None:
        raise ActionRefused(f"Order {normalize_order_id(order_id)} was not found.")
    return order


def _method(session: Session, customer_id: str, payment_method_id: str) -> PaymentMethod:
    method = session.exec(
        select(PaymentMethod)
        .where(PaymentMethod.id == payment_method_id, PaymentMethod.customer_id == customer_id)
        .with_for_update()
    ).first()
    if method is None:
        raise ActionRefused(f"Payment method {payment_method_id} was not found on the account.")
    return method


def _payments(session: Session, order_id: str) -> list[OrderPayment]:
    return list(
        session.exec(
            select(OrderPayment)
            .where(OrderPayment.order_id == order_id)
            .order_by(col(OrderPayment.position))
        ).all()
    )


def _net(session: Session, order_id: str) -> dict[str, int]:
    return net_by_method(_payments(session, order_id))


def _record(session: Session, order: Order, kind: str, cents: int, method_id: str) -> None:
    position = len(_payments(session, order.id))
    session.add(OrderPayment(order_id=order.id, position=position, transaction_type=kind,
                             amount_cents=cents, payment_method_id=method_id))  # fmt: skip


def _credit(method: PaymentMethod, cents: int) -> None:
    """Move a gift card's balance (refunds to other methods take days, outside the store)."""
    if method.source == "gift_card":
        method.balance_cents = (method.balance_cents or 0) + cents


def _items(session: Session, order: Order, item_ids: list[str]) -> list[OrderItem]:
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


def _new_variants(
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


def _swap(
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
    lines = _items(session, order, item_ids)
    variants = _new_variants(session, lines, new_item_ids)
    method = _method(session, customer_id, payment_method_id)
    difference = sum(v.price_cents for v in variants) - sum(li.price_cents for li in lines)
    _covers(method, difference)
    return lines, variants, method, difference


def _refundable(session: Session, order: Order, method: PaymentMethod, cents: int) -> None:
    """A refund goes back to a method that paid at least as much for the order, net of what it
    got back already: money never leaves the shop through a method that did not bring it."""
    paid = _net(session, order.id).get(method.id, 0)
    if cents > paid:
        raise ActionRefused(
            f"A refund of {format_cents(cents)} for order {order.id} can only go back to a "
            f"method that paid that much for it; {method_label(method)} paid "
            f"{format_cents(max(paid, 0))}."
        )


def _covers(method: PaymentMethod, cents: int) -> None:
    if method.source == "gift_card" and cents > 0 and (method.balance_cents or 0) < cents:
        raise ActionRefused(
            f"Gift card {method.id} has {format_cents(method.balance_cents or 0)}, not enough "
            f"for {format_cents(cents)}."
        )


def _address(**fields: str) -> dict[str, str]:
    try:
        return checked_address(fields)
    except BadValue as exc:
        raise ActionRefused(str(exc)) from exc


def _same_address(stored: dict[str, Any], address: dict[str, str]) -> bool:
    return all(str(stored.get(k) or "") == v for k, v in address.items())


def _status(order: Order, *allowed: str) -> None:
    if order.status not in allowed:
        what = " or ".join(f"'{a}'" for a in allowed)
        raise ActionRefused(f"Order {order.id} is '{order.status}'; this needs a {what} order.")


def _outcome(order: Order, **extra: Any) -> dict[str, Any]:
    return {"order_id": order.id, "status": order.status, **extra}


# -- the actions --------------------------------------------------------------------------------


def cancel_pending_order(
    session: Session, customer_id: str, *, order_id: str, reason: str
) -> dict[str, Any]:
    order = _order(session, customer_id, order_id)
    _status(order, PENDING)
    if reason not in CANCEL_REASONS:
        raise ActionRefused(f"The reason must be {' or '.join(repr(r) for r in CANCEL_REASONS)}.")
    refunds = []
    # What each method paid net of earlier refunds (a changed payment method, a refunded
    # price difference): refunding every payment entry would pay some of them back twice.
    for method_id, cents in _net(session, order.id).items():
        if cents <= 0:
            continue
        method = session.get(PaymentMethod, method_id, with_for_update=True)
        _record(session, order, "refund", cents, method_id)
        if method is not None:
            _credit(method, cents)
            session.add(method)
        session.flush()
        refunds.append(
            {
                "amount": format_cents(cents),
                "payment_method_id": method_id,
                "to": method_label(method) if method else method_id,
            }
        )
    order.status, order.cancel_reason = "cancelled", reason
    session.add(order)
    session.flush()
    return _outcome(order, refunds=refunds)


def modify_pending_order_address(
    session: Session,
    customer_id: str,
    *,
    order_id: str,
    address1: str,
    address2: str,
    city: str,
    state: str,
    country: str,
    zip: str,
) -> dict[str, Any]:
    address = _address(address1=address1, address2=address2, city=city, state=state,
                       country=country, zip=zip)  # fmt: skip
    order = _order(session, customer_id, order_id)
    _status(order, PENDING, ITEMS_MODIFIED)
    previous = dict(order.address)
    if _same_address(previous, address):
        raise ActionRefused(f"Order {order.id} already ships to that address.")
    order.address = address
    session.add(order)
    session.flush()
    return _outcome(order, shipping_address=order.address, previous_address=previous)


def modify_pending_order_items(
    session: Session,
    customer_id: str,
    *,
    order_id: str,
    item_ids: list[str],
    new_item_ids: list[str],
    payment_method_id: str,
) -> dict[str, Any]:
    order = _order(session, customer_id, order_id)
    _status(order, PENDING)  # once: afterwards the order is 'pending (item modified)'
    lines, variants, method, difference = _swap(
        session, customer_id, order, item_ids, new_item_ids, payment_method_id
    )
    if difference < 0:
        _refundable(session, order, method, -difference)
    _record(session, order, "payment" if difference > 0 else "refund", abs(difference), method.id)
    _credit(method, -difference)
    changes = _changes(lines, variants)
    for line, variant in zip(lines, variants, strict=True):
        line.item_id, line.price_cents, line.options = (
            variant.item_id,
            variant.price_cents,
            dict(variant.options),
        )
        session.add(line)  # fmt: skip
    order.total_cents += difference
    order.status = ITEMS_MODIFIED
    session.add_all([order, method])
    session.flush()
    return _outcome(order, changes=changes, price_difference=_signed(difference),
                    payment_method_id=method.id, payment_method=method_label(method))  # fmt: skip


def _changes(lines: list[OrderItem], variants: list[ProductVariant]) -> list[dict[str, Any]]:
    return [{"name": line.name, "from": dict(line.options), "to": dict(variant.options),
             "new_price": format_cents(variant.price_cents)}
            for line, variant in zip(lines, variants, strict=True)]  # fmt: skip


def modify_pending_order_payment(
    session: Session, customer_id: str, *, order_id: str, payment_method_id: str
) -> dict[str, Any]:
    order = _order(session, customer_id, order_id)
    _status(order, PENDING, ITEMS_MODIFIED)
    holding = {m: cents for m, cents in _net(session, order.id).items() if cents > 0}
    if len(holding) != 1:
        raise ActionRefused(f"Order {order.id} is paid with {len(holding)} payment methods; only "
                            "an order paid with one method can change it.")  # fmt: skip
    ((old_id, amount),) = holding.items()
    if old_id == payment_method_id:
        raise ActionRefused("That is already the order's payment method.")
    new = _method(session, customer_id, payment_method_id)
    _covers(new, amount)
    _record(session, order, "payment", amount, new.id)
    session.flush()
    _record(session, order, "refund", amount, old_id)
    _credit(new, -amount)
    previous = session.get(PaymentMethod, old_id, with_for_update=True)
    if previous is not None:
        _credit(previous, amount)
        session.add(previous)
    session.add(new)
    session.flush()
    return _outcome(order, amount=format_cents(amount), payment_method_id=new.id,
                    payment_method=method_label(new), refunded_to=old_id,
                    refunded_to_method=method_label(previous) if previous else None)  # fmt: skip


def modify_user_address(
    session: Session,
    customer_id: str,
    *,
    address1: str,
    address2: str,
    city: str,
    state: str,
    country: str,
    zip: str,
) -> dict[str, Any]:
    address = _address(address1=address1, address2=address2, city=city, state=state,
                       country=country, zip=zip)  # fmt: skip
    customer = session.get(Customer, customer_id, with_for_update=True)
    if customer is None:
        raise ActionRefused("The customer was not found.")
    previous = dict(customer.address)
    if _same_address(previous, address):
        raise ActionRefused("That is already the account's address.")
    customer.address = address
    customer.zip_code = address["zip"]  # what verification compares (never blank)
    session.add(customer)
    session.flush()
    return {"customer_id": customer.id, "default_address": customer.address,
            "previous_address": previous}  # fmt: skip


def return_delivered_order_items(
    session: Session, customer_id: str, *, order_id: str, item_ids: list[str],
    payment_method_id: str,
) -> dict[str, Any]:  # fmt: skip
    order = _order(session, customer_id, order_id)
    _status(order, "delivered")
    lines = _items(session, order, item_ids)
    method = _method(session, customer_id, payment_method_id)
    original = {p.payment_method_id for p in _payments(session, order.id)
                if p.transaction_type == "payment"}  # fmt: skip
    if method.id not in original and method.source != "gift_card":
        raise ActionRefused("A refund goes to the order's original payment method or to one of "
                            "the customer's gift cards.")  # fmt: skip
    order.status = "return requested"
    order.return_items, order.return_payment_method_id = sorted(item_ids), method.id
    session.add(order)
    session.flush()
    return _outcome(
        order,
        return_items=order.return_items,
        refund_to=method.id,
        refund_method=method_label(method),
        refund=format_cents(sum(li.price_cents for li in lines)),
        items=[{"name": li.name, "options": dict(li.options)} for li in lines],
    )


def exchange_delivered_order_items(
    session: Session,
    customer_id: str,
    *,
    order_id: str,
    item_ids: list[str],
    new_item_ids: list[str],
    payment_method_id: str,
) -> dict[str, Any]:
    order = _order(session, customer_id, order_id)
    _status(order, "delivered")  # once: afterwards the order is 'exchange requested'
    lines, variants, method, difference = _swap(
        session, customer_id, order, item_ids, new_item_ids, payment_method_id
    )
    changes = _changes(lines, variants)
    order.status = "exchange requested"
    order.exchange_items, order.exchange_new_items = sorted(item_ids), sorted(new_item_ids)
    order.exchange_payment_method_id = method.id
    order.exchange_price_difference_cents = difference
    session.add(order)
    session.flush()
    return _outcome(order, changes=changes, price_difference=_signed(difference),
                    payment_method_id=method.id, payment_method=method_label(method))  # fmt: skip


def _signed(cents: int) -> str:
    """+$12.00 the customer pays, -$12.00 refunded to them."""
    return ("-" if cents < 0 else "+") + format_cents(abs(cents))


ACTIONS: dict[str, Callable[..., dict[str, Any]]] = {
    f.__name__: f
    for f in (
        cancel_pending_order,
        modify_pending_order_address,
        modify_pending_order_items,
        modify_pending_order_payment,
        modify_user_address,
        return_delivered_order_items,
        exchange_delivered_order_items,
    )
}
