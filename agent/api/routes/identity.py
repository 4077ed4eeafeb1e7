"""Failed and locked identity checks, for staff (admin keys)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from agent.api.deps import AdminDep, CustomerFilter, SessionDep
from agent.api.errors import STAFF, responses
from agent.api.schemas import NO_NUL
from agent.store import identity_checks
from agent.store.tables import UtcTime

router = APIRouter(prefix="/v1/identity-checks", tags=["identity"])


class IdentityCheckOut(BaseModel):
    target: str  # "customer:<id>", or "email:<hash>" for an email on no account
    client: str | None
    conversation_id: str | None
    outcome: str  # failed | locked
    detail: str
    created_at: UtcTime


@router.get("", response_model=list[IdentityCheckOut], responses=responses(*STAFF))
def list_identity_checks(
    _: AdminDep,
    session: SessionDep,
    customer_id: CustomerFilter = None,
    client: Annotated[str | None, Query(max_length=80, pattern=NO_NUL)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[IdentityCheckOut]:
    """Failed identity checks and checks refused while an account or a client was locked,
    newest first: who was named, from which client address, in which conversation."""
    found = identity_checks.recent(session=session, customer_id=customer_id, client=client,
                                   limit=limit)  # fmt: skip
    return [
        IdentityCheckOut(target=c.target, client=c.client, conversation_id=c.conversation_id,
                         outcome=c.outcome, detail=c.detail, created_at=c.created_at)
        for c in found
    ]  # fmt: skip
