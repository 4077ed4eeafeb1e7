"""`supportbot ask` and `supportbot chat`: customer turns from the terminal."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from agent.cli.common import console, err, fail, open_runtime

if TYPE_CHECKING:
    from agent.engine.events import Event, TurnResult
    from agent.engine.port import PendingAction
    from agent.runtime import Runtime


def _customer_id(runtime: Runtime, email: str | None) -> str | None:
    from agent.errors import InvalidInput
    from agent.features.customers import vouched_customer
    from agent.store.db import transaction
    from tools.tool_context import ToolError

    if email is None:
        return None
    try:
        with transaction(runtime.engine) as session:
            return vouched_customer(session, runtime.orders(session), email)
    except InvalidInput:
        hint = "" if runtime.connector else " Import orders first: supportbot orders import"
        raise fail(f"No customer with email {email}.{hint}") from None
    except ToolError as exc:
        raise fail(str(exc).split(". Tell")[0] + ".") from None


CustomerOpt = Annotated[
    str | None,
    typer.Option("--customer", help="Bind the conversation to this customer's email (trusted)."),
]


def ask(
    question: Annotated[str, typer.Argument(help="The customer's message.")],
    customer: CustomerOpt = None,
    conversation: Annotated[
        str | None, typer.Option("--conversation", help="Continue this conversation.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Run one customer turn and print the reply."""
    from agent.errors import SupportbotError

    runtime = open_runtime()
    try:
        if conversation is None:
            conversation = runtime.agent.start_conversation(
                customer_id=_customer_id(runtime, customer), channel="cli"
            )
        elif customer is not None:
            raise fail("--customer binds a new conversation; drop it with --conversation")
        result = runtime.agent.ask(conversation, question)
    except SupportbotError as exc:
        raise fail(str(exc)) from exc
    if as_json:
        print(json.dumps(_result_json(result), ensure_ascii=False))
    else:
        if runtime.offline or result.degraded:
            err.print("[yellow]offline model[/yellow]", soft_wrap=True)
        console.print(result.reply or "(queued for a human agent)")


def _result_json(result: TurnResult) -> dict[str, object]:
    return {
        "conversation_id": result.conversation_id,
        "reply": result.reply,
        "outcome": result.outcome.value,
        "tool_calls": [asdict(c) for c in result.tool_calls],
        "degraded": result.degraded,
        "model": result.model,
        "usage": result.usage,
        "pending_action": _pending_json(result.pending_action),
        "action": (
            {"id": result.settled[0].id, "status": result.settled[1].status.value}
            if result.settled
            else None
        ),
    }


def _pending_json(pending: PendingAction | None) -> dict[str, str] | None:
    if pending is None:
        return None
    return {"id": pending.id, "tool": pending.tool, "summary": pending.summary,
            "expires_at": pending.expires_at.isoformat()}  # fmt: skip


def chat(customer: CustomerOpt = None) -> None:
    """Chat in the terminal. Reads lines from stdin when it is not a terminal."""
    from agent.engine.loop import Said
    from agent.engine.port import Decision
    from agent.errors import SupportbotError

    runtime = open_runtime()
    conversation = runtime.agent.start_conversation(
        customer_id=_customer_id(runtime, customer), channel="cli"
    )
    interactive = sys.stdin.isatty()
    mode = "offline model" if runtime.offline else f"Claude ({runtime.settings.model})"
    if interactive:
        console.print(
            f"[bold]{runtime.settings.company_name} support[/bold] · {mode} · "
            f"conversation {conversation}\nType your message; Ctrl-D to quit."
        )
    while True:
        try:
            line = console.input("[bold cyan]you>[/bold cyan] ") if interactive else input()
        except EOFError:
            break
        if not line.strip():
            continue
        try:
            pending = _turn(runtime.agent.turn(conversation, Said(line), stream=True).events())
            while pending is not None:  # a proposed change: the customer answers y/N
                answer = _read(f"Confirm: {pending.summary} [y/N] ", interactive)
                confirm = answer is not None and answer.strip().lower() in ("y", "yes")
                decision = Decision(pending.id, confirm, "customer")
                pending = _turn(runtime.agent.turn(conversation, decision, stream=True).events())
        except SupportbotError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)


def _read(prompt: str, interactive: bool) -> str | None:
    try:
        return console.input(f"[bold yellow]{escape(prompt)}[/bold yellow]") if interactive \
            else input()  # fmt: skip
    except EOFError:
        return None


def _turn(events: Iterator[Event]) -> PendingAction | None:
    """Print a turn's events; the change it proposed, if any."""
    from agent.engine.events import ActionProposed

    pending = None
    for event in events:
        _print_event(event)
        if isinstance(event, ActionProposed):
            pending = event.action
    return pending


def _print_event(event: Event) -> None:
    from agent.engine.events import (
        ActionProposed,
        Degraded,
        ToolFinished,
        ToolStarted,
        TurnFinished,
    )
    from agent.models.base import ProgressDelta, TextDelta

    if isinstance(event, TextDelta):
        console.print(escape(event.text), end="", soft_wrap=True)
    elif isinstance(event, ProgressDelta):
        console.print(f"[dim italic]{escape(event.text)}[/dim italic]", end="", soft_wrap=True)
    elif isinstance(event, ToolStarted):
        console.print(f"[dim]→ {event.name}({escape(json.dumps(event.input))})[/dim]")
    elif isinstance(event, ToolFinished):
        mark = "[red]✗[/red]" if event.is_error else "[green]✓[/green]"
        console.print(f"[dim]{mark} {event.name}[/dim]")
    elif isinstance(event, Degraded):
        err.print(
            f"[yellow]Claude unavailable ({escape(event.reason)}); offline model[/yellow]",
            soft_wrap=True,
        )
    elif isinstance(event, ActionProposed):
        console.print(f"[bold]Proposed:[/bold] {escape(event.action.summary)}")
    elif isinstance(event, TurnFinished):
        if event.result.settled is not None:
            status = event.result.settled[1].status.value
            console.print(f"[dim](change {escape(status)})[/dim]")
        if not event.result.reply:
            console.print(
                "[dim](a human agent has this conversation; your message is queued)[/dim]"
            )
        console.print()
