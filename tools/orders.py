"""Order tools. The customer is always the conversation's verified one, never an argument."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from agent.store.orders import OrderSummary, OrderView, get_order, normalize_order_id
from agent.store.orders import list_orders as list_customer_orders
from tools.context import ToolContext, ToolError


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


def list_orders(
    ctx: ToolContext,
    limit: Annotated[int, Field(description="How many orders, newest first", ge=1, le=50)] = 10,
) -> list[OrderSummary]:
    """List the verified customer's most recent orders with their status and total.
    Use it when the customer does not know their order number."""
    customer_id = ctx.require_customer()
    return list_customer_orders(session=ctx.session, customer_id=customer_id, limit=limit)
