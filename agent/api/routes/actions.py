"""Order changes on the staff desk (admin keys): every proposed, confirmed, declined and
executed change with who and when, and changes staff run for a customer."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Query

from agent.api.deps import (
    AdminDep,
    ConversationFilter,
    CustomerFilter,
    CustomerId,
    SessionDep,
    StateDep,
)
from agent.api.errors import STAFF, responses
from agent.api.schemas import ChangeOut, StaffActionCreate, StaffActionOut
from agent.api.turn_views import action_out
from agent.features.staff_actions import run_for_customer
from agent.store import proposals
from agent.store.tables import ActionStatus, ProposedAction

router = APIRouter(tags=["actions"])


def _staff_out(action: ProposedAction) -> StaffActionOut:
    return StaffActionOut(
        **action_out(action).model_dump(),
        customer_id=action.customer_id,
        arguments=action.arguments,
        result=action.result,
        system_reply=action.system_reply,
        discrepancy=action.discrepancy,
    )


@router.get("/v1/changes", response_model=list[ChangeOut], responses=responses(*STAFF))
def list_changes(_: AdminDep, state: StateDep) -> list[ChangeOut]:
    """The order changes staff can run for a customer (every store-changing tool, in the
    registry's order), each with its JSON Schema: what the desk's change form is built from."""
    tools = state.runtime.agent.tools
    changes = [tools.get(name) for name in tools.changes()]
    return [
        ChangeOut(name=t.name, title=t.name.replace("_", " ").capitalize(),
                  description=t.description, input_schema=t.schema()["input_schema"])
        for t in changes
        if t is not None
    ]  # fmt: skip


@router.get("/v1/actions", response_model=list[StaffActionOut], responses=responses(*STAFF))
def list_actions(
    _: AdminDep,
    session: SessionDep,
    conversation_id: ConversationFilter = None,
    customer_id: CustomerFilter = None,
    status: Annotated[ActionStatus | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[StaffActionOut]:
    """Order changes, newest first: proposed by the assistant (with the customer's answer)
    or run by staff, with who decided and when, the arguments and the tool's result."""
    found = proposals.list_actions(session=session, conversation_id=conversation_id,
                                   customer_id=customer_id, status=status, limit=limit)  # fmt: skip
    return [_staff_out(a) for a in found]


@router.post("/v1/customers/{customer_id}/actions", response_model=StaffActionOut,
             status_code=201, responses=responses(*STAFF, 404, 413))  # fmt: skip
async def run_action(
    customer_id: CustomerId, body: StaffActionCreate, principal: AdminDep, state: StateDep
) -> StaffActionOut:
    """Run an order change for a customer now (the member of staff confirms it): the same
    tools and rules as the assistant's. A change a rule refuses is recorded as `failed`, with
    the reason in `result`, and changes nothing."""
    action = await anyio.to_thread.run_sync(
        lambda: run_for_customer(
            state.runtime.engine,
            state.runtime.agent.tools,
            state.settings,
            customer_id=customer_id[:64],
            tool=body.tool,
            arguments=body.arguments,
            staff=principal.staff,
            conversation_id=body.conversation_id,
            orders=state.runtime.orders,
        )
    )
    return _staff_out(action)
