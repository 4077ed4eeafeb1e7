"""`supportbot triage`."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from agent.cli.common import console, err, fail, open_runtime
from agent.errors import SupportbotError
from agent.models.claude import ClaudeModel
from agent.triage import grounding, read_tickets, run_batch, triage_offline


def triage(
    path: Annotated[
        Path, typer.Argument(help="Tickets: .csv (id, text or body, subject?) or .jsonl")
    ],
    out: Annotated[
        Path | None, typer.Option(help="Results, JSON Lines (default: PATH.triage.jsonl)")
    ] = None,
    poll_seconds: Annotated[float, typer.Option(help="Seconds between batch status checks")] = 10.0,
) -> None:
    """Classify many tickets (category, priority, sentiment, a suggested first reply grounded
    in the knowledge base) with the Message Batches API, or with the offline model. Re-running
    with the same input picks up the batch already created instead of paying twice."""
    runtime = open_runtime()
    try:
        tickets, problems = read_tickets(path)
    except SupportbotError as exc:
        raise fail(str(exc)) from exc
    for problem in problems:
        err.print(f"[yellow]skipped[/yellow] {escape(problem)}", soft_wrap=True)
    if not tickets:
        raise fail("no valid tickets to triage")
    out = out or path.with_suffix(".triage.jsonl")
    hits = grounding(runtime.agent.kb, tickets)
    model = runtime.agent.model
    if isinstance(model, ClaudeModel):
        with Progress(TextColumn("[bold]batch"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err, transient=True) as bar:  # fmt: skip
            task = bar.add_task("tickets", total=len(tickets))
            results, batch_id, resumed = run_batch(
                model.client, runtime.settings, model.name, tickets, hits,
                out.with_suffix(".batch.json"), poll_seconds=poll_seconds,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )  # fmt: skip
        console.print(f"batch {batch_id} ({'resumed' if resumed else 'created'})")
    else:
        err.print("[yellow]offline model[/yellow]: keyword triage")
        results = [triage_offline(t, hits[t.id]) for t in tickets]
    out.write_text("".join(r.model_dump_json() + "\n" for r in results))
    for r in results:
        if r.status != "ok":
            reason = escape(r.error or r.status)
            err.print(
                f"[red]{r.status}[/red] ticket {escape(r.ticket_id)}: {reason}", soft_wrap=True
            )
    statuses = Counter(r.status for r in results)
    categories = Counter(r.category for r in results if r.category)
    console.print(
        f"{len(results)} tickets → {out}; " + ", ".join(f"{k} {v}" for k, v in statuses.items())
    )
    console.print("categories: " + ", ".join(f"{k} {v}" for k, v in categories.most_common()))
    if statuses.get("ok", 0) < len(results) or problems:
        raise typer.Exit(2)
