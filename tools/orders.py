"""Order tools. The customer is always the conversation's verified one, never an argument."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from agent.store.orders import (
    OrderSummary,
    OrderView,
    PaymentMethodView,
    get_order,
    normalize_order_id,
)
from agent.store.orders import list_orders as list_customer_orders
from agent.store.orders import payment_methods as customer_payment_methods
from tools.intent import Intent
from tools.registry import tool
from tools.tool_context import ToolContext, ToolError


def _plan_status(intent: Intent, planned: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    if intent.wants_change:  # the change's own tool looks the order up
        return []
    return [{"order_id": order_id} for order_id in intent.order_ids]


def _render_order(data: Any) -> str:
    lines = [f"Order {data['order_id']} is **{data['status']}** (total {data['total']})."]
    lines.append("Items:")
    for item in data["items"]:
        options = ", ".join(f"{k}: {v}" for k, v in item.get("options", {}).items())
        lines.append(
            f"- {item['name']} ({options}) {item['price']}"
            if options
            else f"- {item['name']} {item['price']}"
        )
    tracking = [t for s in data.get("shipments", []) for t in s.get("tracking_ids", [])]
    if tracking:
        lines.append(f"Tracking number(s): {', '.join(tracking)}.")
    else:
        lines.append("It has not shipped yet, so there is no tracking number.")
    address = data.get("shipping_address") or {}
    if address:
        where = ", ".join(
            str(address[k])
            for k in ("address1", "address2", "city", "state", "zip")
            if address.get(k)
        )
        lines.append(f"Shipping to: {where}.")
    return "\n".join(lines)


@tool(
    label=lambda args: f"Looking up order {args.get('order_id', '')}".strip(),
    guidance="Use the tools for anything about the customer's orders; never guess order "
    "details. Only discuss the verified customer's own orders; one customer per conversation.",
    plan=_plan_status,
    render=_render_order,
)
def order_status(
    ctx: ToolContext,
    order_id: Annotated[str, Field(description="The order number, e.g. #W2611340", max_length=40)],
) -> OrderView:
    """Look up one of the verified customer's orders: status, items with prices, shipment
    tracking numbers and the shipping address. Only works after the customer is verified."""
    customer_id = ctx.require_customer()
    order = get_order(session=ctx.session, order_id=order_id, customer_id=customer_id)
    if order is None:
        # Same answer whether the order does not exist or belongs to someone else.
        raise ToolError(f"Order {normalize_order_id(order_id)} was not found for this customer.")
    return order


def _plan_list(intent: Intent, planned: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    wanted = intent.about_orders and not intent.how_to and not intent.order_ids
    return [{"limit": 5}] if wanted and not planned else []


def _render_orders(data: Any) -> str:
    if not data:
        return "I found no orders on your account."
    lines = ["Your most recent orders:"]
    lines += [
        f"- {o['order_id']}: {o['status']}, {o['item_count']} item(s), {o['total']}" for o in data
    ]
    return "\n".join(lines)


@tool(label="Looking up your recent orders", plan=_plan_list, render=_render_orders)
def list_orders(
    ctx: ToolContext,
    limit: Annotated[int, Field(description="How many orders, newest first", ge=1, le=50)] = 10,
) -> list[OrderSummary]:
    """List the verified customer's most recent orders with their status and total.
    Use it when the customer does not know their order number."""
    customer_id = ctx.require_customer()
    return list_customer_orders(session=ctx.session, customer_id=customer_id, limit=limit)


def _render_methods(data: Any) -> str:
    if not data:
        return "I found no payment methods on your account."
    lines = ["Your payment methods:"]
    for m in data:
        if m["kind"] == "credit_card":
            lines.append(f"- {(m.get('brand') or 'card').title()} ending in {m['last_four']}")
        elif m["kind"] == "gift_card":
            lines.append(f"- Gift card, balance {m['balance']}")
        else:
            lines.append("- PayPal")
    return "\n".join(lines)


@tool(
    label="Checking your payment methods",
    guidance="payment_methods lists the verified customer's payment methods (card brand and "
    "last four digits only, gift-card balances); order_status shows an order's payments and "
    "refunds.",
    render=_render_methods,
)
def payment_methods(ctx: ToolContext) -> list[PaymentMethodView]:
    """The verified customer's payment methods: credit cards (brand and last four digits),
    PayPal, and gift cards with their balance. Needed to say where a refund goes or which
    method could pay a price difference."""
    return customer_payment_methods(session=ctx.session, customer_id=ctx.require_customer())
