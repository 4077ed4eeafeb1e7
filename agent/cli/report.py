"""`supportbot report`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer

from agent.cli.common import console, fail, load_settings
from agent.cli.usage import SINCE_FORMATS


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return "<1s"
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _dollars(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def report(
    since: Annotated[
        datetime | None,
        typer.Option(
            help="Only conversations started from this date/time on (UTC unless it names a zone).",
            formats=SINCE_FORMATS,
            metavar="DATE",
        ),
    ] = None,
    by: Annotated[str, typer.Option(help="Per day or week (weeks start on Monday, UTC).")] = "day",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print what GET /v1/reports/summary returns.")
    ] = False,
) -> None:
    """Report how support went, per day or week and overall.

    Outcomes (resolved by the bot, handed off by reason, abandoned), satisfaction, reply and
    resolution times, order changes and cost.
    """
    if by not in ("day", "week"):
        raise typer.BadParameter("use day or week", param_hint="--by")
    from rich.table import Table

    from agent.errors import InvalidInput
    from agent.features.report import REASONS, summary
    from agent.store.db import make_engine

    settings = load_settings()
    try:
        result = summary(
            make_engine(settings.resolved_database_url()),
            settings,
            since=since,
            by="week" if by == "week" else "day",
        )
    except InvalidInput as exc:
        raise fail(str(exc)) from exc
    if as_json:
        print(json.dumps(result.model_dump(mode="json")))
        return
    periods = [*((r.period, r) for r in result.rows), ("total", result.total)]
    outcomes = Table(by, "conversations", "resolved", "handed off", "abandoned", "ongoing")
    for key, f in periods:
        outcomes.add_row(
            key,
            str(f.conversations),
            f"{f.resolved} ({_percent(f.resolution_rate)})",
            f"{f.handed_off} ({_percent(f.hand_off_rate)})",
            f"{f.abandoned} ({_percent(f.abandonment_rate)})",
            str(f.ongoing),
        )
    console.print(outcomes)
    quality = Table(by, "thumbs up", "1st reply", "resolution", "changes", "$/conv", "$/res")
    for key, f in periods:
        quality.add_row(
            key,
            f"{_percent(f.satisfaction)} of {f.rated}" if f.rated else "-",
            _duration(f.median_first_reply_seconds),
            _duration(f.median_resolution_seconds),
            str(f.order_changes_executed),
            _dollars(f.cost_per_conversation),
            _dollars(f.cost_per_resolution),
        )
    console.print(quality)
    reasons = Table("hand-off reason", "conversations", "share of decided")
    for reason in REASONS:
        reasons.add_row(
            reason,
            str(result.total.hand_offs_by_reason.get(reason, 0)),
            _percent(result.total.hand_off_rate_by_reason.get(reason)),
        )
    console.print(reasons)
    console.print(
        f"Resolved by the bot: the customer ended the conversation, or did not come back within "
        f"{result.resolution_window_hours:g} h. Rates are of decided conversations; satisfaction "
        "is the share of thumbs up among rated ones. Medians; times from the first message."
    )
