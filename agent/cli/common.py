"""What every command shares: settings, consoles, errors."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from agent.config import Settings
    from agent.runtime import Runtime

# Each command imports what it needs when it runs: `supportbot --help` and a group's help
# load typer and rich only (heavy imports — the database, the SDK, the encoder — cost seconds).

console = Console()
err = Console(stderr=True)


def load_settings() -> Settings:
    from agent.config import Settings

    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    if settings.log_format == "json":  # as the server logs (imported only when asked for)
        from agent.observability import logs

        logs.configure(settings)
    return settings


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print a clear error and return the Exit to raise."""
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def open_runtime() -> Runtime:
    """The product wired from the environment; a configuration error exits with its message."""
    from agent.errors import SupportbotError
    from agent.models.claude import check_provider
    from agent.runtime import build_runtime

    settings = load_settings()
    try:
        check_provider(settings)
        return build_runtime(settings)
    except SupportbotError as exc:
        raise fail(str(exc)) from exc
