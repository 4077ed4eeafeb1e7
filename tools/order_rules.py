"""The rules every order change checks, above the order system: one place, shared by the
seven changes in tools/order_actions.py, whichever system holds the orders.

Each reads through the port (ctx.orders, tools/order_system.py) for the verified customer
only: an order or a payment method whose owner, as the system itself answers, is someone
else reads as missing. A refusal raises ActionRefused (a ToolError: the model gets the reason,
nothing is sent to the order system). Money is integer cents.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from agent.store.addresses import BadValue, checked_address
from agent.store.orders import format_cents, normalize_order_id
from tools import orders
from tools.order_system import (
    ChangeDone,
    CustomerRecord,
    Line,
    Method,
    OrderRecord,
    Variant,
)
from tools.tool_context import ToolContext, ToolError

log = logging.getLogger(__name__)

CANCEL_REASONS = ("no longer needed", "ordered by mistake")
PENDING = "pending"
ITEMS_MODIFIED = "pending (item modified)"


class ActionRefused(ToolError):
    """The store's policy does not allow this change; nothing was changed."""


def own_order(ctx: ToolContext, order_id: str) -> OrderRecord:
    """The verified customer's own order, held for the change (tools/orders.py decides whose
    it is); another customer's reads as missing, whatever the system answered."""
    order = orders.own_order(ctx, order_id, lock=True)
    if order is None:
        raise ActionRefused(f"Order {normalize_order_id(order_id)} was not found.")
    return order


def own_customer(ctx: ToolContext) -> CustomerRecord:
    """The verified customer, held for the change."""
    return orders.verified_customer(ctx, lock=True)


def own_method(customer: CustomerRecord, payment_method_id: str) -> Method:
    method = customer.method(payment_method_id)
    if method is None:
        raise ActionRefused(f"Payment method {payment_method_id} was not found on the account.")
    return method


def chosen_lines(order: OrderRecord, item_ids: list[str]) -> list[Line]:
    """The order's lines for `item_ids` (an item ordered twice may be named twice)."""
    if not item_ids:
        raise ActionRefused("Name at least one item of the order.")
    wanted = Counter(item_ids)
    have = Counter(line.item_id for line in order.items)
    for item_id, count in wanted.items():
        if have[item_id] < count:
            raise ActionRefused(f"Item {item_id} is not in order {order.id}.")
    chosen: list[Line] = []
    taken: list[int] = []
    for item_id in item_ids:
        at = next(i for i, li in enumerate(order.items) if li.item_id == item_id and i not in taken)
        taken.append(at)
        chosen.append(order.items[at])
    return chosen


def new_variants(ctx: ToolContext, lines: list[Line], new_item_ids: list[str]) -> list[Variant]:
    """Each new item: an available variant of the same product, with different options."""
    if len(new_item_ids) != len(lines):
        raise ActionRefused("Give exactly one new item for each item to change.")
    products: dict[str, Any] = {}
    variants = []
    for line, new_id in zip(lines, new_item_ids, strict=True):
        if line.product_id not in products:
            products[line.product_id] = ctx.orders.product(line.product_id)
        product = products[line.product_id]
        variant = product.variant(new_id) if product is not None else None
        if variant is None:
            raise ActionRefused(
                f"Item {new_id} is a different product from item {line.item_id}, or does not "
                "exist; only other options of the same product are possible."
            )
        if new_id == line.item_id:
            raise ActionRefused(f"Item {new_id} has the same options as the item it replaces.")
        if not variant.available:
            raise ActionRefused(f"Item {new_id} is not available.")
        variants.append(variant)
    return variants


def swap(
    ctx: ToolContext,
    customer: CustomerRecord,
    order: OrderRecord,
    item_ids: list[str],
    new_item_ids: list[str],
    payment_method_id: str,
) -> tuple[list[Line], list[Variant], Method, int]:
    """Items of `order` for other options of the same products (a modification or an
    exchange): (the lines, their new variants, the method that settles the difference, the
    difference in cents: positive the customer pays, negative they get back)."""
    lines = chosen_lines(order, item_ids)
    variants = new_variants(ctx, lines, new_item_ids)
    method = own_method(customer, payment_method_id)
    difference = sum(v.price_cents for v in variants) - sum(li.price_cents for li in lines)
    check_covers(method, difference)
    return lines, variants, method, difference


def check_refundable(order: OrderRecord, method: Method, cents: int) -> None:
    """A refund goes back to a method that paid at least as much for the order, net of what it
    got back already: money never leaves the shop through a method that did not bring it."""
    paid = order.net_paid().get(method.id, 0)
    if cents > paid:
        raise ActionRefused(
            f"A refund of {format_cents(cents)} for order {order.id} can only go back to a "
            f"method that paid that much for it; {method.label()} paid "
            f"{format_cents(max(paid, 0))}."
        )


def check_covers(method: Method, cents: int) -> None:
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


def check_status(order: OrderRecord, *allowed: str) -> None:
    if order.status not in allowed:
        what = " or ".join(f"'{a}'" for a in allowed)
        raise ActionRefused(f"Order {order.id} is '{order.status}'; this needs a {what} order.")


def outcome(order: OrderRecord, status: str, **extra: Any) -> dict[str, Any]:
    return {"order_id": order.id, "status": status, **extra}


def carry_out(ctx: ToolContext, name: str, arguments: dict[str, Any]) -> ChangeDone | None:
    """Carry a checked change out in the order system: None in a dry run (a proposal being
    checked), else what the system answered, kept for the action's record."""
    if ctx.dry_run:
        return None
    done = ctx.orders.change(name, arguments)
    ctx.receipts.append(done.reply)
    return done


def check_answer(
    ctx: ToolContext,
    done: ChangeDone | None,
    order: OrderRecord | None = None,
    *,
    status: str | None = None,
    net: dict[str, int] | None = None,
    address: dict[str, str] | None = None,
    items: list[str] | None = None,
) -> None:
    """Compare what the order system answered after a change with what the customer confirmed
    (the status, what each method paid net, the address, the items): a difference is not the
    customer's to find. The change happened, so it stays executed; the difference is noted
    with it and goes to staff (ctx.discrepancies)."""
    if done is None:
        return
    found: list[str] = []
    after = done.order
    if order is not None:
        if after is None:
            found.append("it did not answer with the order")
        else:
            if after.id != order.id or after.customer_id != order.customer_id:
                found.append(f"it answered with order {after.id} of another customer")
            if status is not None and after.status != status:
                found.append(f"status '{after.status}', expected '{status}'")
            if net is not None and _nonzero(after.net_paid()) != _nonzero(net):
                found.append(f"payments net {_cents(after.net_paid())}, expected {_cents(net)}")
            if address is not None and not same_address(after.address, address):
                found.append("the shipping address differs from the one confirmed")
            if items is not None and sorted(li.item_id for li in after.items) != sorted(items):
                found.append("the order's items differ from the ones confirmed")
    elif address is not None:
        customer = done.customer
        if customer is not None and not same_address(customer.address, address):
            found.append("the account's address differs from the one confirmed")
    if found:
        detail = "; ".join(found)
        log.warning("order system %s answered a change unlike what was confirmed: %s",
                    ctx.orders.name, detail)  # fmt: skip
        ctx.discrepancies.append(detail)


def _nonzero(net: dict[str, int]) -> dict[str, int]:
    return {m: c for m, c in net.items() if c}


def _cents(net: dict[str, int]) -> str:
    return ", ".join(f"{m} {format_cents(c)}" for m, c in _nonzero(net).items()) or "nothing"
