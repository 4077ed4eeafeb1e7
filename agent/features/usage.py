"""Token usage and cost, from the usage stored with every model reply."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Literal

from pydantic import BaseModel, computed_field
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from agent.capabilities import family_name
from agent.config import ModelPrice
from agent.errors import InvalidInput
from agent.store.tables import Message

KINDS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
ONE_HOUR_WRITES = "cache_creation_1h_input_tokens"  # the part of cache writes kept for an hour
GroupBy = Literal["day", "conversation", "model"]


class UsageTotals(BaseModel):
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cost_usd: float | None = 0.0  # None when a model has no price
    refusals: int = 0  # replies the model declined (stop_reason "refusal")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cache_hit_share(self) -> float:
        """Share of prompt tokens read from the cache."""
        prompt = self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens
        return self.cache_read_input_tokens / prompt if prompt else 0.0

    def add(self, usage: dict[str, int], price: ModelPrice | None, refused: bool = False) -> None:
        self.calls += 1
        self.refusals += int(refused)
        for kind in KINDS:
            setattr(self, kind, getattr(self, kind) + int(usage.get(kind) or 0))
        if price is None:
            self.cost_usd = None
        elif self.cost_usd is not None:
            self.cost_usd += cost(usage, price)


class UsageRow(UsageTotals):
    key: str


def cost(usage: dict[str, int], price: ModelPrice, *, batch: bool = False) -> float:
    """Dollars for one call's usage: 5-minute and 1-hour cache writes at their own prices;
    with `batch`, input and output at the Message Batches discount."""
    writes = int(usage.get("cache_creation_input_tokens") or 0)
    writes_1h = min(writes, int(usage.get(ONE_HOUR_WRITES) or 0))
    discount = (1 - price.batch_discount) if batch else 1.0
    return (
        int(usage.get("input_tokens") or 0) * price.input * discount
        + int(usage.get("output_tokens") or 0) * price.output * discount
        + (writes - writes_1h) * price.cache_write
        + writes_1h * price.write_1h()
        + int(usage.get("cache_read_input_tokens") or 0) * price.cache_read
    ) / 1_000_000


def price_for(model: str, pricing: dict[str, ModelPrice]) -> ModelPrice | None:
    """The price of `model`: its own entry, else its family's (a dated or provider id)."""
    return pricing.get(model) or pricing.get(family_name(model))


def _billed(messages: Iterable[Message]) -> Iterable[Message]:
    """Replies of a real model (the offline model and staff replies cost nothing)."""
    return (m for m in messages if m.usage and m.model and m.model != "offline")


def totals(messages: Iterable[Message], pricing: dict[str, ModelPrice]) -> UsageTotals:
    result = UsageTotals()
    for m in _billed(messages):
        result.add(m.usage or {}, price_for(m.model or "", pricing), m.stop_reason == "refusal")
    return result


def as_utc(moment: date | datetime) -> datetime:
    """A moment to compare stored times with: a date is its midnight, and a date or time
    without a time zone is read as UTC."""
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError as exc:  # e.g. 9999-12-31T23:00:00-05:00 is in the year 10000 in UTC
        raise InvalidInput(f"{moment.isoformat()} is out of range.") from exc


def report(
    engine: Engine,
    pricing: dict[str, ModelPrice],
    *,
    since: date | datetime | None = None,
    by: GroupBy = "day",
) -> tuple[list[UsageRow], UsageTotals]:
    """Usage grouped by day, conversation or model, and the grand total. `since` without a
    time zone is UTC."""
    query = select(Message).where(col(Message.usage).is_not(None)).order_by(col(Message.id))
    if since is not None:
        query = query.where(col(Message.created_at) >= as_utc(since))
    with Session(engine) as session:
        messages = list(session.exec(query).all())
    rows: dict[str, UsageRow] = {}
    overall = UsageTotals()
    for m in _billed(messages):
        key = {
            "day": m.created_at.date().isoformat(),
            "conversation": m.conversation_id,
            "model": m.model or "",
        }[by]
        price = price_for(m.model or "", pricing)
        refused = m.stop_reason == "refusal"
        rows.setdefault(key, UsageRow(key=key)).add(m.usage or {}, price, refused)
        overall.add(m.usage or {}, price, refused)
    return list(rows.values()), overall
