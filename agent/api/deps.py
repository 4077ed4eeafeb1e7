"""Request dependencies: the app's state, the caller's key, and access to one conversation."""

from __future__ import annotations

import hmac
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from ipaddress import ip_address, ip_network
from typing import Annotated, Any

import anyio
from fastapi import Depends, Header, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from agent.api.schemas import NO_NUL
from agent.config import Settings
from agent.errors import Forbidden, NotFound, RateLimited, SupportbotError, Unauthorized
from agent.features.desk import Staff
from agent.runtime import Runtime
from agent.store import ratelimit
from agent.store.conversations import lock_conversation
from agent.store.db import transaction
from agent.store.keys import find_key, hash_secret
from agent.store.staff import STAFF_TOKEN_PREFIX, find_session
from agent.store.tables import Conversation, KeyScope
from tools.order_system import OrderSystem

# Bounds of path and query parameters: a value outside them is a 422 before any route runs.
# Integer ids fit their INTEGER column (32 bits on PostgreSQL; SQLite refuses more than 64), and
# no string id holds NUL (PostgreSQL text cannot; no id of ours has one) or runs longer than
# its column.
DB_INT_MAX = 2**31 - 1
TicketId = Annotated[int, Path(ge=1, le=DB_INT_MAX, description="The ticket's id")]
ConversationId = Annotated[str, Path(max_length=36, pattern=NO_NUL)]
ActionId = Annotated[str, Path(max_length=64, pattern=NO_NUL)]
CustomerId = Annotated[str, Path(max_length=64, pattern=NO_NUL)]
DocumentId = Annotated[str, Path(max_length=64, pattern=NO_NUL, description="As listed")]
ConversationFilter = Annotated[str | None, Query(max_length=36, pattern=NO_NUL)]
CustomerFilter = Annotated[str | None, Query(max_length=64, pattern=NO_NUL)]


@dataclass
class AppState:
    settings: Settings
    runtime: Runtime
    web_widget_key: str | None = None
    warmed: threading.Event = field(default_factory=threading.Event)  # see runtime.warm_up
    feed_hub: Any = None  # agent.api.event_feed.FeedHub, made on first use


async def get_state(request: Request) -> AppState:  # async: no worker thread for this
    state: AppState = request.app.state.supportbot
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_session(state: StateDep) -> Iterator[Session]:
    with Session(state.runtime.engine, expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_orders(state: StateDep, session: SessionDep) -> OrderSystem:
    """The shop's order system for this request (the built-in store on its session, or the
    connector to the shop's own)."""
    return state.runtime.orders(session)


OrdersDep = Annotated[OrderSystem, Depends(get_orders)]


@dataclass(frozen=True)
class Principal:
    """Who calls: an API key, or a member of staff signed in on the desk (a staff account's
    sign-in acts with admin scope, under the person's own name)."""

    key_id: int  # the API key's id, or the staff account's
    name: str  # the key's name, or the staff account's username
    scope: KeyScope
    client: str = ""  # the caller's address (behind trusted proxies: the forwarded one)
    display_name: str | None = None  # a staff account's
    is_staff_account: bool = False

    @property
    def staff(self) -> str:
        """The name the desk shows for this caller's replies and changes."""
        return self.display_name or self.name

    @property
    def member(self) -> Staff:
        return Staff(self.staff, self.key_id if self.is_staff_account else None)

    @property
    def limit_key(self) -> str:
        return f"staff:{self.key_id}" if self.is_staff_account else f"key:{self.key_id}"


# Requests are authenticated with a read (no write lock on SQLite) and counted against their
# rate limits in a write transaction: their own, or the one the route writes in anyway (a new
# conversation, a customer's message), so a turn takes the write lock no more often than it
# must. (A request-scoped session would hold a pooled connection for the whole turn, model
# calls included.)


def bearer_secret(authorization: str | None) -> str:
    scheme, _, secret = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("Send an API key as 'Authorization: Bearer <key>'.")
    return secret.strip()


def _visible(
    session: Session, principal: Principal, conversation_id: str, token: str | None
) -> Conversation | None:
    """The conversation if this caller may see it."""
    conversation = session.get(Conversation, conversation_id)
    return conversation if conversation and _may_see(principal, conversation, token) else None


def _may_see(principal: Principal, conversation: Conversation, token: str | None) -> bool:
    """Backend and admin keys see every conversation; a widget only the ones whose token it
    holds (the customer's own browser session)."""
    return principal.scope != KeyScope.WIDGET or _token_matches(
        conversation.access_token_hash, token
    )


def _token_matches(expected: str | None, token: str | None) -> bool:
    return bool(expected) and hmac.compare_digest(expected or "", hash_secret(token or ""))


def _identify(session: Session, authorization: str | None, client: str = "") -> Principal:
    secret = bearer_secret(authorization)
    if secret.startswith(STAFF_TOKEN_PREFIX):
        member = find_session(session=session, token=secret)
        if member is None:
            raise Unauthorized("Your desk sign-in has expired or was revoked; sign in again.")
        return Principal(
            member.id,
            member.username,
            KeyScope.ADMIN,
            client,
            display_name=member.display_name,
            is_staff_account=True,
        )
    key = find_key(session=session, secret=secret)
    if key is None:
        raise Unauthorized("Unknown or revoked API key.")
    return Principal(key.id, key.name, key.scope, client)


def client_address(request: Request, trusted_proxies: list[str]) -> str:
    """Who is calling: the peer's address, or, when the peer is a trusted reverse proxy, the
    nearest address in X-Forwarded-For that is not one of ours (a client can prepend anything
    to that header, so only what our own proxies appended counts)."""
    peer = request.client.host if request.client else ""
    networks = [ip_network(n) for n in trusted_proxies]

    def trusted(address: str) -> bool:
        try:
            parsed = ip_address(address)
        except ValueError:
            return False
        return any(parsed in network for network in networks)

    if not networks or not trusted(peer):
        return peer
    forwarded = [a.strip() for a in request.headers.get("x-forwarded-for", "").split(",")]
    for address in reversed([a for a in forwarded if a]):
        if not trusted(address):
            try:
                return str(ip_address(address))
            except ValueError:
                return peer  # garbage where our proxy wrote: fall back to the proxy itself
    return peer


def count_request(
    session: Session,
    settings: Settings,
    principal: Principal,
    conversation_id: str | None = None,
    *,
    key: bool = True,
) -> None:
    """Count a request against its key's limit (not with `key=False`: counted apart) and a
    customer message against its conversation's, in the caller's write transaction; 429 when
    over. (Raising rolls that transaction back, so the refused request is counted again in one
    of its own.)"""
    limits = _limits(settings, principal) if key else {}
    if conversation_id is not None:
        limits[f"conv:{conversation_id}"] = settings.rate_limit_per_conversation
    _refuse_over(ratelimit.count(session, limits), principal)


def _limits(settings: Settings, principal: Principal) -> dict[str, int]:
    """A request's rate limits: its key's, and with a widget key (every visitor of the site
    shares it) its visitor's too, so one visitor's flood throttles that visitor only."""
    if principal.is_staff_account:
        return {principal.limit_key: settings.rate_limit_per_staff}
    if principal.scope != KeyScope.WIDGET:
        return {principal.limit_key: settings.rate_limit_per_key}
    return {
        principal.limit_key: settings.rate_limit_per_widget_key,
        f"client:{principal.client}": settings.rate_limit_per_client,
    }


def _refuse_over(over: dict[str, int], principal: Principal) -> None:
    if not over:
        return
    retry = max(over.values())
    if f"client:{principal.client}" in over:
        raise RateLimited("Too many requests from your address; slow down.", retry_after=retry)
    if principal.limit_key in over:
        raise RateLimited("Too many requests for this API key.", retry_after=retry)
    raise RateLimited("Too many messages in this conversation; slow down.", retry_after=retry)


def _counts_apart(state: AppState) -> bool:
    """Whether a request's key is counted in a transaction of its own, before the request's
    work (PostgreSQL), rather than in the work's own transaction (SQLite, one writer)."""
    return state.runtime.engine.dialect.name == "postgresql"


def _counted(state: AppState, principal: Principal) -> None:
    """Count a request against its key, in a transaction of its own (on PostgreSQL a
    statement of its own); 429 when over."""
    if _counts_apart(state):
        over = ratelimit.count_now(state.runtime.engine, _limits(state.settings, principal))
    else:
        with transaction(state.runtime.engine) as session:
            over = ratelimit.count(session, _limits(state.settings, principal))
    _refuse_over(over, principal)


@contextmanager
def counted(state: AppState, principal: Principal) -> Iterator[Session]:
    """A write transaction that first counts the request. A request refused inside it (429
    included) is still counted against its key, in a transaction of its own. On PostgreSQL
    the request is counted first in a transaction of its own, so that the key's counter row is
    not locked while the work runs (see TurnAdmission)."""
    if _counts_apart(state):
        _counted(state, principal)
        with transaction(state.runtime.engine) as session:
            yield session
        return
    try:
        with transaction(state.runtime.engine) as session:
            count_request(session, state.settings, principal)
            yield session
    except (SupportbotError, RequestValidationError):
        _counted(state, principal)
        raise


AuthorizationHeader = Annotated[str | None, Header()]
ConversationTokenHeader = Annotated[str | None, Header()]


def authenticate(
    request: Request, state: StateDep, authorization: AuthorizationHeader = None
) -> Principal:
    """The caller, not yet counted: for routes that count it in their own transaction. A
    read without a write lock, resolved before the request body is read: an unknown key is a
    401 whatever else is wrong with the request."""
    client = client_address(request, state.settings.trusted_proxies)
    with Session(state.runtime.engine) as session:
        return _identify(session, authorization, client)


AuthenticatedDep = Annotated[Principal, Depends(authenticate)]


def still_valid(state: AppState, authorization: str | None) -> bool:
    """Whether this key or sign-in still works (not revoked, disabled or expired): asked by
    long-lived streams, which are authenticated once."""
    try:
        with Session(state.runtime.engine) as session:
            _identify(session, authorization)
    except Unauthorized:
        return False
    return True


def get_principal(
    request: Request, state: StateDep, authorization: AuthorizationHeader = None
) -> Principal:
    """The caller, counted against its key's rate limit."""
    principal = authenticate(request, state, authorization)
    _counted(state, principal)
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(*scopes: KeyScope) -> Callable[[Principal], Awaitable[Principal]]:
    async def check(principal: PrincipalDep) -> Principal:
        if principal.scope not in scopes:
            allowed = " or ".join(s.value for s in scopes)
            raise Forbidden(f"This needs a {allowed} key; this key is {principal.scope.value}.")
        return principal

    return check


AdminDep = Annotated[Principal, Depends(require(KeyScope.ADMIN))]


def _access(
    state: AppState,
    authorization: str | None,
    conversation_id: str,
    token: str | None,
    client: str = "",
) -> tuple[Principal, Conversation]:
    """The caller and the conversation it asks for, read in one session. Another caller's
    conversation answers 404, as if it did not exist (the attempt is still counted)."""
    with Session(state.runtime.engine, expire_on_commit=False) as session:
        principal = _identify(session, authorization, client)
        conversation = _visible(session, principal, conversation_id, token)
    if conversation is None:
        _counted(state, principal)
        raise NotFound(f"Conversation {conversation_id} not found")
    return principal, conversation


def conversation_for(
    conversation_id: ConversationId,
    request: Request,
    state: StateDep,
    authorization: AuthorizationHeader = None,
    x_conversation_token: ConversationTokenHeader = None,
) -> Conversation:
    """The conversation if this caller may see it (counted); otherwise 404."""
    client = client_address(request, state.settings.trusted_proxies)
    principal, conversation = _access(
        state, authorization, conversation_id, x_conversation_token, client
    )
    _counted(state, principal)
    return conversation


ConversationDep = Annotated[Conversation, Depends(conversation_for)]


STAFF_ARE_NOT_THE_CUSTOMER = (
    "Only the customer, or the shop's backend acting for them, speaks in the customer's place: "
    "a customer's message, confirmation or decline cannot come from staff. Reply to the "
    "customer on the desk (POST /v1/tickets/{id}/reply), or run a change for them there "
    "(POST /v1/customers/{id}/actions), recorded under your own name."
)


def customer_voice(principal: Principal) -> str:
    """Who is speaking when `principal` posts a customer's message or answers a proposed
    change, as the audit trail records it: "customer" (their own page's widget token) or
    "backend:<key name>" (the shop's backend, relaying its customer). Staff sign-ins and admin
    keys are refused (Forbidden): a member of staff's "yes" is never the customer's consent."""
    if principal.scope == KeyScope.WIDGET:
        return "customer"
    if principal.scope == KeyScope.BACKEND:
        return f"backend:{principal.name}"
    raise Forbidden(STAFF_ARE_NOT_THE_CUSTOMER)


@dataclass(frozen=True)
class TurnAdmission:
    """Admits an authenticated caller's message in the turn's first transaction (see
    Agent.turn's `admit`): its access to the conversation (404 otherwise, as if it did not
    exist) is checked before the row is locked, and the rate limits are counted where the
    message is stored.

    On PostgreSQL the key's own limits are counted apart, once per request, in a statement of
    their own (`count_apart`) before the turn's transaction: one key (the web chat's, a busy
    backend's) serves many conversations, and its counter row, counted in the turn's first
    transaction, stayed locked until that transaction committed, so every turn through the key
    queued behind the one before (bench/README.md, "Several instances"). On SQLite, where
    writes take turns anyway, it is counted in the turn's transaction: one write fewer."""

    state: AppState
    principal: Principal
    conversation_id: str
    token: str | None

    @property
    def apart(self) -> bool:
        """Whether the key's limits are counted apart from the turn's transaction."""
        return _counts_apart(self.state)

    async def count_apart(self) -> None:
        """Count the request against its key's limits now, in a transaction of its own
        (PostgreSQL only: see the class); 429 when over."""
        if self.apart:
            await anyio.to_thread.run_sync(_counted, self.state, self.principal)

    @property
    def client(self) -> str | None:
        return self.principal.client or None

    @property
    def speaker(self) -> str:
        """Who speaks as the customer here (see customer_voice)."""
        return customer_voice(self.principal)

    def __call__(self, session: Session) -> Conversation:
        if self.principal.scope == KeyScope.WIDGET:  # checked before locking anything
            stored = session.execute(_TOKEN_HASH, {"cid": self.conversation_id}).first()
            if stored is None or not _token_matches(stored[0], self.token):
                raise NotFound(f"Conversation {self.conversation_id} not found")
        conversation = lock_conversation(session=session, conversation_id=self.conversation_id)
        count_request(session, self.state.settings, self.principal, self.conversation_id,
                      key=not self.apart)  # fmt: skip
        return conversation

    async def count_failure(self) -> None:
        """Count a refused message against its key, in a transaction of its own (unless it
        was counted apart, before its turn)."""
        if not self.apart:
            await anyio.to_thread.run_sync(_counted, self.state, self.principal)


_TOKEN_HASH = select(col(Conversation.access_token_hash)).where(
    col(Conversation.id) == bindparam("cid")
)
