"""What a tool call looks like to a customer ("Looking up order #W2611340")."""

from __future__ import annotations

from typing import Any


def describe(name: str, args: dict[str, Any]) -> str:
    if name == "order_status":
        return f"Looking up order {args.get('order_id', '')}".strip()
    if name == "list_orders":
        return "Looking up your recent orders"
    if name == "verify_customer":
        return "Checking your details"
    if name == "search_knowledge_base":
        return "Searching the help centre"
    if name == "customer_history":
        return "Looking at your earlier contacts"
    if name == "product_info":
        return "Checking the catalog"
    if name == "escalate_to_human":
        return "Handing over to a person"
    return f"Using {name}"
