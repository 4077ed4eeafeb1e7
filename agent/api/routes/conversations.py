"""Conversations: start one, send a customer message (JSON or streamed), read the transcript."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from sqlmodel import Session
from sse_starlette import EventSourceResponse

from agent.api.deps import (
    ActionId,
    AppState,
    AuthenticatedDep,
    ConversationDep,
    ConversationId,
    ConversationTokenHeader,
    Principal,
    SessionDep,
    StateDep,
    TurnAdmission,
    counted,
    customer_voice,
)
from agent.api.errors import AUTHENTICATED, responses
from agent.api.message_body import MESSAGE_BODY, read_message
from agent.api.routes.conversation_events import notices
from agent.api.schemas import (
    ActionOut,
    ConversationCreate,
    ConversationOut,
    CustomerOut,
    SettledActionOut,
    TranscriptOut,
    TurnOut,
)
from agent.api.sse import STREAMED, events, replay
from agent.api.turn_views import action_out, action_view, turn_out
from agent.engine.events import TurnFinished
from agent.engine.loop import Said
from agent.engine.port import Decision
from agent.errors import (
    ActionDecided,
    Forbidden,
    InvalidInput,
    NotFound,
    SupportbotError,
    TurnInProgress,
    TurnLost,
)
from agent.features.customers import find_vouched, vouched
from agent.features.identity import verify_customer_token
from agent.features.transcript import build_transcript
from agent.features.usage import totals
from agent.store import desk_events, proposals
from agent.store.conversations import create_conversation as store_create_conversation
from agent.store.conversations import load_messages
from agent.store.keys import hash_secret
from agent.store.tables import Conversation, Customer, KeyScope

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])


def _customer(session: Session, customer_id: str | None) -> CustomerOut | None:
    return _named(session.get(Customer, customer_id) if customer_id else None)


def _named(customer: Customer | None) -> CustomerOut | None:
    return CustomerOut(name=f"{customer.first_name} {customer.last_name}") if customer else None


@router.post("", status_code=201, response_model=ConversationOut,
             responses=responses(*AUTHENTICATED, 403, 413))  # fmt: skip
def create_conversation(
    body: ConversationCreate, principal: AuthenticatedDep, state: StateDep
) -> ConversationOut:
    """Start a conversation. Backend and admin keys may bind it to a customer they vouch for
    (`customer_id` or `customer_email`); a widget may bind it only with a customer token
    signed by the shop's site, and otherwise starts anonymous (the agent verifies identity)."""
    found = None
    remote = state.runtime.connector
    if remote is not None and (body.customer_id or body.customer_email or body.customer_token):
        # The shop's own system is asked before the write transaction, not while it is held.
        try:
            subject = _subject(body, principal, state)
            found = find_vouched(remote, subject) if subject else None
        except SupportbotError:
            with counted(state, principal):
                pass  # counted against the key like any request refused
            raise
    with counted(state, principal) as session:  # one transaction, one write lock
        subject = _subject(body, principal, state)
        token = secrets.token_urlsafe(24) if principal.scope == KeyScope.WIDGET else None
        customer = (
            vouched(session, state.runtime.orders(session), subject, found) if subject else None
        )
        conversation = store_create_conversation(
            session=session,
            customer_id=customer.id if customer else None,
            channel=principal.scope.value,
        )
        if token:
            conversation.access_token_hash = hash_secret(token)
            session.add(conversation)
        return ConversationOut(
            id=conversation.id,
            state=conversation.state,
            customer=_named(customer),
            conversation_token=token,
        )


def _subject(body: ConversationCreate, principal: Principal, state: AppState) -> str | None:
    """Whom the new conversation is bound to: a customer id or email, or None (anonymous)."""
    if body.customer_id or body.customer_email:
        if principal.scope == KeyScope.WIDGET:
            raise Forbidden("A widget key cannot vouch for a customer; send customer_token.")
        return body.customer_id or body.customer_email
    if body.customer_token:
        secret = state.settings.widget_secret
        if secret is None:
            raise InvalidInput("Customer tokens are not enabled (SUPPORTBOT_WIDGET_SECRET).")
        return verify_customer_token(
            secret.get_secret_value(),
            body.customer_token,
            max_ttl_seconds=state.settings.widget_token_max_ttl,
        )
    return None


@router.get(
    "/{conversation_id}", response_model=TranscriptOut, responses=responses(*AUTHENTICATED, 404)
)
def read_conversation(
    conversation: ConversationDep, session: SessionDep, state: StateDep
) -> TranscriptOut:
    """The transcript: customer and assistant messages, staff replies, the tools that ran
    (as a short description) and the sources each answer cites."""
    last_event = desk_events.last_id(session=session)  # first: a later event is not missed
    rows = load_messages(session=session, conversation_id=conversation.id)
    actions = proposals.list_actions(session=session, conversation_id=conversation.id)
    return TranscriptOut(
        id=conversation.id,
        state=conversation.state,
        customer=_customer(session, conversation.customer_id),
        created_at=conversation.created_at,
        messages=build_transcript(rows, {a.tool_use_id: action_view(a) for a in actions}),
        usage=totals(rows, state.settings.pricing),
        notices=notices(session, conversation.id),
        last_event_id=last_event,
    )


@router.get("/{conversation_id}/actions", response_model=list[ActionOut],
            responses=responses(*AUTHENTICATED, 404))  # fmt: skip
def read_actions(conversation: ConversationDep, session: SessionDep) -> list[ActionOut]:
    """The order changes proposed in this conversation, newest first, with how each ended
    (`proposed`, `executed`, `failed`, `declined`, `expired`, `superseded`)."""
    return [
        action_out(a)
        for a in proposals.list_actions(session=session, conversation_id=conversation.id)
    ]


TURN_POLL_SECONDS = 0.1  # how often a waiting message checks whether the turn before it ended


@router.post(
    "/{conversation_id}/messages",
    response_model=TurnOut,
    openapi_extra=MESSAGE_BODY,
    responses={**STREAMED, **responses(*AUTHENTICATED, 403, 404, 409, 413, 415)},
)
async def post_message(
    conversation_id: ConversationId,
    request: Request,
    state: StateDep,
    principal: AuthenticatedDep,
    x_conversation_token: ConversationTokenHeader = None,
    stream: Annotated[bool, Query(description="Stream server-sent events")] = False,
) -> Any:
    """One customer turn. With `Accept: text/event-stream` or `?stream=true` the reply streams
    as server-sent events: `text` (deltas), `working` (the model is thinking), `progress`
    (deltas of its notes between tool calls), `tool_start`, `tool_finish`, `degraded`, and
    `final` (the stored reply with citations, usage and the `degraded` flag). Otherwise the
    final reply comes back as JSON. While a human has the conversation the message is stored
    for them and the bot stays silent (outcome `queued_for_human`).

    A conversation runs one turn at a time: a message that arrives while the assistant is
    still answering an earlier one waits for it (up to `SUPPORTBOT_TURN_WAIT_SECONDS`), then is
    refused with 409 `turn_in_progress`, and nothing of it is stored. Its `Retry-After` is the
    seconds until that turn's hold lapses unless renewed: the conversation is free by then if
    the server running it died; a live turn renews its hold, and may end sooner."""
    # Its access to the conversation is checked, and the message counted, in the transaction
    # that stores the message.
    customer_voice(principal)  # staff and admin keys do not speak as the customer
    admit = TurnAdmission(state, principal, conversation_id, x_conversation_token)
    return await _waiting_turn(state, admit, lambda: _turn(request, state, admit, stream))


async def _waiting_turn(
    state: AppState, admit: TurnAdmission, run: Callable[[], Awaitable[Any]]
) -> Any:
    """`run` a turn, waiting up to SUPPORTBOT_TURN_WAIT_SECONDS for a turn in progress."""
    deadline = time.monotonic() + state.settings.turn_wait_seconds
    try:
        await admit.count_apart()  # once, however long the message waits
        while True:
            try:
                return await run()
            except TurnInProgress as busy:
                if isinstance(busy, TurnLost) or time.monotonic() >= deadline:
                    raise  # a turn that lost its hold stored its message: not run again
                await asyncio.sleep(TURN_POLL_SECONDS)
    except (SupportbotError, RequestValidationError):
        await admit.count_failure()
        raise


@router.post("/{conversation_id}/actions/{action_id}/confirm", response_model=TurnOut,
             responses={**STREAMED, **responses(*AUTHENTICATED, 403, 404, 409)})  # fmt: skip
async def confirm_action(
    conversation_id: ConversationId,
    action_id: ActionId,
    request: Request,
    state: StateDep,
    principal: AuthenticatedDep,
    x_conversation_token: ConversationTokenHeader = None,
    stream: Annotated[bool, Query(description="Stream server-sent events")] = False,
) -> Any:
    """Confirm a proposed change: it runs now, in one transaction, every rule of the store's
    policy checked again, and the turn continues: the assistant receives the outcome and tells
    the customer. The response has the shape of posting a message (JSON, or server-sent events
    with `Accept: text/event-stream` or `?stream=true`); `action.status` is `executed`, or
    `failed` (a rule refused it; nothing changed) or `expired`.

    For the conversation's customer (its widget token) or a backend key acting for them. A
    change executes at most once: confirming it again returns the first outcome."""
    return await _decision(request, state, principal, conversation_id, action_id,
                           x_conversation_token, stream, confirm=True)  # fmt: skip


@router.post("/{conversation_id}/actions/{action_id}/decline", response_model=TurnOut,
             responses={**STREAMED, **responses(*AUTHENTICATED, 403, 404, 409)})  # fmt: skip
async def decline_action(
    conversation_id: ConversationId,
    action_id: ActionId,
    request: Request,
    state: StateDep,
    principal: AuthenticatedDep,
    x_conversation_token: ConversationTokenHeader = None,
    stream: Annotated[bool, Query(description="Stream server-sent events")] = False,
) -> Any:
    """Decline a proposed change: nothing changes, and the assistant is told so and answers.
    Same shape as posting a message; declining a settled change returns its outcome."""
    return await _decision(request, state, principal, conversation_id, action_id,
                           x_conversation_token, stream, confirm=False)  # fmt: skip


async def _decision(
    request: Request,
    state: AppState,
    principal: Principal,
    conversation_id: str,
    action_id: str,
    token: str | None,
    stream: bool,
    *,
    confirm: bool,
) -> Any:
    admit = TurnAdmission(state, principal, conversation_id, token)
    decision = Decision(action_id[:64], confirm, customer_voice(principal))
    agent = state.runtime.agent
    wants_stream = stream or "text/event-stream" in request.headers.get("accept", "")

    async def run() -> Any:
        try:
            if wants_stream:
                turn = agent.turn(conversation_id, decision, stream=True,
                                  admit=admit).events_async()  # fmt: skip
                first = await anext(turn, None)
                if first is None:
                    raise NotFound("the turn produced no events")
                return EventSourceResponse(events(first, turn), ping=15)
            turn = agent.turn(conversation_id, decision, admit=admit).events_async()
            async with aclosing(turn):
                async for event in turn:
                    if isinstance(event, TurnFinished):
                        return turn_out(event.result)
            raise NotFound("the turn produced no events")  # pragma: no cover
        except ActionDecided as settled:
            out = await anyio.to_thread.run_sync(
                _settled_before, state, conversation_id, settled.action_id
            )
            if wants_stream:
                return EventSourceResponse(replay(out), ping=15)
            return out

    return await _waiting_turn(state, admit, run)


def _settled_before(state: AppState, conversation_id: str, action_id: str) -> TurnOut:
    """A change settled earlier: its first outcome, and the answer that followed it."""
    with Session(state.runtime.engine, expire_on_commit=False) as session:
        action = proposals.get_action(session=session, action_id=action_id)
        assert action is not None and action.conversation_id == conversation_id
        answer = proposals.answer_after(session=session, action=action)
        conversation = session.get(Conversation, conversation_id)
        assert conversation is not None
        text = "\n\n".join(
            b["text"] for b in (answer.content if answer else []) if b.get("type") == "text"
        )
        return TurnOut(
            conversation_id=conversation_id,
            message_id=answer.id if answer else None,
            reply=text,
            outcome="already_settled",
            degraded=bool(answer and answer.degraded),
            model=(answer.model if answer else None) or "",
            tool_calls=[],
            citations=[],
            usage={},
            state=conversation.state,
            action=SettledActionOut(
                id=action.id,
                tool=action.tool,
                summary=action.summary,
                status=proposals.current_status(action),
            ),
        )


async def _turn(request: Request, state: AppState, admit: TurnAdmission, stream: bool) -> Any:
    agent = state.runtime.agent
    conversation_id = admit.conversation_id
    text, images = await read_message(request, state)
    wants_stream = stream or "text/event-stream" in request.headers.get("accept", "")
    if wants_stream:
        # Validation errors and rate limits surface as a plain 4xx before any event is sent.
        text = agent.check_text(text, allow_empty=bool(images))
        turn = agent.turn(conversation_id, Said(text, images), stream=True,
                          admit=admit).events_async()  # fmt: skip
        first = await anext(turn, None)
        if first is None:
            raise NotFound("the turn produced no events")
        return EventSourceResponse(events(first, turn), ping=15)
    return turn_out(
        await agent.turn(conversation_id, Said(text, images), admit=admit).result_async()
    )
