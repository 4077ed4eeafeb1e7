"""`supportbot staff`: the accounts people sign in to the desk (/staff) with."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from agent.cli.common import console, fail, load_settings

app = typer.Typer(help="Manage the staff accounts of the desk (/staff).", no_args_is_help=True)

Username = Annotated[str, typer.Argument(help="What they sign in with, e.g. anna.")]
PasswordStdin = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from standard input (scripts)."),
]


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


def _run(change: str, **kwargs: object) -> tuple[int, str, str]:
    from agent.errors import SupportbotError
    from agent.store import staff
    from agent.store.db import make_engine, transaction

    settings = load_settings()
    try:
        with transaction(make_engine(settings.resolved_database_url())) as session:
            account = getattr(staff, change)(session=session, **kwargs)
            return (account.id, account.username, account.display_name)
    except SupportbotError as exc:
        raise fail(str(exc)) from exc


@app.command("add")
def add(
    username: Username,
    name: Annotated[str, typer.Option(help="The name customers and colleagues see.")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a staff account for the desk.

    The password (at least 10 characters) is asked for twice, or read from standard input
    with --password-stdin.
    """
    password = _password(password_stdin)
    account_id, login, display = _run(
        "create_account", username=username, display_name=name, password=password
    )
    console.print(f"staff account {account_id}: {login} ({display}); sign in at /staff")


@app.command("list")
def list_(
    all_: Annotated[bool, typer.Option("--all", help="Include disabled accounts.")] = False,
) -> None:
    """List the staff accounts."""
    from agent.store import staff
    from agent.store.db import make_engine, transaction

    settings = load_settings()
    with transaction(make_engine(settings.resolved_database_url())) as session:
        accounts = staff.list_accounts(session=session, include_disabled=all_)
        rows = [(str(a.id), a.username, a.display_name, a.disabled) for a in accounts]
    table = Table("id", "username", "name", "disabled")
    for account_id, login, display, disabled in rows:
        table.add_row(account_id, login, display, "yes" if disabled else "")
    console.print(table)


@app.command("password")
def password(username: Username, password_stdin: PasswordStdin = False) -> None:
    """Set a new password for an account.

    Every sign-in of the account ends at once.
    """
    _run("update_account", username=username, password=_password(password_stdin))
    console.print(f"new password set for {username}; their sign-ins were ended")


@app.command("rename")
def rename(
    username: Username,
    name: Annotated[str, typer.Option(help="The new display name.")],
) -> None:
    """Change the name customers and colleagues see."""
    _run("update_account", username=username, display_name=name)
    console.print(f"{username} is now shown as {name}")


@app.command("disable")
def disable(username: Username) -> None:
    """Disable an account, ending its sign-ins at once.

    It can no longer sign in until `staff enable`.
    """
    _run("update_account", username=username, disabled=True)
    console.print(f"{username} disabled")


@app.command("enable")
def enable(username: Username) -> None:
    """Enable a disabled account again."""
    _run("update_account", username=username, disabled=False)
    console.print(f"{username} enabled")
