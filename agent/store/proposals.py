"""Proposed actions: store-changing calls held for the customer's confirmation, how each was
settled, and the actions staff run from the desk (keyword-only, session first)."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from agent.store.tables import (
    ActionStatus,
    Conversation,
    Message,
    ProposedAction,
    aware,
    utcnow,
)


def new_action_id() -> str:
    return f"act_{secrets.token_hex(10)}"


def propose(
    *,
    session: Session,
    conversation: Conversation,
    customer_id: str,
    tool: str,
    arguments: dict[str, Any],
    summary: str,
    tool_use_id: str,
    held_results: list[dict[str, Any]],
    expires_at: datetime,
) -> ProposedAction:
    """Store a proposal and make it the conversation's pending action."""
    action = ProposedAction(
        id=new_action_id(),
        conversation_id=conversation.id,
        customer_id=customer_id,
        tool=tool,
        arguments=arguments,
        summary=summary,
        tool_use_id=tool_use_id,
        held_results=held_results,
        expires_at=expires_at,
    )
    session.add(action)
    conversation.pending_action_id = action.id
    session.add(conversation)
    session.flush()
    return action


def settle(
    *,
    session: Session,
    conversation: Conversation | None,
    action: ProposedAction,
    status: ActionStatus,
    result: str,
    decided_by: str,
    system_reply: str | None = None,
    discrepancy: str | None = None,
) -> None:
    action.status, action.result = status, result
    action.system_reply = system_reply[:20_000] if system_reply else None
    action.discrepancy = discrepancy[:2000] if discrepancy else None
    action.decided_by, action.decided_at = decided_by, utcnow()
    session.add(action)
    if conversation is not None and conversation.pending_action_id == action.id:
        conversation.pending_action_id = None
        session.add(conversation)
    session.flush()


def get_action(*, session: Session, action_id: str, lock: bool = False) -> ProposedAction | None:
    statement = select(ProposedAction).where(ProposedAction.id == action_id)
    return session.exec(statement.with_for_update() if lock else statement).first()


def list_actions(
    *,
    session: Session,
    conversation_id: str | None = None,
    customer_id: str | None = None,
    status: ActionStatus | None = None,
    limit: int = 100,
) -> list[ProposedAction]:
    """Newest first."""
    statement = select(ProposedAction)
    if conversation_id is not None:
        statement = statement.where(ProposedAction.conversation_id == conversation_id)
    if customer_id is not None:
        statement = statement.where(ProposedAction.customer_id == customer_id)
    if status is not None:
        statement = statement.where(ProposedAction.status == status)
    statement = statement.order_by(col(ProposedAction.created_at).desc()).limit(limit)
    return list(session.exec(statement).all())


def current_status(action: ProposedAction, now: datetime | None = None) -> ActionStatus:
    """A proposal past its expiry reads as expired, even before anything settles it."""
    if action.status == ActionStatus.PROPOSED and aware(action.expires_at) <= (now or utcnow()):
        return ActionStatus.EXPIRED
    return action.status


def answer_after(*, session: Session, action: ProposedAction) -> Message | None:
    """The assistant's answer that followed the settling of `action` (what a repeated
    confirmation returns), if the turn got that far."""
    rows = session.exec(
        select(Message)
        .where(Message.conversation_id == action.conversation_id)
        .order_by(col(Message.sequence))
    ).all()
    settled_at = next(
        (
            i
            for i, row in enumerate(rows)
            if row.role == "user"
            and any(b.get("tool_use_id") == action.tool_use_id for b in row.content)
        ),
        None,
    )
    if settled_at is None:
        return None
    return next(
        (
            r
            for r in rows[settled_at + 1 :]
            if r.role == "assistant" and r.stop_reason != "tool_use"
        ),
        None,
    )
