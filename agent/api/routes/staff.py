"""Staff on the desk: signing in and out, who is signed in, colleagues to assign tickets to,
saved replies, and the customer panel."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Path, Request, Response
from sqlmodel import Session

from agent.api.deps import (
    DB_INT_MAX,
    AdminDep,
    AuthorizationHeader,
    CustomerId,
    OrdersDep,
    SessionDep,
    StateDep,
    bearer_secret,
    client_address,
)
from agent.api.errors import STAFF, responses
from agent.api.schemas import SavedReplyCreate, SavedReplyOut, SignedIn, SignIn, StaffOut
from agent.errors import RateLimited, Unauthorized
from agent.features.customer_panel import CustomerPanel, customer_panel
from agent.store import ratelimit, saved_replies, staff
from agent.store.db import transaction
from agent.store.tables import SavedReply

router = APIRouter(tags=["staff"])

# Failed sign-ins allowed per minute: from one address, and for one username (successful
# ones are not counted: a whole office behind one address signs in at the start of a shift).
FAILURES_PER_ADDRESS, FAILURES_PER_USERNAME = 30, 10


@router.post(
    "/v1/staff/sessions",
    response_model=SignedIn,
    status_code=201,
    responses=responses(401, 413, 422, 429),
)
async def sign_in(body: SignIn, request: Request, state: StateDep) -> SignedIn:
    """Sign in on the desk with a staff account (`supportbot staff add`). The token acts with
    admin scope under the person's name until it expires (`SUPPORTBOT_STAFF_SESSION_HOURS`).
    After 30 failed attempts from one address, or 10 for one username, in a minute: 429
    until the minute is over, whatever the password."""
    client = client_address(request, state.settings.trusted_proxies)
    username = body.username.strip().lower()[:64]
    limits = {f"signin-fail:{client}": FAILURES_PER_ADDRESS,
              f"signin-fail-user:{username}": FAILURES_PER_USERNAME}  # fmt: skip
    engine = state.runtime.engine

    def run() -> SignedIn:
        with Session(engine) as session:  # reads only: scrypt holds no write lock
            over = ratelimit.reached(session, limits)
            if over:
                raise RateLimited("Too many failed sign-ins; wait a minute.",
                                  retry_after=max(over.values()))  # fmt: skip
            account = staff.check_password(session=session, username=username,
                                           password=body.password)  # fmt: skip
        if account is None or account.id is None:
            with transaction(engine) as session:
                ratelimit.count(session, limits)
            raise Unauthorized("Wrong username or password.")
        with transaction(engine) as session:
            hours = state.settings.staff_session_hours
            token, expires = staff.open_session(session=session, staff_id=account.id, hours=hours)
        return SignedIn(token=token, expires_at=expires,
                        staff=StaffOut(id=account.id, username=account.username,
                                       display_name=account.display_name))  # fmt: skip

    return await anyio.to_thread.run_sync(run)


@router.delete("/v1/staff/sessions/current", status_code=204, responses=responses(*STAFF))
def sign_out(_: AdminDep, state: StateDep, authorization: AuthorizationHeader = None) -> Response:
    """Sign out: the token stops working at once (an API key is left as it is)."""
    with transaction(state.runtime.engine) as session:
        staff.sign_out(session=session, token=bearer_secret(authorization))
    return Response(status_code=204)


@router.get("/v1/staff/me", response_model=StaffOut, responses=responses(*STAFF))
def me(principal: AdminDep) -> StaffOut:
    """Who this sign-in (or admin key) is, as the desk shows it."""
    return StaffOut(
        id=principal.key_id if principal.is_staff_account else None,
        username=principal.name,
        display_name=principal.staff,
    )


@router.get("/v1/staff", response_model=list[StaffOut], responses=responses(*STAFF))
def colleagues(_: AdminDep, session: SessionDep) -> list[StaffOut]:
    """Active staff accounts, by name: who a ticket can be assigned to."""
    return [
        StaffOut(id=a.id, username=a.username, display_name=a.display_name)
        for a in staff.list_accounts(session=session)
    ]


def _reply_out(reply: SavedReply) -> SavedReplyOut:
    return SavedReplyOut.model_validate(reply, from_attributes=True)


@router.get("/v1/saved-replies", response_model=list[SavedReplyOut], responses=responses(*STAFF))
def list_saved_replies(_: AdminDep, session: SessionDep) -> list[SavedReplyOut]:
    """Saved replies, by title."""
    return [_reply_out(r) for r in saved_replies.list_replies(session=session)]


@router.post(
    "/v1/saved-replies",
    response_model=SavedReplyOut,
    status_code=201,
    responses=responses(*STAFF, 409, 413),
)
def add_saved_reply(body: SavedReplyCreate, principal: AdminDep, state: StateDep) -> SavedReplyOut:
    with transaction(state.runtime.engine) as session:
        reply = saved_replies.add_reply(
            session=session, title=body.title, text=body.text, created_by=principal.staff
        )
        return _reply_out(reply)


ReplyId = Annotated[int, Path(ge=1, le=DB_INT_MAX)]


@router.delete("/v1/saved-replies/{reply_id}", status_code=204, responses=responses(*STAFF, 404))
def delete_saved_reply(reply_id: ReplyId, _: AdminDep, state: StateDep) -> Response:
    with transaction(state.runtime.engine) as session:
        saved_replies.delete_reply(session=session, reply_id=reply_id)
    return Response(status_code=204)


@router.get(
    "/v1/customers/{customer_id}", response_model=CustomerPanel, responses=responses(*STAFF, 404)
)
def get_customer(
    customer_id: CustomerId, _: AdminDep, session: SessionDep, orders: OrdersDep
) -> CustomerPanel:
    """The customer panel: identity on file, recent orders with every change proposed or run
    on each (from the order system; `orders_error` says when it cannot be read now), and
    earlier conversations with their tickets."""
    return customer_panel(session, customer_id, orders)
