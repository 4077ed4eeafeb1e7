"""Usage and cost for operators (admin keys)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Query
from pydantic import BaseModel

from agent.api.deps import AdminDep, StateDep
from agent.api.errors import STAFF, responses
from agent.features.usage import UsageRow, UsageTotals, report

router = APIRouter(prefix="/v1/usage", tags=["usage"])


class UsageOut(BaseModel):
    rows: list[UsageRow]
    total: UsageTotals


@router.get("", response_model=UsageOut, responses=responses(*STAFF))
async def get_usage(
    _: AdminDep,
    state: StateDep,
    since: Annotated[
        datetime | date | None,
        Query(description="An ISO date (2026-11-01) or date-time; without a time zone, UTC"),
    ] = None,
    by: Annotated[Literal["day", "conversation", "model"], Query()] = "day",
) -> UsageOut:
    """Model calls, tokens by kind (input, output, cache write, cache read), cache hit share
    and cost from the pricing table, grouped by day, conversation or model."""
    rows, total = await anyio.to_thread.run_sync(
        lambda: report(state.runtime.engine, state.settings.pricing, since=since, by=by)
    )
    return UsageOut(rows=rows, total=total)
