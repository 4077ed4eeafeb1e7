"""The email tests' rig: a shop mailbox of its own on the session's Dovecot, supportbot's
settings pointed at it (IMAP with STARTTLS, SMTP with STARTTLS and AUTH, the test CA), the
retail slice imported, and helpers to write to the shop as a customer and read what came
back."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from agent.config import Settings
from agent.email.inbound import ImapInbound
from agent.email.outbox import OutboxSender
from agent.email.process import Processor
from agent.email.service import email_runtime
from agent.runtime import Runtime
from agent.store.importer import import_path
from tests.mail_servers import PASSWORD, SMTP_PASSWORD, SMTP_USER, MailServers

LINK_SECRET = "link-secret-for-tests"
LINK_BASE = "http://127.0.0.1:9"


def mail_settings(servers: MailServers, shop: str, **overrides: Any) -> dict[str, Any]:
    dovecot = servers.dovecot
    values: dict[str, Any] = {
        "email_address": shop,
        "email_imap_host": "127.0.0.1",
        "email_imap_port": dovecot.imap_port,
        "email_imap_tls": "starttls",
        "email_imap_user": shop,
        "email_imap_password": PASSWORD,
        "email_smtp_host": "127.0.0.1",
        "email_smtp_port": servers.smtp.port,
        "email_smtp_tls": "starttls",
        "email_smtp_user": SMTP_USER,
        "email_smtp_password": SMTP_PASSWORD,
        "email_tls_ca_file": dovecot.ca_file,
        "email_link_secret": LINK_SECRET,
        "email_link_base_url": LINK_BASE,
        "email_retry_seconds": 1.0,
    }
    values.update(overrides)
    return values


@dataclass
class MailRig:
    servers: MailServers
    runtime: Runtime
    shop: str
    dns: Any = None

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    def write(
        self,
        sender: str,
        subject: str,
        body: str,
        *,
        html: str | None = None,
        headers: dict[str, str] | None = None,
        reply_to: EmailMessage | None = None,
        attachments: list[tuple[str, str, bytes]] | None = None,
    ) -> EmailMessage:
        """A customer's email to the shop, delivered into its mailbox over LMTP."""
        message = EmailMessage()
        message["From"] = sender
        message["To"] = self.shop
        message["Subject"] = subject
        message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "example.com")
        if reply_to is not None:
            message["In-Reply-To"] = reply_to["Message-ID"]
            refs = f"{reply_to.get('References', '')} {reply_to['Message-ID']}".strip()
            message["References"] = refs
        for name, value in (headers or {}).items():
            message[name] = value
        message.set_content(body)
        if html is not None:
            message.add_alternative(html, subtype="html")
        for name, ctype, data in attachments or []:
            maintype, _, subtype = ctype.partition("/")
            message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
        self.deliver(message)
        return message

    def deliver(self, message: EmailMessage | bytes) -> None:
        self.servers.dovecot.deliver(message, self.shop, sender="customer@example.net")

    def fetch(self) -> int:
        return ImapInbound(self.settings, self.runtime.engine).fetch_once()

    def process(self) -> int:
        return Processor(self.runtime, dns=self.dns).process_pending()

    def send(self) -> int:
        return OutboxSender(self.settings, self.runtime.engine).send_pending()

    def cycle(self) -> None:
        """One round of everything `supportbot email run` does."""
        self.fetch()
        self.process()
        self.send()

    def inbox(self, address: str) -> list[EmailMessage]:
        """What `address` received, oldest first."""
        return [
            message_from_bytes(raw, policy=policy.default)  # type: ignore[misc]
            for raw in self.servers.dovecot.messages(address)
        ]


def body_of(message: EmailMessage, subtype: str = "plain") -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None, f"no text/{subtype} part"
    return str(part.get_content())


def make_rig(servers: MailServers, make_settings: Any, fixture: Any, **overrides: Any) -> MailRig:
    shop = f"shop-{uuid.uuid4().hex[:10]}@shop.test"
    servers.dovecot.wait_for_user(shop)
    runtime = email_runtime(make_settings(**mail_settings(servers, shop, **overrides)))
    import_path(runtime.engine, fixture)
    return MailRig(servers, runtime, shop)
