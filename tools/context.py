"""What a tool receives from the loop and the model never controls."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from agent.config import Settings


class ToolError(Exception):
    """A failure the model should see and act on (becomes a tool_result with is_error)."""


@dataclass
class ToolContext:
    session: Session
    settings: Settings
    conversation_id: str
    customer_id: str | None  # the verified customer bound to this conversation, if any

    def require_customer(self) -> str:
        if self.customer_id is None:
            raise ToolError(
                "The customer is not verified yet. Ask for the email address on their account "
                "plus an order number or their zip code, then call verify_customer."
            )
        return self.customer_id
