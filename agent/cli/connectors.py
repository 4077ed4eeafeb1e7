"""`supportbot connectors check`: is the shop's order system reachable and mapped right."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from agent.cli.common import console, fail, load_settings

app = typer.Typer(help="Check the connector to the shop's own order system.",
                  no_args_is_help=True)  # fmt: skip


@app.command("check")
def check(
    file: Annotated[
        Path | None,
        typer.Option("--file", help="A connector file (default: the one the settings name)."),
    ] = None,
    email: Annotated[
        str | None,
        typer.Option("--email", help="Also read this customer and their newest order."),
    ] = None,
) -> None:
    """Check a connector against the live order system.

    Every mapped tool exists, its arguments fit the tool's schema, and a sample read works.
    One line per finding; exit code 1 on any problem.
    """
    from agent.adapters.connectors.check import check as run_check
    from agent.adapters.connectors.spec import ConnectorError, load
    from agent.adapters.order_systems import connector_spec

    settings = load_settings()
    try:
        spec = load(file) if file is not None else connector_spec(settings)
    except ConnectorError as exc:
        raise fail(str(exc)) from exc
    if spec is None:
        raise fail("No connector: set SUPPORTBOT_CONNECTOR_FILE or SUPPORTBOT_TAU2_SERVER, or "
                   "give --file. Without one, supportbot uses its built-in store.")  # fmt: skip
    findings = run_check(spec, email=email)
    for finding in findings:
        mark = "[green]ok[/green]     " if finding.ok else "[red]problem[/red]"
        console.print(f"{mark} {escape(finding.text)}", soft_wrap=True)
    problems = sum(not f.ok for f in findings)
    if problems:
        console.print(f"{problems} problem(s) with connector {escape(spec.name)}.")
        raise typer.Exit(1)
    console.print(f"Connector {escape(spec.name)} is ready.")
