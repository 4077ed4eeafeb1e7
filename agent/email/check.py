"""`supportbot email check`: both connections tried as `email run` makes them, each said in one
line: what works, or what is wrong in words an operator acts on."""

from __future__ import annotations

import smtplib
import socket
import ssl
from dataclasses import dataclass

from agent.config import Settings
from agent.email.connect import MailSetupError, connect_imap, connect_smtp


@dataclass(frozen=True)
class Finding:
    ok: bool
    text: str


def _why(exc: BaseException, where: str) -> str:
    """An exception as an operator reads it."""
    from imapclient.exceptions import LoginError

    if isinstance(exc, MailSetupError):
        return str(exc)
    if isinstance(exc, ConnectionRefusedError):
        return f"nothing answers at {where} (connection refused)"
    if isinstance(exc, socket.gaierror):
        return f"{where.rpartition(':')[0]} is not a host name we can resolve"
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"{where} did not answer in time"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"{where}: its TLS certificate is not trusted ({exc.verify_message}); "
            "set SUPPORTBOT_EMAIL_TLS_CA_FILE for a private CA"
        )
    if isinstance(exc, ssl.SSLError):
        return f"{where}: TLS failed ({exc.reason or exc}); check the TLS mode and port"
    if isinstance(exc, LoginError | smtplib.SMTPAuthenticationError):
        return f"{where} refused the user name or password"
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return f"{where}: {exc} (check the TLS mode: starttls, ssl or none)"
    text = str(exc).strip() or type(exc).__name__
    return f"{where}: {text}"


def check_imap(settings: Settings) -> Finding:
    where_pair = settings.email_imap()
    where = f"{where_pair[0]}:{where_pair[1]}" if where_pair else "IMAP"
    try:
        client = connect_imap(settings)
    except Exception as exc:
        return Finding(False, f"imap: {_why(exc, where)}")
    try:
        folder = settings.email_imap_folder
        if not client.folder_exists(folder):
            return Finding(False, f"imap: {where}: no folder {folder!r} for this user")
        info = client.select_folder(folder)  # read-write: EXAMINE shows no PERMANENTFLAGS
        count = int(info.get(b"EXISTS", 0))
        permanent = info.get(b"PERMANENTFLAGS", ())
        if settings.email_imap_handled == "flag" and b"\\*" not in permanent:
            return Finding(
                False,
                f"imap: {where}: {folder} keeps no keywords of our own, so "
                "handled mail cannot be flagged; set "
                "SUPPORTBOT_EMAIL_IMAP_HANDLED=move",
            )
        idle = "IDLE" if client.has_capability("IDLE") else "no IDLE: polling"
        return Finding(
            True,
            f"imap: {settings.email_imap_user} at {where} ({settings.email_imap_tls}"
            f"), {folder}: {count} message(s), {idle}",
        )
    except Exception as exc:
        return Finding(False, f"imap: {_why(exc, where)}")
    finally:
        try:
            client.logout()
        except Exception:
            client.shutdown()


def check_smtp(settings: Settings) -> Finding:
    where_pair = settings.email_smtp()
    where = f"{where_pair[0]}:{where_pair[1]}" if where_pair else "SMTP"
    if not settings.email_address:
        return Finding(False, "smtp: SUPPORTBOT_EMAIL_ADDRESS (the shop's address) is not set")
    try:
        client = connect_smtp(settings)
    except Exception as exc:
        return Finding(False, f"smtp: {_why(exc, where)}")
    try:
        # The sender as replies will give it (nothing is sent: RSET before any recipient).
        code, answer = client.mail(settings.email_address)
        if code >= 400:
            return Finding(
                False,
                f"smtp: {where} refuses to send from {settings.email_address} "
                f"({code} {answer.decode(errors='replace')})",
            )
        client.rset()
        auth = f"as {settings.email_smtp_user}" if settings.email_smtp_user else "no login"
        return Finding(
            True,
            f"smtp: {where} ({settings.email_smtp_tls}, {auth}) accepts mail "
            f"from {settings.email_address}",
        )
    except Exception as exc:
        return Finding(False, f"smtp: {_why(exc, where)}")
    finally:
        try:
            client.quit()
        except Exception:
            client.close()


def check(settings: Settings) -> list[Finding]:
    findings = []
    if settings.email_inbound == "imap":
        findings.append(check_imap(settings))
    else:
        findings.append(
            Finding(
                True,
                f"{settings.email_inbound}: `email run` receives mail on "
                f"{settings.email_listen_host}:{settings.email_listen_port}",
            )
        )
    findings.append(check_smtp(settings))
    return findings
