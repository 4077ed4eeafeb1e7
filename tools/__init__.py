"""Tools the model may call, and the registry that derives their schemas and runs them."""

from tools.catalog import product_info
from tools.handoff import escalate_to_human
from tools.history import customer_history
from tools.knowledge import search_knowledge_base
from tools.orders import list_orders, order_status
from tools.registry import Tool, ToolRegistry, tool
from tools.verify import verify_customer


def default_registry() -> ToolRegistry:
    return ToolRegistry(
        tool(fn)
        for fn in (
            verify_customer,
            order_status,
            list_orders,
            search_knowledge_base,
            product_info,
            customer_history,
            escalate_to_human,
        )
    )


__all__ = ["Tool", "ToolRegistry", "default_registry", "tool"]
