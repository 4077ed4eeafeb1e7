"""Request dependencies: the app's state, the caller's key, and access to one conversation."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlmodel import Session

from agent.config import Settings
from agent.errors import Forbidden, NotFound, RateLimited, Unauthorized
from agent.runtime import Runtime
from agent.store import ratelimit
from agent.store.keys import find_key, hash_secret
from agent.store.tables import Conversation, KeyScope


@dataclass
class AppState:
    settings: Settings
    runtime: Runtime
    web_widget_key: str | None = None


def get_state(request: Request) -> AppState:
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


# The dependencies below open short sessions of their own: a request-scoped session would
# hold a pooled connection for the whole turn, model calls included.


def get_principal(
    state: StateDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Principal:
    scheme, _, secret = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("Send an API key as 'Authorization: Bearer <key>'.")
    with Session(state.runtime.engine) as session:
        key = find_key(session=session, secret=secret.strip())
    if key is None or key.id is None:
        raise Unauthorized("Unknown or revoked API key.")
    retry = ratelimit.hit(
        state.runtime.engine, key=f"key:{key.id}", limit=state.settings.rate_limit_per_key
    )
    if retry is not None:
        raise RateLimited("Too many requests for this API key.", retry_after=retry)
    return Principal(key.id, key.name, key.scope)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(*scopes: KeyScope) -> Callable[[Principal], Principal]:
    def check(principal: PrincipalDep) -> Principal:
        if principal.scope not in scopes:
            allowed = " or ".join(s.value for s in scopes)
            raise Forbidden(f"This needs a {allowed} key; this key is {principal.scope.value}.")
        return principal

    return check


AdminDep = Annotated[Principal, Depends(require(KeyScope.ADMIN))]


def conversation_for(
    conversation_id: str,
    principal: PrincipalDep,
    state: StateDep,
    x_conversation_token: Annotated[str | None, Header()] = None,
) -> Conversation:
    """The conversation if this caller may see it; otherwise 404, as if it did not exist.

    Backend and admin keys see every conversation; a widget only the ones whose token it
    holds (the customer's own browser session).
    """
    with Session(state.runtime.engine, expire_on_commit=False) as session:
        conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        raise NotFound(f"Conversation {conversation_id} not found")
    if principal.scope == KeyScope.WIDGET:
        expected = conversation.access_token_hash or ""
        given = hash_secret(x_conversation_token or "")
        if not expected or not hmac.compare_digest(expected, given):
            raise NotFound(f"Conversation {conversation_id} not found")
    return conversation


ConversationDep = Annotated[Conversation, Depends(conversation_for)]
