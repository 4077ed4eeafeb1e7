"""Tools the model may call, each declared in one place (see tools.registry.tool), and the
registry that derives their schemas, labels, the prompt's lines about them and the desk's
change form, and runs them.

Adding a tool: write its function in a module here with `@tool(label=..., kind=...,
guidance=...)` (a change: `kind=Kind.CHANGE, summarize=...`), and list it in `TOOLS`. Nothing
else changes. (For the offline model to plan it too, give it an entry in
agent/models/offline_plans.py.)
"""

from functools import cache

from tools.catalog import product_info
from tools.customer_history import customer_history
from tools.handoff import escalate_to_human
from tools.knowledge import search_knowledge_base
from tools.order_actions import ORDER_ACTIONS
from tools.orders import list_orders, order_status, payment_methods
from tools.registry import Kind, Tool, ToolRegistry, tool
from tools.verify import verify_customer

# In this order: the request's tool list (a stable, cacheable prefix), the system prompt's
# lines about them, the desk's list of changes, and the order in which the offline model
# plans its calls (exclusive tools first).
TOOLS: tuple[Tool, ...] = (
    verify_customer,
    order_status,
    list_orders,
    payment_methods,
    *ORDER_ACTIONS,
    search_knowledge_base,
    product_info,
    customer_history,
    escalate_to_human,
)


@cache
def default_registry() -> ToolRegistry:
    """The shipped tools; built once (their schemas are the request's cacheable prefix)."""
    return ToolRegistry(TOOLS)


def describe(name: str, args: dict) -> str:  # type: ignore[type-arg]
    """What a call of `name` looks like to the customer ("Looking up order #W2611340")."""
    return default_registry().label(name, args)


__all__ = ["TOOLS", "Kind", "Tool", "ToolRegistry", "default_registry", "describe", "tool"]
