"""Hand-off to a human: a ticket for the support desk, and the bot steps aside."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from agent.store.conversations import create_ticket, set_state
from agent.store.tables import ConversationState
from tools.registry import tool
from tools.tool_context import ToolContext


@tool(
    label="Handing over to a person",
    writes=True,  # a ticket, and the conversation's state
    guidance="When the customer asks for a person, when a request needs something your tools "
    "cannot do (or the store's policy does not allow), or when verification keeps failing, use "
    "escalate_to_human with a short reason and summary.",
)
def escalate_to_human(
    ctx: ToolContext,
    reason: Annotated[str, Field(description="Why a human is needed, one line", max_length=500)],
    summary: Annotated[
        str,
        Field(description="What the customer needs and what was tried so far", max_length=4000),
    ],
) -> dict[str, Any]:
    """Hand the conversation to a human support agent: when the customer asks for a person,
    when the request needs an action the tools cannot take, or when verification keeps failing.
    Opens a ticket; a human continues the conversation."""
    ticket = create_ticket(
        session=ctx.session,
        conversation_id=ctx.conversation_id,
        customer_id=ctx.customer_id,
        reason=reason,
        summary=summary,
    )
    set_state(
        session=ctx.session, conversation_id=ctx.conversation_id, state=ConversationState.HUMAN
    )
    return {"ticket_id": ticket.id, "status": "open", "next": "A human agent will reply here."}
