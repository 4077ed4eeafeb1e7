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
    """Chat in the terminal, as a customer.

    Replies stream as they are written and each tool call is shown as it runs. A proposed
    order change is asked as `Confirm: … [y/N]`. When stdin is not a terminal, its lines are
    read as the customer's messages.
    """
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
    """The customer's answer to `prompt`; None at the end of input. Read from a pipe, the
    prompt is shown too, and the answer after it, so that the transcript reads as on a
    terminal (which echoes what is typed)."""
    styled = f"[bold yellow]{escape(prompt)}[/bold yellow]"
    try:
        if interactive:
            return console.input(styled)
        console.print(styled, end="", soft_wrap=True)
        answer: str | None = input()
    except EOFError:
        answer = None
    if not interactive:
        console.print(escape(answer or ""), soft_wrap=True)
    return answer


def _turn(events: Iterator[Event]) -> PendingAction | None:
    """Print a turn's events; the change it proposed, if any."""
    from agent.engine.events import ActionProposed

    pending = None
    screen = _Screen()
    for event in events:
        screen.show(event)
        if isinstance(event, ActionProposed):
            pending = event.action
    return pending


class _Screen:
    """Prints a turn's events. Streamed text may stop mid-line: whatever comes next starts on
    a line of its own."""

    def __init__(self) -> None:
        self.mid_line = False

    def stream(self, markup: str, text: str) -> None:
        console.print(markup, end="", soft_wrap=True)
        if text:
            self.mid_line = not text.endswith("\n")

    def end_line(self) -> None:
        if self.mid_line:
            console.print()
            self.mid_line = False

    def line(self, markup: str) -> None:
        self.end_line()
        console.print(markup)

    def show(self, event: Event) -> None:
        from agent.engine.events import (
            ActionProposed,
            Degraded,
            ToolFinished,
            ToolStarted,
            TurnFinished,
        )
        from agent.models.base import ProgressDelta, TextDelta
        from tools.tool_context import waits

        if isinstance(event, TextDelta):
            self.stream(escape(event.text), event.text)
        elif isinstance(event, ProgressDelta):
            self.stream(f"[dim italic]{escape(event.text)}[/dim italic]", event.text)
        elif isinstance(event, ToolStarted):
            self.line(f"[dim]→ {event.name}({escape(json.dumps(event.input))})[/dim]")
        elif isinstance(event, ToolFinished):
            if event.is_error and waits(event.content):  # not verified yet, or checks paused
                self.line(f"[dim][yellow]…[/yellow] {event.name} (waiting)[/dim]")
            else:
                mark = "[red]✗[/red]" if event.is_error else "[green]✓[/green]"
                self.line(f"[dim]{mark} {event.name}[/dim]")
        elif isinstance(event, Degraded):
            self.end_line()  # the notice goes to stderr; stdout's line ends first
            err.print(
                f"[yellow]Claude unavailable ({escape(event.reason)}); offline model[/yellow]",
                soft_wrap=True,
            )
        elif isinstance(event, ActionProposed):
            pass  # its summary is shown once, as the `Confirm: … [y/N]` prompt (chat)
        elif isinstance(event, TurnFinished):
            if event.result.settled is not None:
                status = event.result.settled[1].status.value
                self.line(f"[dim](change {escape(status)})[/dim]")
            if not event.result.reply:
                self.line(
                    "[dim](a human agent has this conversation; your message is queued)[/dim]"
                )
            self.end_line()
