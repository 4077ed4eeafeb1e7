"""A conversation's end and its rating, for the conversation's customer (its widget token) or a
backend key acting for them (agent/features/closing.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from agent.api.deps import (
    AppState,
    AuthenticatedDep,
    ConversationDep,
    ConversationId,
    ConversationTokenHeader,
    Principal,
    SessionDep,
    StateDep,
    TurnAdmission,
)
from agent.api.errors import AUTHENTICATED, responses
from agent.api.schemas import NO_NUL
from agent.errors import Forbidden, SupportbotError
from agent.features.closing import MAX_COMMENT_CHARS, Score, end_conversation, rate
from agent.store.db import transaction
from agent.store.tables import (
    Conversation,
    ConversationRating,
    ConversationState,
    KeyScope,
    UtcTime,
)

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])
T = TypeVar("T")


class EndOut(BaseModel):
    conversation_id: str
    state: ConversationState
    ended_at: UtcTime
    ended_by: str  # "customer" (a widget) or "backend:<key name>"


class RatingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    score: Score = Field(description="Thumbs up or down")
    comment: str | None = Field(
        default=None, max_length=MAX_COMMENT_CHARS, pattern=NO_NUL, description="Optional"
    )


class RatingOut(BaseModel):
    conversation_id: str
    score: Score
    comment: str | None
    rated_at: UtcTime
    rated_by: str
    replaced: bool = Field(default=False, description="An earlier rating was replaced")


def _who(principal: Principal) -> str:
    if principal.scope == KeyScope.WIDGET:
        return "customer"
    if principal.scope == KeyScope.BACKEND:
        return f"backend:{principal.name}"
    raise Forbidden(
        "Only the customer (a widget key) or a backend key acting for them may do this."
    )


async def _as_customer(
    state: AppState,
    principal: Principal,
    conversation_id: str,
    token: str | None,
    work: Callable[[Session, Conversation, str], T],
) -> T:
    """`work(session, conversation, who)` in one transaction that admits the caller: the
    conversation's customer (its token; another's is a 404) or a backend key, counted against
    the rate limits; the conversation's row is locked."""
    admit = TurnAdmission(state, principal, conversation_id, token)

    def run() -> T:
        who = _who(principal)
        with transaction(state.runtime.engine) as session:
            return work(session, admit(session), who)

    try:
        await admit.count_apart()
        return await anyio.to_thread.run_sync(run)
    except SupportbotError:
        await admit.count_failure()
        raise


@router.post("/{conversation_id}/end", response_model=EndOut,
             responses=responses(*AUTHENTICATED, 403, 404, 413))  # fmt: skip
async def end(
    conversation_id: ConversationId,
    state: StateDep,
    principal: AuthenticatedDep,
    x_conversation_token: ConversationTokenHeader = None,
) -> EndOut:
    """The customer is done ("I'm done" in the web chat): the conversation is closed (a later
    message is a 409 `conversation_closed`) and counts as resolved by the bot unless it was
    handed off. Ending it again returns the first end. For the conversation's customer (its
    widget token) or a backend key."""

    def work(session: Session, conversation: Conversation, who: str) -> EndOut:
        ended = end_conversation(session=session, conversation=conversation, by=who)
        return EndOut(conversation_id=ended.conversation_id, state=ConversationState.CLOSED,
                      ended_at=ended.ended_at, ended_by=ended.ended_by)  # fmt: skip

    return await _as_customer(state, principal, conversation_id, x_conversation_token, work)


@router.post("/{conversation_id}/rating", response_model=RatingOut,
             responses=responses(*AUTHENTICATED, 403, 404, 409, 413))  # fmt: skip
async def post_rating(
    conversation_id: ConversationId,
    body: RatingCreate,
    state: StateDep,
    principal: AuthenticatedDep,
    x_conversation_token: ConversationTokenHeader = None,
) -> RatingOut:
    """Rate the conversation: `{"score": "up"|"down", "comment"?}`. One rating per
    conversation: a later one replaces it (`replaced: true`). For the conversation's customer
    (its widget token) or a backend key acting for them; 409 before the first message."""

    def work(session: Session, conversation: Conversation, who: str) -> RatingOut:
        rating, replaced = rate(session=session, conversation=conversation, score=body.score,
                                comment=body.comment, by=who)  # fmt: skip
        return _rating_out(rating, replaced)

    return await _as_customer(state, principal, conversation_id, x_conversation_token, work)


@router.get(
    "/{conversation_id}/rating",
    response_model=RatingOut | None,
    responses={
        200: {"description": "The rating; `null` while the conversation has none"},
        **responses(*AUTHENTICATED, 404),
    },
)
def get_rating(conversation: ConversationDep, session: SessionDep) -> RatingOut | None:
    """The conversation's rating, or `null` while it has none. Readable by whoever may read
    the conversation: its customer, a backend key, staff (404 only for a conversation that
    is not there or not yours)."""
    # Not yet rated is a state of a conversation that exists, not a missing resource: a 404
    # would read, to a client and in the browser's console, like a conversation not found.
    rating = session.get(ConversationRating, conversation.id)
    return None if rating is None else _rating_out(rating, False)


def _rating_out(rating: ConversationRating, replaced: bool) -> RatingOut:
    score: Score = "up" if rating.score == "up" else "down"
    return RatingOut(conversation_id=rating.conversation_id, score=score, comment=rating.comment,
                     rated_at=rating.rated_at, rated_by=rating.rated_by,
                     replaced=replaced)  # fmt: skip
