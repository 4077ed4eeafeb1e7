"""Order tools. The customer is always the conversation's verified one, never an argument."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from agent.store.orders import (
    OrderItemView,
    OrderSummary,
    OrderView,
    PaymentMethodView,
    PaymentView,
    ShipmentView,
    format_cents,
    normalize_order_id,
)
from tools.order_system import CustomerRecord, Method, OrderRecord
from tools.registry import tool
from tools.tool_context import ToolContext, ToolError


def order_view(order: OrderRecord) -> OrderView:
    """What a customer may see of one of their orders."""
    return OrderView(
        order_id=order.id,
        status=order.status,
        items=[
            OrderItemView(
                name=i.name,
                item_id=i.item_id,
                price=format_cents(i.price_cents),
                options=i.options,
                product_id=i.product_id,
            )
            for i in order.items
        ],
        shipments=[
            ShipmentView(tracking_ids=f.tracking_ids, item_ids=f.item_ids)
            for f in order.fulfillments
        ],
        shipping_address=order.address,
        total=format_cents(order.total),
        payments=[
            PaymentView(
                transaction_type=p.kind, amount=format_cents(p.cents), payment_method_id=p.method_id
            )
            for p in order.payments
        ],
    )


def summary_of(order: OrderRecord) -> OrderSummary:
    return OrderSummary(order_id=order.id, status=order.status, item_count=len(order.items),
                        total=format_cents(order.total))  # fmt: skip


def method_view(method: Method) -> PaymentMethodView:
    """Never more than a card's brand and last four digits; a gift card's balance."""
    return PaymentMethodView(
        payment_method_id=method.id,
        kind=method.source,
        brand=method.brand,
        last_four=method.last_four,
        balance=format_cents(method.balance_cents) if method.balance_cents is not None else None,
    )


def verified_customer(ctx: ToolContext, *, lock: bool = False) -> CustomerRecord:
    """The conversation's verified customer, as the order system has them now (`lock`: held
    for a change being checked, in the built-in store)."""
    customer_id = ctx.require_customer()
    customer = ctx.orders.customer(customer_id, lock=lock)
    if customer is None or customer.id != customer_id:
        raise ToolError("The customer's account was not found in the order system.")
    return customer


def own_order(ctx: ToolContext, order_id: str, *, lock: bool = False) -> OrderRecord | None:
    """One of the verified customer's orders; None for another's (the owner is read from the
    order system's own answer) or for one that does not exist. `lock` as above."""
    customer_id = ctx.require_customer()
    order = ctx.orders.order(normalize_order_id(order_id), lock=lock)
    return order if order is not None and order.customer_id == customer_id else None


@tool(
    reads_orders=True,
    label=lambda args: f"Looking up order {args.get('order_id', '')}".strip(),
    guidance="Use the tools for anything about the customer's orders; never guess order "
    "details. Only discuss the verified customer's own orders; one customer per conversation.",
)
def order_status(
    ctx: ToolContext,
    order_id: Annotated[str, Field(description="The order number, e.g. #W2611340", max_length=40)],
) -> OrderView:
    """Look up one of the verified customer's orders: status, items with prices, shipment
    tracking numbers and the shipping address. Only works after the customer is verified."""
    order = own_order(ctx, order_id)
    if order is None:
        # Same answer whether the order does not exist or belongs to someone else.
        raise ToolError(f"Order {normalize_order_id(order_id)} was not found for this customer.")
    return order_view(order)


@tool(label="Looking up your recent orders", reads_orders=True)
def list_orders(
    ctx: ToolContext,
    limit: Annotated[int, Field(description="How many orders, newest first", ge=1, le=50)] = 10,
) -> list[OrderSummary]:
    """List the verified customer's most recent orders with their status and total.
    Use it when the customer does not know their order number."""
    customer = verified_customer(ctx)
    orders = ctx.orders.orders_of(customer, limit)
    return [summary_of(o) for o in orders if o.customer_id == customer.id]


@tool(
    reads_orders=True,
    label="Checking your payment methods",
    guidance="payment_methods lists the verified customer's payment methods (card brand and "
    "last four digits only, gift-card balances); order_status shows an order's payments and "
    "refunds.",
)
def payment_methods(ctx: ToolContext) -> list[PaymentMethodView]:
    """The verified customer's payment methods: credit cards (brand and last four digits),
    PayPal, and gift cards with their balance. Needed to say where a refund goes or which
    method could pay a price difference."""
    return [method_view(m) for m in verified_customer(ctx).methods]
