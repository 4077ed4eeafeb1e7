"""Request dependencies: the app's state, the caller's key, and access to one conversation."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlmodel import Session

from agent.config import Settings
from agent.errors import Forbidden, NotFound, RateLimited, Unauthorized
from agent.runtime import Runtime
from agent.store import ratelimit
from agent.store.db import transaction
from agent.store.keys import find_key, hash_secret
from agent.store.tables import Conversation, KeyScope


@dataclass
class AppState:
    settings: Settings
    runtime: Runtime
    web_widget_key: str | None = None


async def get_state(request: Request) -> AppState:  # async: no worker thread for this
    state: AppState = request.app.state.supportbot
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_session(state: StateDep) -> Iterator[Session]:
    with Session(state.runtime.engine, expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


@dataclass(frozen=True)
class Principal:
    key_id: int
    name: str
    scope: KeyScope

    @property
    def staff(self) -> str:
        return self.name


# Each request is admitted in one short transaction of its own: the key is looked up, the
# conversation (if any) read and access-checked, and the rate-limit counters counted. (A
# request-scoped session would hold a pooled connection for the whole turn, model calls
# included; one transaction per check would cost a round trip each.)


def _bearer(authorization: str | None) -> str:
    scheme, _, secret = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("Send an API key as 'Authorization: Bearer <key>'.")
    return secret.strip()


def _visible(
    session: Session, principal: Principal, conversation_id: str, token: str | None
) -> Conversation | None:
    """The conversation if this caller may see it. Backend and admin keys see every
    conversation; a widget only the ones whose token it holds (the customer's own browser
    session)."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is not None and principal.scope == KeyScope.WIDGET:
        expected = conversation.access_token_hash or ""
        if not expected or not hmac.compare_digest(expected, hash_secret(token or "")):
            return None
    return conversation


def admit(
    state: AppState,
    authorization: str | None,
    *,
    conversation_id: str | None = None,
    token: str | None = None,
    count_message: bool = False,
) -> tuple[Principal, Conversation | None]:
    """The caller, counted against its rate limits, and the conversation it asks for.

    Another caller's conversation answers 404, as if it did not exist. `count_message` also
    counts the request against the conversation's own limit (customer messages).
    """
    secret = _bearer(authorization)
    with transaction(state.runtime.engine) as session:
        key = find_key(session=session, secret=secret)
        if key is None or key.id is None:
            raise Unauthorized("Unknown or revoked API key.")
        principal = Principal(key.id, key.name, key.scope)
        conversation = None
        if conversation_id is not None:
            conversation = _visible(session, principal, conversation_id, token)
        per_key = f"key:{key.id}"
        limits = {per_key: state.settings.rate_limit_per_key}
        if conversation is not None and count_message:
            limits[f"conv:{conversation.id}"] = state.settings.rate_limit_per_conversation
        over = ratelimit.count(session, limits)
    if per_key in over:
        raise RateLimited("Too many requests for this API key.", retry_after=over[per_key])
    if over:
        raise RateLimited(
            "Too many messages in this conversation; slow down.", retry_after=max(over.values())
        )
    if conversation_id is not None and conversation is None:
        raise NotFound(f"Conversation {conversation_id} not found")
    return principal, conversation


AuthorizationHeader = Annotated[str | None, Header()]
ConversationTokenHeader = Annotated[str | None, Header()]


def get_principal(state: StateDep, authorization: AuthorizationHeader = None) -> Principal:
    return admit(state, authorization)[0]


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(*scopes: KeyScope) -> Callable[[Principal], Awaitable[Principal]]:
    async def check(principal: PrincipalDep) -> Principal:
        if principal.scope not in scopes:
            allowed = " or ".join(s.value for s in scopes)
            raise Forbidden(f"This needs a {allowed} key; this key is {principal.scope.value}.")
        return principal

    return check


AdminDep = Annotated[Principal, Depends(require(KeyScope.ADMIN))]


def conversation_for(
    conversation_id: str,
    state: StateDep,
    authorization: AuthorizationHeader = None,
    x_conversation_token: ConversationTokenHeader = None,
) -> Conversation:
    """The conversation if this caller may see it; otherwise 404."""
    conversation = admit(
        state, authorization, conversation_id=conversation_id, token=x_conversation_token
    )[1]
    assert conversation is not None
    return conversation


def conversation_for_message(
    conversation_id: str,
    state: StateDep,
    authorization: AuthorizationHeader = None,
    x_conversation_token: ConversationTokenHeader = None,
) -> Conversation:
    """As conversation_for, also counting a customer message against the conversation."""
    conversation = admit(
        state,
        authorization,
        conversation_id=conversation_id,
        token=x_conversation_token,
        count_message=True,
    )[1]
    assert conversation is not None
    return conversation


ConversationDep = Annotated[Conversation, Depends(conversation_for)]
MessageTargetDep = Annotated[Conversation, Depends(conversation_for_message)]
