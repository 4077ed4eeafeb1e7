"""Order tools. The customer is always the conversation's verified one, never an argument."""

from __future__ import annotations

from typing import Annotated

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
from tools.registry import tool
from tools.tool_context import ToolContext, ToolError


@tool(
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
    customer_id = ctx.require_customer()
    order = get_order(session=ctx.session, order_id=order_id, customer_id=customer_id)
    if order is None:
        # Same answer whether the order does not exist or belongs to someone else.
        raise ToolError(f"Order {normalize_order_id(order_id)} was not found for this customer.")
    return order


@tool(label="Looking up your recent orders")
def list_orders(
    ctx: ToolContext,
    limit: Annotated[int, Field(description="How many orders, newest first", ge=1, le=50)] = 10,
) -> list[OrderSummary]:
    """List the verified customer's most recent orders with their status and total.
    Use it when the customer does not know their order number."""
    customer_id = ctx.require_customer()
    return list_customer_orders(session=ctx.session, customer_id=customer_id, limit=limit)


@tool(
    label="Checking your payment methods",
    guidance="payment_methods lists the verified customer's payment methods (card brand and "
    "last four digits only, gift-card balances); order_status shows an order's payments and "
    "refunds.",
)
def payment_methods(ctx: ToolContext) -> list[PaymentMethodView]:
    """The verified customer's payment methods: credit cards (brand and last four digits),
    PayPal, and gift cards with their balance. Needed to say where a refund goes or which
    method could pay a price difference."""
    return customer_payment_methods(session=ctx.session, customer_id=ctx.require_customer())
