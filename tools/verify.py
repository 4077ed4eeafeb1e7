"""Identity verification: binds a conversation to the customer whose facts on file match."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from agent.store.conversations import get_conversation
from agent.store.orders import find_customer_by_email, order_owner
from tools.intent import Intent
from tools.registry import tool
from tools.tool_context import ToolContext, ToolError


def _plan(intent: Intent, planned: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    if not (intent.email and (intent.order_ids or intent.zip_code)):
        return []
    facts: dict[str, Any] = {"email": intent.email}
    if intent.order_ids:
        facts["order_id"] = intent.order_ids[0]
    else:
        facts["zip_code"] = intent.zip_code
    return [facts]


def _render(data: Any) -> str:
    customer = data.get("customer") if isinstance(data, dict) else None
    return f"Thanks, {customer['name']}: you're verified." if customer else ""


@tool(label="Checking your details", plan=_plan, render=_render)
def verify_customer(
    ctx: ToolContext,
    email: Annotated[str, Field(description="Email address on the account", max_length=320)],
    order_id: Annotated[
        str | None, Field(description="One of the customer's order numbers", max_length=40)
    ] = None,
    zip_code: Annotated[
        str | None, Field(description="Zip code of the account's address", max_length=20)
    ] = None,
) -> dict[str, Any]:
    """Verify the customer's identity with two facts on file: the account email plus either
    one of their order numbers or their zip code. Required before sharing any order data."""
    conversation = get_conversation(session=ctx.session, conversation_id=ctx.conversation_id)
    if not (order_id or zip_code):
        raise ToolError("Verification needs the email plus an order number or the zip code.")
    customer = find_customer_by_email(session=ctx.session, email=email)
    matches = customer is not None and (
        (
            order_id is not None
            and order_owner(session=ctx.session, order_id=order_id) == customer.id
        )
        or (zip_code is not None and zip_code.strip() == customer.zip_code)
    )
    if ctx.customer_id is not None:
        if matches and customer is not None and customer.id == ctx.customer_id:
            return {"verified": True, "already_verified": True}
        raise ToolError(
            "This conversation is already verified for one customer; one customer per "
            "conversation. Other customers must start their own conversation."
        )
    limit = ctx.settings.max_failed_verifications
    if conversation.failed_verifications >= limit:
        raise ToolError(
            "Too many failed verification attempts in this conversation; no more are allowed. "
            "Offer to hand the conversation to a human agent."
        )
    if not matches or customer is None:
        conversation.failed_verifications += 1
        ctx.session.add(conversation)
        ctx.session.flush()
        left = limit - conversation.failed_verifications
        raise ToolError(
            f"Those details do not match our records. {left} attempt(s) left in this conversation."
        )
    conversation.customer_id = customer.id
    ctx.session.add(conversation)
    ctx.session.flush()
    ctx.customer_id = customer.id
    return {
        "verified": True,
        "customer": {
            "name": f"{customer.first_name} {customer.last_name}",
            "email": customer.email,
        },
    }
