"""`supportbot orders import` and `supportbot orders sweep`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from agent.cli.common import console, err, fail, load_settings

app = typer.Typer(
    help="Import order data; tell staff of changes left unknown.",
    no_args_is_help=True,
)


@app.command("import")
def import_orders(
    path: Annotated[
        Path, typer.Argument(help="A τ²-bench retail db.json, or a CSV of order lines.")
    ],
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Also replace customers and orders changed here (by the assistant or staff) "
            "since their last import, undoing those changes. They are listed first.",
        ),
    ] = False,
) -> None:
    """Import customers, orders and products from a file.

    Idempotent: importing twice changes nothing. A bad record is reported and skipped (exit
    code 2). A customer or order changed here since its last import is kept and listed as a
    conflict, unless --overwrite.
    """
    from agent.errors import SupportbotError
    from agent.store.db import make_engine
    from agent.store.importer import import_path

    settings = load_settings()
    try:
        report = import_path(make_engine(settings.resolved_database_url()), path,
                             overwrite=overwrite)  # fmt: skip
    except SupportbotError as exc:
        raise fail(str(exc)) from exc
    what = "[red]overwritten[/red]" if overwrite else "[yellow]kept[/yellow]"
    for conflict in report.conflicts:
        err.print(f"{what} {escape(conflict)}", soft_wrap=True)
    if report.conflicts and not overwrite:
        err.print("Changes made here were kept; `--overwrite` replaces them with the file's.")
    for problem in report.problems:
        err.print(f"[yellow]skipped[/yellow] {escape(problem)}", soft_wrap=True)
    for label, tally in (("products", report.products), ("customers", report.customers),
                         ("orders", report.orders)):  # fmt: skip
        if label != "products" or tally.created + tally.updated + tally.unchanged:
            extra = f", {tally.kept} kept" if tally.kept else ""
            extra += f", {tally.overwritten} overwritten" if tally.overwritten else ""
            console.print(f"{label}: {tally.created} created, {tally.updated} updated, "
                          f"{tally.unchanged} unchanged{extra}")  # fmt: skip
    console.print(f"skipped: {len(report.problems)}")
    if report.problems:
        raise typer.Exit(2)


@app.command("sweep")
def sweep() -> None:
    """Tell staff of changes whose sender died mid-call.

    A change sent to the shop's order system by a process that died mid-call stays unknown:
    each one still "being sent" past the grace period (ten minutes or more, from the
    connector's timeouts) whose turn no longer runs gets one ticket, and is never sent again.
    `serve` does this as it starts and every five minutes; this command does it once and lists
    the changes it found.
    """
    from agent.adapters.order_systems import connector_spec
    from agent.errors import SupportbotError
    from agent.features.lost_sends import grace_seconds
    from agent.features.lost_sends import sweep as sweep_lost
    from agent.store.db import make_engine

    settings = load_settings()
    try:
        grace = grace_seconds(connector_spec(settings), settings.turn_lease_seconds)
        told = sweep_lost(make_engine(settings.resolved_database_url()), grace=grace)
    except SupportbotError as exc:
        raise fail(str(exc)) from exc
    for action_id in told:
        console.print(f"action {action_id}: outcome never recorded; a ticket for staff")
    console.print(f"{len(told)} change(s) sent with their outcome never recorded, told to staff")
