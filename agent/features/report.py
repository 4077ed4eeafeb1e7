"""The support report: outcomes, satisfaction, speed and cost of conversations, per day or week.

Each conversation counts in the period it started in (UTC), with its outcome as of now
(agent/features/outcomes.py). Conversations without a customer message are left out. Rates are
shares of the conversations whose outcome is decided (`ongoing` ones, still inside the window,
are left out of them); satisfaction is the share of thumbs up among rated conversations; cost
is the model calls' cost from the pricing table (agent/features/usage.py), per conversation
and per bot resolution.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal, cast

from pydantic import BaseModel, Field
from sqlalchemy import Engine, Select, true
from sqlalchemy import select as select_columns
from sqlmodel import Session, SQLModel, col, select

from agent.config import Settings
from agent.features.outcomes import (
    ConversationOutcome,
    HandOffReason,
    Outcome,
    Resolution,
    decide,
    facts_of,
)
from agent.features.usage import as_utc, totals
from agent.store.tables import (
    ActionStatus,
    Conversation,
    ConversationEnd,
    ConversationRating,
    ConversationState,
    IdentityCheck,
    Message,
    ProposedAction,
    Ticket,
    aware,
    utcnow,
)

Period = Literal["day", "week"]
REASONS = [r.value for r in HandOffReason]
# What the report reads of each message (read as a stream of rows, not as objects).
_MESSAGE_FIELDS = ("conversation_id", "role", "content", "stop_reason", "model", "usage",
                   "degraded", "author", "created_at")  # fmt: skip


class Figures(BaseModel):
    conversations: int = 0  # with at least one customer message
    resolved: int = 0  # by the bot
    resolved_confirmed: int = 0  # of which the customer ended the conversation ("I'm done")
    handed_off: int = 0
    abandoned: int = 0
    ongoing: int = 0  # not decided yet (inside the window)
    hand_offs_by_reason: dict[str, int] = Field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    resolution_rate: float | None = None  # resolved / decided
    hand_off_rate: float | None = None  # handed off / decided
    hand_off_rate_by_reason: dict[str, float] = Field(default_factory=dict)
    abandonment_rate: float | None = None
    rated: int = 0
    thumbs_up: int = 0
    satisfaction: float | None = None  # thumbs up / rated
    median_first_reply_seconds: float | None = None
    median_resolution_seconds: float | None = None  # bot resolutions
    median_hand_off_resolution_seconds: float | None = None  # hand-offs staff resolved
    order_changes_executed: int = 0
    cost_usd: float | None = 0.0  # None when a model has no price
    cost_per_conversation: float | None = None
    cost_per_resolution: float | None = None


class ReportRow(Figures):
    period: str  # the day, or the Monday starting the week (ISO date, UTC)


class Report(BaseModel):
    by: Period
    since: datetime | None
    resolution_window_hours: float
    generated_at: datetime
    rows: list[ReportRow]
    total: Figures


@dataclass
class ConversationSummary:
    """One conversation as the report counts it."""

    outcome: ConversationOutcome
    started_at: datetime
    rating: str | None = None  # up | down
    order_changes_executed: int = 0
    cost_usd: float | None = 0.0


@dataclass
class _Tally:
    items: list[ConversationSummary] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        items = self.items
        count = {o: sum(1 for s in items if s.outcome.outcome == o) for o in Outcome}
        reasons = dict.fromkeys(REASONS, 0)
        for s in items:
            if s.outcome.reason is not None:
                reasons[s.outcome.reason.value] += 1
        decided = len(items) - count[Outcome.ONGOING]
        rated = [s.rating for s in items if s.rating is not None]
        costs = [s.cost_usd for s in items]
        cost = None if any(c is None for c in costs) else sum(c or 0.0 for c in costs)
        resolved = count[Outcome.RESOLVED]
        return {
            "conversations": len(items),
            "resolved": resolved,
            "resolved_confirmed": sum(
                1 for s in items if s.outcome.resolution == Resolution.CONFIRMED
            ),
            "handed_off": count[Outcome.HANDED_OFF],
            "abandoned": count[Outcome.ABANDONED],
            "ongoing": count[Outcome.ONGOING],
            "hand_offs_by_reason": reasons,
            "resolution_rate": _share(resolved, decided),
            "hand_off_rate": _share(count[Outcome.HANDED_OFF], decided),
            "hand_off_rate_by_reason": {r: n / decided for r, n in reasons.items()}
            if decided
            else {},
            "abandonment_rate": _share(count[Outcome.ABANDONED], decided),
            "rated": len(rated),
            "thumbs_up": rated.count("up"),
            "satisfaction": _share(rated.count("up"), len(rated)),
            "median_first_reply_seconds": _median(s.outcome.first_reply_seconds for s in items),
            "median_resolution_seconds": _median(s.outcome.resolution_seconds for s in items),
            "median_hand_off_resolution_seconds": _median(
                s.outcome.hand_off_resolution_seconds for s in items
            ),
            "order_changes_executed": sum(s.order_changes_executed for s in items),
            "cost_usd": cost,
            "cost_per_conversation": cost / len(items) if cost is not None and items else None,
            "cost_per_resolution": cost / resolved if cost is not None and resolved else None,
        }


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def period_of(moment: datetime, by: Period) -> str:
    day = aware(moment).date()
    return (day - timedelta(days=day.weekday()) if by == "week" else day).isoformat()


def summary(
    engine: Engine,
    settings: Settings,
    *,
    since: date | datetime | None = None,
    by: Period = "day",
    now: datetime | None = None,
) -> Report:
    """The report of conversations started since `since` (UTC when it names no zone), per
    day or week (weeks start on Monday) and overall, with outcomes as of `now`."""
    start = as_utc(since) if since is not None else None
    now = now or utcnow()
    periods: dict[str, _Tally] = {}
    overall = _Tally()
    for item in conversations(engine, settings, since=start, now=now):
        periods.setdefault(period_of(item.started_at, by), _Tally()).items.append(item)
        overall.items.append(item)
    return Report(
        by=by,
        since=start,
        resolution_window_hours=settings.resolution_window_hours,
        generated_at=now,
        rows=[ReportRow(period=key, **periods[key].figures()) for key in sorted(periods)],
        total=Figures(**overall.figures()),
    )


def conversations(
    engine: Engine,
    settings: Settings,
    *,
    since: datetime | None = None,
    now: datetime | None = None,
) -> Iterator[ConversationSummary]:
    """Every conversation started since `since` that has a customer message, with its outcome
    as of `now`, its rating, the order changes executed in it and its cost. Messages are read
    as a stream, one conversation at a time."""
    now = now or utcnow()
    window = timedelta(hours=settings.resolution_window_hours)
    started = select(Conversation.id)
    if since is not None:
        started = started.where(col(Conversation.created_at) >= since)

    def of_period(column: Any) -> Any:  # a condition: the row's conversation is in the report
        return col(column).in_(started.scalar_subquery()) if since is not None else true()

    with Session(engine) as session:
        # Only the columns the outcomes need (no summaries, tool results or arguments).
        read = session.connection().execute
        chats = {c.id: c for c in read(columns(Conversation, "id", "created_at", "updated_at",
                                               "state", "pending_action_id")
                                       .where(of_period(Conversation.id)))}  # fmt: skip
        tickets = _grouped(read(
            columns(Ticket, "conversation_id", "reason", "created_at", "resolved_at")
            .where(of_period(Ticket.conversation_id)).order_by(col(Ticket.id))
        ))  # fmt: skip
        checks = _grouped(read(
            columns(IdentityCheck, "conversation_id", "outcome", "created_at")
            .where(of_period(IdentityCheck.conversation_id),
                   col(IdentityCheck.outcome).in_(["failed", "locked"]))
        ))  # fmt: skip
        actions = _grouped(read(
            columns(ProposedAction, "conversation_id", "tool_use_id", "status")
            .where(of_period(ProposedAction.conversation_id))
        ))  # fmt: skip
        ends = session.exec(select(ConversationEnd).where(
            of_period(ConversationEnd.conversation_id)))  # fmt: skip
        ended_at = {e.conversation_id: e.ended_at for e in ends}
        rated = session.exec(select(ConversationRating).where(
            of_period(ConversationRating.conversation_id)))  # fmt: skip
        ratings = {r.conversation_id: r.score for r in rated}
        rows = read(
            columns(Message, *_MESSAGE_FIELDS)
            .where(of_period(Message.conversation_id))
            .order_by(col(Message.conversation_id), col(Message.sequence))
            .execution_options(yield_per=1000)
        )
        for conversation_id, group in itertools.groupby(rows, key=lambda r: r.conversation_id):
            chat = chats.get(conversation_id)
            if chat is None:
                continue
            messages = list(group)
            proposed = actions.get(conversation_id, [])
            facts = facts_of(
                conversation_id,
                messages,
                tickets=tickets.get(conversation_id, []),
                checks=checks.get(conversation_id, []),
                proposal_ids={a.tool_use_id for a in proposed if a.tool_use_id},
                pending_action=chat.pending_action_id is not None,
                ended_at=ended_at.get(conversation_id) or _closed_at(chat),
                max_failed_verifications=settings.max_failed_verifications,
            )
            if facts.first_customer_at is None:
                continue
            yield ConversationSummary(
                outcome=decide(facts, now=now, window=window),
                started_at=aware(chat.created_at),
                rating=ratings.get(conversation_id),
                order_changes_executed=sum(a.status == ActionStatus.EXECUTED for a in proposed),
                cost_usd=totals(cast(list[Message], messages), settings.pricing).cost_usd,
            )


def columns(table: type[SQLModel], *names: str) -> Select[Any]:
    """A query of some of a table's columns (rows, not objects)."""
    found = table.__table__.c  # type: ignore[attr-defined]
    return select_columns(*(found[name] for name in names))


def _closed_at(conversation: Any) -> datetime | None:
    """A conversation closed without an end on record (by other means): ended when closed."""
    closed = conversation.state in (ConversationState.CLOSED, ConversationState.CLOSED.name)
    return conversation.updated_at if closed else None


def _grouped(rows: Iterable[Any]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = {}
    for row in rows:
        grouped.setdefault(row.conversation_id, []).append(row)
    return grouped
