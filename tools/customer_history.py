"""The verified customer's own earlier contacts: tickets and previous conversations."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field
from sqlmodel import col, select

from agent.store.conversations import load_messages
from agent.store.tables import Conversation, Ticket
from tools.registry import tool
from tools.tool_context import ToolContext


def _gist(ctx: ToolContext, conversation: Conversation) -> str:
    """The stored summary, or the first request and the last answer, shortened."""
    if conversation.summary:
        return conversation.summary[:600]
    messages = load_messages(session=ctx.session, conversation_id=conversation.id)
    texts = [
        (m.role, b["text"]) for m in messages for b in m.content
        if b.get("type") == "text" and b.get("text", "").strip()
    ]  # fmt: skip
    asked = next((t for role, t in texts if role == "user"), "")
    answered = next((t for role, t in reversed(texts) if role == "assistant"), "")
    return f"Customer: {asked[:240]} | Last answer: {answered[:240]}"


@tool(
    label="Looking at your earlier contacts",
    guidance="Once the customer is verified, customer_history shows their own earlier tickets "
    "and conversations; use it when they refer to an earlier contact.",
)
def customer_history(
    ctx: ToolContext,
    limit: Annotated[int, Field(description="How many earlier conversations", ge=1, le=10)] = 3,
) -> dict[str, Any]:
    """The verified customer's earlier contacts with us: their recent tickets (reason, status,
    summary) and their last few conversations. Use it when they refer to an earlier contact
    ("I wrote about this last week"). Only works after verification."""
    customer_id = ctx.require_customer()
    tickets = ctx.session.exec(
        select(Ticket)
        .where(Ticket.customer_id == customer_id)
        .order_by(col(Ticket.created_at).desc())
        .limit(10)
    ).all()
    conversations = ctx.session.exec(
        select(Conversation)
        .where(Conversation.customer_id == customer_id, Conversation.id != ctx.conversation_id)
        .order_by(col(Conversation.updated_at).desc())
        .limit(limit)
    ).all()
    return {
        "tickets": [
            {
                "ticket_id": t.id,
                "reason": t.reason,
                "status": t.status.value,
                "summary": t.summary[:600],
                "opened": t.created_at.date().isoformat(),
            }
            for t in tickets
        ],
        "conversations": [
            {"date": c.updated_at.date().isoformat(), "state": c.state.value, "gist": _gist(ctx, c)}
            for c in conversations
        ],
    }
