"""`supportbot usage`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from agent.cli.common import console, fail, load_settings

if TYPE_CHECKING:
    from agent.features.usage import GroupBy

# A date or date-time, with or without a time zone (without one it is UTC).
SINCE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S%z",
                 "%Y-%m-%d %H:%M:%S%z"]  # fmt: skip


def usage(
    since: Annotated[
        datetime | None,
        typer.Option(
            help="Only calls from this date/time on (UTC unless it names a zone).",
            formats=SINCE_FORMATS,
            metavar="DATE",
        ),
    ] = None,
    by: Annotated[str, typer.Option(help="Per day, conversation or model.")] = "day",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Show model calls, tokens and what they cost.

    Tokens by kind (input, output, cache write, cache read), the cache hit share, refusals and
    the cost from the pricing table. Offline answers and staff replies are not counted.
    """
    if by not in ("day", "conversation", "model"):
        raise typer.BadParameter("use day, conversation or model", param_hint="--by")
    settings = load_settings()
    from agent.errors import InvalidInput
    from agent.features.usage import report
    from agent.store.db import make_engine

    group: GroupBy = by  # type: ignore[assignment]
    try:
        rows, total = report(
            make_engine(settings.resolved_database_url()), settings.pricing, since=since, by=group
        )
    except InvalidInput as exc:
        raise fail(str(exc)) from exc
    if as_json:
        print(json.dumps({"rows": [r.model_dump() for r in rows], "total": total.model_dump()}))
        return
    table = Table(
        by, "calls", "input", "output", "cache write", "cache read", "cache hit", "refusals",
        "cost $",
    )  # fmt: skip
    for r in [*rows, total]:
        table.add_row(
            getattr(r, "key", "total"),
            str(r.calls),
            str(r.input_tokens),
            str(r.output_tokens),
            str(r.cache_creation_input_tokens),
            str(r.cache_read_input_tokens),
            f"{r.cache_hit_share:.0%}",
            str(r.refusals),
            "unpriced" if r.cost_usd is None else f"{r.cost_usd:.4f}",
        )
    console.print(table)
