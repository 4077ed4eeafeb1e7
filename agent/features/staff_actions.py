"""Order changes staff run for a customer from the desk: the same tools and rules as the
assistant's, executed at once (the member of staff is the one confirming) and recorded with
who ran them beside the customer's own confirmed actions."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from agent.adapters.builtin_orders import BuiltinOrders
from agent.config import Settings
from agent.errors import InvalidInput, NotFound
from agent.store import proposals
from agent.store.db import reading, transaction
from agent.store.tables import ActionStatus, Conversation, Customer, ProposedAction, utcnow
from tools.order_system import OrderSystem
from tools.registry import Kind, Preview, ToolOutcome, ToolRegistry
from tools.tool_context import ToolContext

log = logging.getLogger(__name__)


def run_for_customer(
    engine: Engine,
    tools: ToolRegistry,
    settings: Settings,
    *,
    customer_id: str,
    tool: str,
    arguments: dict[str, Any],
    staff: str,
    conversation_id: str | None = None,
    orders: Callable[[Session], OrderSystem] = BuiltinOrders,
) -> ProposedAction:
    """Run a store-changing tool for `customer_id` now, and record it: in one transaction on
    the built-in store; in a remote order system, recorded as being sent (unknown) first,
    sent with no write lock held, then its outcome recorded. A rule that refuses it changes
    nothing and is recorded as failed, with the reason."""
    if tools.kind(tool) != Kind.CHANGE:
        changing = ", ".join(n for n in tools.names() if tools.kind(n) == Kind.CHANGE)
        raise InvalidInput(f"Unknown order action {tool!r}. One of: {changing}.")
    with transaction(engine) as session:
        if session.get(Customer, customer_id) is None:
            raise NotFound(f"Customer {customer_id} not found")
        if conversation_id is not None:
            conversation = session.get(Conversation, conversation_id)
            if conversation is None or conversation.customer_id != customer_id:
                raise NotFound(f"Conversation {conversation_id} of this customer not found")
        system = orders(session)
        now = utcnow()
        action = ProposedAction(
            id=proposals.new_action_id(),
            conversation_id=conversation_id,
            customer_id=customer_id,
            tool=tool,
            arguments=arguments,
            summary=f"{tool} (being sent)",
            status=ActionStatus.UNKNOWN,
            proposed_by=f"staff:{staff}",
            decided_by=f"staff:{staff}",
            result=SENDING,
            created_at=now,
            expires_at=now,
            decided_at=now,
        )
        if system.local:  # the built-in store: checked and changed in this transaction
            ctx = _context(session, settings, customer_id, conversation_id, system)
            for name, value in _ran(tools, tool, arguments, ctx).items():
                setattr(action, name, value)
            session.add(action)
            session.flush()
            log.info("staff %s ran %s for customer %s: %s", staff, tool, customer_id,
                     action.status)  # fmt: skip
            return action
        # A remote system: recorded as being sent (unknown, which stays if the outcome is
        # never recorded), sent with no write lock held, then its outcome recorded.
        session.add(action)
        session.flush()
    with reading(engine) as session:
        ctx = _context(session, settings, customer_id, conversation_id, orders(session))
        outcome = _ran(tools, tool, arguments, ctx)
    with transaction(engine) as session:
        stored = session.get(ProposedAction, action.id, with_for_update=True)
        assert stored is not None
        for name, value in outcome.items():
            setattr(stored, name, value)
        stored.decided_at = utcnow()
        session.add(stored)
        session.flush()
        action = stored
        log.info("staff %s ran %s for customer %s: %s", staff, tool, customer_id, action.status)
        return action


SENDING = (
    "Sent to the order system; its answer was never recorded, so whether the change was "
    "carried out is unknown. Check in the order system before doing it again."
)


def _context(
    session: Session,
    settings: Settings,
    customer_id: str,
    conversation_id: str | None,
    orders: OrderSystem,
) -> ToolContext:
    return ToolContext(session=session, settings=settings, customer_id=customer_id,
                       conversation_id=conversation_id or "", orders=orders)  # fmt: skip


def _ran(
    tools: ToolRegistry, tool: str, arguments: dict[str, Any], ctx: ToolContext
) -> dict[str, Any]:
    """Run the change now (staff confirm it themselves): the action's fields it settles."""
    done = tools.preview(tool, arguments, ctx, apply=True)
    executed = isinstance(done, Preview)
    unknown = isinstance(done, ToolOutcome) and done.unknown
    return {
        "arguments": done.arguments if isinstance(done, Preview) else arguments,
        "summary": done.summary if isinstance(done, Preview) else f"{tool} (refused)",
        "status": ActionStatus.EXECUTED
        if executed
        else ActionStatus.UNKNOWN
        if unknown
        else ActionStatus.FAILED,
        "result": done.content,
        "system_reply": "\n".join(ctx.receipts)[:20_000] or None,
        "discrepancy": "; ".join(ctx.discrepancies)[:2000] or None,
    }
