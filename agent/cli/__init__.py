"""The `supportbot` command: one typer app, one module per command group."""

from __future__ import annotations

import typer

from agent.cli import (
    chat,
    connectors,
    db,
    email,
    kb,
    orders,
    report,
    serve,
    staff,
    triage,
    usage,
)

# Help texts: a one-sentence summary that fits the command list of an 80-column terminal, a
# blank line, then the details. Markdown mode reflows each paragraph to the terminal's width
# (rich mode would keep the docstring's own line breaks, mid-sentence).
app = typer.Typer(
    help="supportbot: a customer-support agent on Claude.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)
app.command()(chat.ask)
app.command()(chat.chat)
app.command()(kb.ingest)
app.add_typer(orders.app, name="orders")
app.command()(serve.serve)
app.command()(usage.usage)
app.command()(report.report)
app.command()(triage.triage)
app.add_typer(kb.app, name="kb")
app.add_typer(serve.keys_app, name="keys")
app.add_typer(staff.app, name="staff")
app.add_typer(db.app, name="db")
app.add_typer(connectors.app, name="connectors")
app.add_typer(email.app, name="email")

__all__ = ["app"]
