"""`supportbot email run` and `supportbot email check`: the email channel."""

from __future__ import annotations

import signal
import threading

import typer
from rich.markup import escape

from agent.cli.common import console, fail, load_settings

app = typer.Typer(
    help="Email as a channel: run it, or check its connections.", no_args_is_help=True
)


@app.command("check")
def check() -> None:
    """Test the connections to the mail servers, one line each.

    Logs in to the IMAP mailbox and opens its folder (or says where LMTP/SMTP mail is
    received), then connects to the SMTP server as replies will and asks it to accept mail
    from the shop's address, sending nothing. Exit code 1 on any problem.
    """
    from agent.email.check import check as run_check

    settings = load_settings()
    findings = run_check(settings)
    for finding in findings:
        mark = "[green]ok[/green]     " if finding.ok else "[red]problem[/red]"
        console.print(f"{mark} {escape(finding.text)}", soft_wrap=True)
    if any(not f.ok for f in findings):
        raise typer.Exit(1)


@app.command("run")
def run() -> None:
    """Answer email until stopped: mailbox in, replies out.

    Reads the shop's mailbox over IMAP (IDLE where offered, polling otherwise), or receives
    mail over LMTP or SMTP on SUPPORTBOT_EMAIL_LISTEN_PORT (SUPPORTBOT_EMAIL_INBOUND), runs
    each message as a customer turn, and sends the outbox over SMTP. Run one beside
    `supportbot serve` (which serves the confirmation links); Ctrl-C or SIGTERM stops it,
    and a later start resumes where it stopped.
    """
    from agent.email.service import EmailService, email_runtime
    from agent.errors import SupportbotError

    settings = load_settings()
    if not settings.email_address:
        raise fail("Set SUPPORTBOT_EMAIL_ADDRESS, the shop's support address.")
    if settings.email_inbound == "imap" and not settings.email_imap_host:
        raise fail("Set SUPPORTBOT_EMAIL_IMAP_HOST (or SUPPORTBOT_EMAIL_INBOUND=lmtp).")
    if not settings.email_smtp_host:
        raise fail("Set SUPPORTBOT_EMAIL_SMTP_HOST: replies go out over SMTP.")
    try:
        service = EmailService(email_runtime(settings))
    except SupportbotError as exc:
        raise fail(str(exc)) from exc
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    service.start()
    inbound = (
        f"IMAP {settings.email_imap_user} at {settings.email_imap_host}"
        if settings.email_inbound == "imap"
        else f"{settings.email_inbound.upper()} on {settings.email_listen_host}:"
        f"{settings.email_listen_port}"
    )
    console.print(
        f"answering {escape(settings.email_address)}: {escape(inbound)}; Ctrl-C stops",
        soft_wrap=True,
    )
    stop.wait()
    service.stop()
