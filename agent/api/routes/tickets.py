"""The hand-off desk for staff (a staff sign-in or an admin key): tickets, their notes, and
the desk's live feed."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import APIRouter, Query, Response
from sqlmodel import Session, SQLModel, col, select
from sse_starlette import EventSourceResponse

from agent.api.deps import (
    DB_INT_MAX,
    AdminDep,
    AuthorizationHeader,
    SessionDep,
    StateDep,
    TicketId,
    still_valid,
)
from agent.api.errors import STAFF, responses
from agent.api.event_feed import After, LastEventId, start_at, stream
from agent.api.routes.conversation_events import SSE
from agent.api.schemas import (
    NO_NUL,
    AssignCreate,
    CustomerOut,
    DeskEventOut,
    NoteCreate,
    NoteOut,
    ReplyCreate,
    TicketOut,
)
from agent.errors import NotFound
from agent.features import desk
from agent.features.transcript import TranscriptEntry, build_transcript
from agent.store.db import transaction
from agent.store.tables import (
    Conversation,
    ConversationEnd,
    Customer,
    DeskEvent,
    Ticket,
    TicketNote,
    TicketStatus,
)
from agent.store.ticket_search import TicketQuery, search_tickets

router = APIRouter(tags=["tickets"])
R = TypeVar("R", bound=SQLModel)
TICKETS = "/v1/tickets"


def _outs(session: Session, tickets: Sequence[Ticket]) -> list[TicketOut]:
    """The tickets as the desk shows them, with their customers (the one the ticket was opened
    for, or the one who verified afterwards) and whether the customer has left: three queries
    for the whole page, not three per ticket."""
    conversation_ids = {t.conversation_id for t in tickets}
    conversations = {c.id: c for c in _where_in(session, Conversation, Conversation.id,
                                                conversation_ids)}  # fmt: skip
    ended = {e.conversation_id: e.ended_at for e in _where_in(
        session, ConversationEnd, ConversationEnd.conversation_id, conversation_ids)}  # fmt: skip
    customer_of = {
        t.id: t.customer_id or getattr(conversations.get(t.conversation_id), "customer_id", None)
        for t in tickets
    }
    customers = {c.id: c for c in _where_in(session, Customer, Customer.id,
                                            {c for c in customer_of.values() if c})}  # fmt: skip
    out = []
    for ticket in tickets:
        customer = customers.get(customer_of[ticket.id] or "")
        name = f"{customer.first_name} {customer.last_name}" if customer else None
        out.append(
            TicketOut.model_validate(
                {
                    **ticket.model_dump(),
                    "customer": CustomerOut(name=name) if name else None,
                    "customer_id": customer_of[ticket.id],
                    "customer_ended_at": ended.get(ticket.conversation_id),
                    "channel": getattr(conversations.get(ticket.conversation_id), "channel", None),
                }
            )
        )
    return out


def _out(session: Session, ticket: Ticket) -> TicketOut:
    return _outs(session, [ticket])[0]


def _where_in(session: Session, table: type[R], column: Any, values: set[str]) -> Sequence[R]:
    return session.exec(select(table).where(col(column).in_(values))).all() if values else []


TOTAL = {
    "headers": {
        "X-Total-Count": {
            "description": "How many match, over every page",
            "schema": {"type": "integer"},
        }
    }
}


@router.get(TICKETS, response_model=list[TicketOut], responses={**responses(*STAFF), 200: TOTAL})
def get_tickets(
    principal: AdminDep,
    session: SessionDep,
    response: Response,
    status: Annotated[TicketStatus | None, Query(description="open, claimed or resolved")] = None,
    assignee: Annotated[
        str | None,
        Query(
            max_length=12,
            pattern=r"^(me|none|[0-9]{1,10})$",
            description="me, none (the queue), or a staff account's id",
        ),
    ] = None,
    customer: Annotated[
        str | None,
        Query(
            max_length=320,
            pattern=NO_NUL,
            description="A customer id, email, or part of a name",
        ),
    ] = None,
    order_id: Annotated[
        str | None,
        Query(max_length=40, pattern=NO_NUL, description="An order id, with or without '#'"),
    ] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            pattern=NO_NUL,
            description="Text in the reason, summary or conversation",
        ),
    ] = None,
    newest_first: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=DB_INT_MAX)] = 0,
) -> list[TicketOut]:
    """Every ticket, open, claimed or resolved, oldest first (or newest first), filtered by
    state, assignee, customer, order id and text; X-Total-Count counts all the matches."""
    assignee_id: int | None = None
    if assignee == "me":
        assignee_id = principal.key_id if principal.is_staff_account else -1
    elif assignee and assignee != "none":
        assignee_id = int(assignee)
    query = TicketQuery(
        status=status,
        assignee_id=assignee_id,
        unassigned=assignee == "none",
        customer=customer,
        order_id=order_id,
        text=q,
        newest_first=newest_first,
        limit=limit,
        offset=offset,
    )
    found, total = search_tickets(session, query)
    response.headers["X-Total-Count"] = str(total)
    return _outs(session, found)


@router.get(TICKETS + "/{ticket_id}", response_model=TicketOut, responses=responses(*STAFF, 404))
def get_ticket(ticket_id: TicketId, _: AdminDep, state: StateDep) -> TicketOut:
    return _reload(state, ticket_id)


@router.post(
    TICKETS + "/{ticket_id}/claim", response_model=TicketOut, responses=responses(*STAFF, 404, 409)
)
async def claim(ticket_id: TicketId, principal: AdminDep, state: StateDep) -> TicketOut:
    """Take a ticket (the customer is told you joined). 409 when another person has it or it
    is resolved."""
    return await _changed(
        state, lambda: desk.claim(state.runtime.engine, ticket_id=ticket_id, staff=principal.member)
    )


@router.post(
    TICKETS + "/{ticket_id}/assign",
    response_model=TicketOut,
    responses=responses(*STAFF, 404, 409, 413),
)
async def assign(
    ticket_id: TicketId, body: AssignCreate, principal: AdminDep, state: StateDep
) -> TicketOut:
    """Give the ticket to a staff account (the customer is told who joined), or with
    `staff_id: null` back to the queue."""
    return await _changed(
        state,
        lambda: desk.assign(
            state.runtime.engine, ticket_id=ticket_id, to=body.staff_id, by=principal.member
        ),
    )


@router.post(
    TICKETS + "/{ticket_id}/reply",
    response_model=TranscriptEntry,
    responses=responses(*STAFF, 404, 409, 413),
)
async def reply(
    ticket_id: TicketId, body: ReplyCreate, principal: AdminDep, state: StateDep
) -> TranscriptEntry:
    """Reply to the customer in the ticket's conversation, under your name (claims an
    unclaimed ticket)."""
    message = await anyio.to_thread.run_sync(
        lambda: desk.reply(
            state.runtime.engine,
            ticket_id=ticket_id,
            staff=principal.member,
            text=body.text,
            max_chars=state.settings.max_message_chars,
        )
    )
    return build_transcript([message])[0]


@router.post(
    TICKETS + "/{ticket_id}/resolve",
    response_model=TicketOut,
    responses=responses(*STAFF, 404, 409),
)
async def resolve(ticket_id: TicketId, principal: AdminDep, state: StateDep) -> TicketOut:
    """Close the ticket and hand the conversation back to the bot (the customer is told)."""
    return await _changed(
        state,
        lambda: desk.resolve(state.runtime.engine, ticket_id=ticket_id, staff=principal.member),
    )


def _note_out(note: TicketNote) -> NoteOut:
    return NoteOut.model_validate(note, from_attributes=True)


@router.get(
    TICKETS + "/{ticket_id}/notes", response_model=list[NoteOut], responses=responses(*STAFF, 404)
)
def get_notes(ticket_id: TicketId, _: AdminDep, session: SessionDep) -> list[NoteOut]:
    """The ticket's internal notes, oldest first."""
    return [_note_out(n) for n in desk.list_notes(session, ticket_id=ticket_id)]


@router.post(
    TICKETS + "/{ticket_id}/notes",
    response_model=NoteOut,
    status_code=201,
    responses=responses(*STAFF, 404, 413),
)
async def post_note(
    ticket_id: TicketId, body: NoteCreate, principal: AdminDep, state: StateDep
) -> NoteOut:
    """An internal note for colleagues: kept beside the ticket, never shown to the customer
    and never sent to the model."""
    note = await anyio.to_thread.run_sync(
        lambda: desk.add_note(
            state.runtime.engine, ticket_id=ticket_id, staff=principal.member, text=body.text
        )
    )
    return _note_out(note)


async def _changed(state: StateDep, change: Callable[[], Ticket]) -> TicketOut:
    """Run a desk change, then show the ticket as it now stands (both off the event loop)."""
    return await anyio.to_thread.run_sync(lambda: _reload(state, change().id))


def _reload(state: StateDep, ticket_id: int | None) -> TicketOut:
    with transaction(state.runtime.engine) as session:
        ticket = session.get(Ticket, ticket_id)
        if ticket is None:
            raise NotFound(f"Ticket {ticket_id} not found")
        return _out(session, ticket)


@router.get(
    "/v1/desk/events",
    response_class=EventSourceResponse,
    responses={**responses(*STAFF), **SSE},
)
def follow_desk(
    _: AdminDep,
    state: StateDep,
    after: After = None,
    last_event_id: LastEventId = None,
    authorization: AuthorizationHeader = None,
) -> EventSourceResponse:
    """The desk's live feed: `desk` events for tickets opened, customers writing while a
    person has them, people joining, replying, stepping away and resolving, and notes."""

    def render(event: DeskEvent) -> tuple[str, str]:
        out = DeskEventOut(
            id=event.id or 0,
            kind=event.kind,
            ticket_id=event.ticket_id,
            conversation_id=event.conversation_id,
            actor=event.actor,
            text=event.text if event.kind != "note" else "",
            created_at=event.created_at,
        )
        return "desk", json.dumps(out.model_dump(mode="json"), ensure_ascii=False)

    return stream(
        state,
        after=start_at(state, last_event_id, after),
        render=render,
        allowed=lambda: still_valid(state, authorization),  # a sign-out ends it
    )
