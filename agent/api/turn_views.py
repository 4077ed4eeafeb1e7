"""A turn as the API answers it: the result of a turn, the proposed change it waits on, how
a change it settled ended. Built from the engine's types; the routes only return them."""

from __future__ import annotations

from agent.api.schemas import (
    ActionOut,
    PendingActionOut,
    SettledActionOut,
    TurnOut,
)
from agent.engine.events import TurnResult
from agent.engine.port import PendingAction
from agent.features.transcript import ActionView, CitationView, ToolCallView
from agent.store import proposals
from agent.store.tables import ProposedAction
from tools import describe


def action_view(action: ProposedAction) -> ActionView:
    return ActionView(
        id=action.id,
        tool=action.tool,
        summary=action.summary,
        status=proposals.current_status(action),
        expires_at=action.expires_at,
    )


def action_out(action: ProposedAction) -> ActionOut:
    return ActionOut(
        id=action.id,
        tool=action.tool,
        summary=action.summary,
        status=proposals.current_status(action),
        conversation_id=action.conversation_id,
        created_at=action.created_at,
        expires_at=action.expires_at,
        decided_at=action.decided_at,
        proposed_by=action.proposed_by,
        decided_by=action.decided_by,
    )


def pending_out(pending: PendingAction | None) -> PendingActionOut | None:
    if pending is None:
        return None
    return PendingActionOut(
        id=pending.id, tool=pending.tool, summary=pending.summary, expires_at=pending.expires_at
    )


def turn_out(result: TurnResult) -> TurnOut:
    return TurnOut(
        conversation_id=result.conversation_id,
        message_id=result.message_id,
        reply=result.reply,
        outcome=result.outcome.value,
        degraded=result.degraded,
        model=result.model,
        tool_calls=[
            ToolCallView(
                name=c.name,
                label=describe(c.name, c.input),
                is_error=c.is_error,
                needs_verification=c.needs_verification,
                waits=c.waits,
            )
            for c in result.tool_calls
        ],
        citations=[
            CitationView(number=c.number, title=c.title, section=c.section, url=c.url, page=c.page)
            for c in result.citations
        ],
        usage=result.usage,
        state=result.state,
        pending_action=pending_out(result.pending_action),
        action=settled_out(result),
    )


def settled_out(result: TurnResult) -> SettledActionOut | None:
    if result.settled is None:
        return None
    pending, settled = result.settled
    return SettledActionOut(
        id=pending.id, tool=pending.tool, summary=pending.summary, status=settled.status
    )
