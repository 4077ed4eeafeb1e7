"""Failed identity checks across conversations and workers: back-off and lock-out per account
and per client, and what staff see of them (keyword-only, session first)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from agent.store.tables import IdentityCheck, aware, utcnow


def target_of(customer_id: str | None, email: str) -> str:
    """The account a check names: the customer, or (an email on no account) the email's hash,
    counted the same way so that locks say nothing about which emails exist."""
    if customer_id is not None:
        return f"customer:{customer_id}"
    return "email:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Limits:
    per_target: int
    per_client: int
    window: timedelta  # how long failures count, and how long a lock lasts
    backoff: timedelta  # the wait after the second failure, doubling with each further one


@dataclass(frozen=True)
class Hold:
    """Why a check may not run now, and until when."""

    locked: bool  # True: too many failures (a lock-out); False: a back-off
    until: datetime
    on: str  # "account" or "client"


def _failures(
    session: Session, column: object, value: str, since: datetime
) -> tuple[int, datetime | None]:
    row = session.execute(
        select(func.count(), func.max(IdentityCheck.created_at)).where(
            column == value,
            IdentityCheck.outcome == "failed",
            col(IdentityCheck.created_at) >= since,
        )
    ).one()
    return int(row[0]), (aware(row[1]) if row[1] is not None else None)


def hold(
    *, session: Session, target: str, client: str | None, limits: Limits,
    now: datetime | None = None,
) -> Hold | None:  # fmt: skip
    """Whether a check naming `target` from `client` must wait (None: it may run now)."""
    now = now or utcnow()
    since = now - limits.window
    columns = IdentityCheck.__table__.c  # type: ignore[attr-defined]
    checks = [("account", columns.target, target, limits.per_target)]
    if client:
        checks.append(("client", columns.client, client, limits.per_client))
    holds = []
    for on, column, value, most in checks:
        count, last = _failures(session, column, value, since)
        if last is None:
            continue
        if count >= most:
            holds.append(Hold(True, last + limits.window, on))
        elif count >= 2 and limits.backoff:
            until = last + min(limits.backoff * 2 ** (count - 2), limits.window)
            if until > now:
                holds.append(Hold(False, until, on))
    return max(holds, key=lambda h: (h.locked, h.until)) if holds else None


def record(
    *, session: Session, target: str, client: str | None, conversation_id: str | None,
    outcome: str, detail: str = "",
) -> None:  # fmt: skip
    session.add(IdentityCheck(target=target, client=client, conversation_id=conversation_id,
                              outcome=outcome, detail=detail[:300]))  # fmt: skip
    session.flush()


def recent(
    *, session: Session, customer_id: str | None = None, client: str | None = None,
    since: datetime | None = None, limit: int = 100,
) -> list[IdentityCheck]:  # fmt: skip
    """Failed and refused checks, newest first."""
    statement = select(IdentityCheck)
    if customer_id is not None:
        statement = statement.where(IdentityCheck.target == f"customer:{customer_id}")
    if client is not None:
        statement = statement.where(IdentityCheck.client == client)
    if since is not None:
        statement = statement.where(col(IdentityCheck.created_at) >= since)
    statement = statement.order_by(col(IdentityCheck.created_at).desc()).limit(limit)
    return list(session.exec(statement).all())
