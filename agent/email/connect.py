"""Connections to the shop's mail servers, as the settings describe them: IMAP (implicit TLS,
STARTTLS, or plain on a trusted network) and SMTP (the same three), with the system's CA
certificates or SUPPORTBOT_EMAIL_TLS_CA_FILE's."""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from typing import Any

from agent.config import Settings


class MailSetupError(Exception):
    """A mail setting is missing: says which."""


def tls_context(settings: Settings) -> ssl.SSLContext:
    ca = settings.email_tls_ca_file
    return ssl.create_default_context(cafile=str(ca) if ca else None)


def connect_imap(settings: Settings) -> Any:
    """A logged-in IMAPClient (the caller logs out)."""
    from imapclient import IMAPClient

    where = settings.email_imap()
    if where is None:
        raise MailSetupError("SUPPORTBOT_EMAIL_IMAP_HOST is not set")
    if not settings.email_imap_user or settings.email_imap_password is None:
        raise MailSetupError("SUPPORTBOT_EMAIL_IMAP_USER and _PASSWORD must be set")
    host, port = where
    mode = settings.email_imap_tls
    client = IMAPClient(
        host,
        port=port,
        ssl=mode == "ssl",
        ssl_context=tls_context(settings),
        timeout=settings.email_timeout_seconds,
    )
    try:
        if mode == "starttls":
            client.starttls(tls_context(settings))
        client.login(settings.email_imap_user, settings.email_imap_password.get_secret_value())
    except BaseException:
        with contextlib.suppress(Exception):
            client.shutdown()
        raise
    return client


def connect_smtp(settings: Settings) -> smtplib.SMTP:
    """A connected SMTP client, TLS on and logged in where the settings say (the caller quits)."""
    where = settings.email_smtp()
    if where is None:
        raise MailSetupError("SUPPORTBOT_EMAIL_SMTP_HOST is not set")
    host, port = where
    mode = settings.email_smtp_tls
    timeout = settings.email_timeout_seconds
    client: smtplib.SMTP
    if mode == "ssl":
        client = smtplib.SMTP_SSL(host, port, timeout=timeout, context=tls_context(settings))
    else:
        client = smtplib.SMTP(host, port, timeout=timeout)
    try:
        client.ehlo()
        if mode == "starttls":
            client.starttls(context=tls_context(settings))
            client.ehlo()
        if settings.email_smtp_user:
            password = settings.email_smtp_password
            client.login(settings.email_smtp_user, password.get_secret_value() if password else "")
    except BaseException:
        client.close()
        raise
    return client
