"""`supportbot triage`."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from agent.cli.common import console, err, fail, open_runtime

if TYPE_CHECKING:
    from agent.config import Settings
    from agent.features.triage_batches import RunReport
    from agent.models.claude import ClaudeModel
    from kb import KnowledgeBase

FAILURES_SHOWN = 50  # errored tickets listed one by one; the rest are counted


def triage(
    path: Annotated[
        Path,
        typer.Argument(help="The tickets: a .csv (id, text or body, subject?) or .jsonl file."),
    ],
    out: Annotated[
        Path | None,
        typer.Option(help="Where the results go, as JSON Lines (default: PATH.triage.jsonl)."),
    ] = None,
    poll_seconds: Annotated[
        float, typer.Option(help="Seconds between checks of the batches' status.")
    ] = 10.0,
    max_requests: Annotated[int | None, typer.Option(hidden=True, min=1)] = None,
    max_bytes: Annotated[int | None, typer.Option(hidden=True, min=1)] = None,
) -> None:
    """Classify many tickets with the Message Batches API.

    Each ticket gets a category, a priority, a sentiment and a suggested first reply grounded
    in the knowledge base; the offline model triages with keyword rules instead. Tickets are
    split into batches within the API's limits; an interrupted run resumes where it stopped
    when re-run with the same input, and no ticket is paid for twice.
    """
    from agent.errors import SupportbotError
    from agent.features.triage import check_ticket_file, triage_offline_file
    from agent.features.triage_batches import (
        MAX_BYTES,
        MAX_REQUESTS,
        BatchesUnavailable,
        state_path,
    )
    from agent.models.claude import ClaudeModel
    from kb.embedder import set_threads

    runtime = open_runtime()
    set_threads(os.cpu_count() or 1)  # tickets are grounded in batches: every core helps
    out = out or path.with_suffix(".triage.jsonl")
    reported: set[str] = set()

    def problem(message: str) -> None:  # a fallback reads the file again: report lines once
        if message not in reported:
            reported.add(message)
            err.print(f"[yellow]skipped[/yellow] {escape(message)}", soft_wrap=True)

    model, kb = runtime.agent.model, runtime.agent.kb
    try:
        check_ticket_file(path)
        count: int | None = None
        if isinstance(model, ClaudeModel):
            try:
                report = _run_claude(model, kb, runtime.settings, path, out, problem,
                                     poll_seconds, (max_requests or MAX_REQUESTS,
                                                    max_bytes or MAX_BYTES))  # fmt: skip
                count = report.tickets
                _print_cost(runtime.settings, model.name, report)
            except BatchesUnavailable as exc:
                reason = escape(str(exc))
                err.print(f"[red]error:[/red] Claude's Message Batches API is unavailable "
                          f"({reason}); triaging offline instead", soft_wrap=True)  # fmt: skip
        else:
            err.print("[yellow]offline model[/yellow]: keyword triage")
        if count is None:
            count = triage_offline_file(kb, path, out, problem)
    except SupportbotError as exc:
        raise fail(str(exc)) from exc
    except KeyboardInterrupt:
        raise fail(
            f"interrupted; run the same command again to resume ({state_path(out).name} keeps "
            "the batches already submitted)",
            130,
        ) from None
    if count == 0:
        raise fail("no valid tickets to triage")
    ok = _summarize(out)
    if ok < count or reported:
        raise typer.Exit(2)


def _run_claude(
    model: ClaudeModel,
    kb: KnowledgeBase | None,
    settings: Settings,
    path: Path,
    out: Path,
    problem: Callable[[str], None],
    poll_seconds: float,
    limits: tuple[int, int],
) -> RunReport:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from agent.features.triage import TriageRequests
    from agent.features.triage_batches import run_batches

    with Progress(TextColumn("[bold]triage"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True) as bar:  # fmt: skip
        task = bar.add_task("tickets", total=None)
        return run_batches(
            model.client, TriageRequests(settings, model.name), kb, path, out,
            problems=problem, max_requests=limits[0], max_bytes=limits[1],
            poll_seconds=poll_seconds,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            notify=lambda line: console.print(escape(line), soft_wrap=True),
        )  # fmt: skip


def _print_cost(settings: Settings, model: str, report: RunReport) -> None:
    from agent.capabilities import family_name
    from agent.features.usage import cost

    price = settings.pricing.get(family_name(model)) or settings.pricing.get(model)
    if price is None:
        console.print(f"cost: no price for {escape(model)} (set SUPPORTBOT_PRICING)")
        return
    usage = report.usage
    dollars = cost(usage, price, batch=True)
    console.print(
        f"estimated cost ${dollars:.4f} at the Batch discount: "
        f"{usage.get('input_tokens', 0):,} input, {usage.get('output_tokens', 0):,} output, "
        f"{usage.get('cache_read_input_tokens', 0):,} cache-read, "
        f"{usage.get('cache_creation_input_tokens', 0):,} cache-write tokens",
        soft_wrap=True,
    )


def _summarize(out: Path) -> int:
    """Print failed tickets and the totals of `out`; the number of tickets triaged ok."""
    statuses: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    with out.open(encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            statuses[r["status"]] += 1
            if r.get("category"):
                categories[r["category"]] += 1
            failed = sum(n for s, n in statuses.items() if s != "ok")
            if r["status"] != "ok" and failed <= FAILURES_SHOWN:
                reason = escape(r.get("error") or r["status"])
                err.print(f"[red]{r['status']}[/red] ticket {escape(r['ticket_id'])}: {reason}",
                          soft_wrap=True)  # fmt: skip
    failed = sum(n for s, n in statuses.items() if s != "ok")
    if failed > FAILURES_SHOWN:
        err.print(f"… and {failed - FAILURES_SHOWN} more failed tickets (see {escape(str(out))})")
    total = sum(statuses.values())
    console.print(
        f"{total} tickets → {out}; " + ", ".join(f"{k} {v}" for k, v in statuses.items()),
        soft_wrap=True,
    )
    console.print("categories: " + ", ".join(f"{k} {v}" for k, v in categories.most_common()))
    return statuses.get("ok", 0)
