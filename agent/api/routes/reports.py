"""The support report for operators (admin keys), and its page on the staff desk."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import anyio
from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from agent.api.deps import AdminDep, StateDep
from agent.api.errors import STAFF, responses
from agent.api.pages import page
from agent.features.report import Period, Report, summary

router = APIRouter(tags=["reports"])


@router.get("/v1/reports/summary", response_model=Report, responses=responses(*STAFF))
async def get_summary(
    _: AdminDep,
    state: StateDep,
    since: Annotated[
        datetime | date | None,
        Query(
            description="Conversations started from this date or date-time on (ISO; UTC "
            "without a time zone)"
        ),
    ] = None,
    by: Annotated[Period, Query(description="day, or week (starting on Monday)")] = "day",
) -> Report:
    """Conversations per day or week and overall, each counted in the period it started in:
    how many the bot resolved (the customer confirmed, or did not come back within
    SUPPORTBOT_RESOLUTION_WINDOW_HOURS), handed off (by reason: `customer_asked`, `tool_cap`,
    `refusal`, `identity_locked`, `model_unavailable`, `needs_person`) or were abandoned, and
    how many are still `ongoing`; rates over the decided ones; satisfaction (share of thumbs
    up among rated conversations); median first-reply and resolution times in seconds; order
    changes executed; cost per conversation and per bot resolution."""
    return await anyio.to_thread.run_sync(
        lambda: summary(state.runtime.engine, state.settings, since=since, by=by)
    )


@router.get("/staff/report", response_class=HTMLResponse, include_in_schema=False)
def report_page(state: StateDep) -> str:
    return page("report.html", state.settings)
