"""Mail coming in: read from the shop's mailbox over IMAP (IDLE where the server offers it,
polling otherwise), or received directly over LMTP or SMTP on a port of our own. Either way a
message is first kept whole in the database (once per Message-ID), and only then marked as
handled in the mailbox (flagged or moved) or acknowledged to the sending server: a crash in
between fetches or delivers it again, and the copy is recognised."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from agent.config import Settings
from agent.email.connect import connect_imap
from agent.email.parse import parse
from agent.store import email as mail_store
from agent.store.db import transaction

log = logging.getLogger(__name__)

HANDLED = b"$SupportbotHandled"


def receive(engine: Engine, raw: bytes, *, source: str, size: int | None = None) -> bool:
    """Keep a message that arrived; whether it is new (False: the same Message-ID again)."""
    mail = parse(raw)
    with transaction(engine) as session:
        _, created = mail_store.store_inbound(
            session=session,
            message_id=mail.message_id,
            source=source,
            raw=raw,
            size=size if size is not None else len(raw),
            sender=mail.sender,
            subject=mail.subject,
        )
    return created


class ImapInbound:
    """The shop's mailbox, read over IMAP."""

    def __init__(
        self, settings: Settings, engine: Engine, on_stored: Callable[[], None] | None = None
    ) -> None:
        self.settings, self.engine, self.on_stored = settings, engine, on_stored

    def fetch_once(self, client: Any | None = None) -> int:
        """Store every message in the folder not yet handled, then flag or move it; returns
        how many were new."""
        own = client is None
        client = client or connect_imap(self.settings)
        try:
            folder = self.settings.email_imap_folder
            client.select_folder(folder)
            moving = self.settings.email_imap_handled == "move"
            uids = client.search(["ALL"] if moving else ["UNKEYWORD", HANDLED.decode()])
            new = 0
            limit = self.settings.email_max_message_bytes
            for uid in uids:
                sizes = client.fetch([uid], ["RFC822.SIZE"])
                size = int(sizes.get(uid, {}).get(b"RFC822.SIZE", 0))
                # Beyond the limit only the headers are kept (the message is still answered,
                # saying it was too large); BODY.PEEK leaves \\Seen alone.
                part = b"BODY[HEADER]" if size > limit else b"BODY[]"
                fetched = client.fetch([uid], [part.replace(b"BODY", b"BODY.PEEK").decode()])
                raw = fetched.get(uid, {}).get(part)
                if raw is None:
                    continue
                new += receive(self.engine, bytes(raw), source="imap", size=size)
                self._handled(client, uid)
            if new and self.on_stored:
                self.on_stored()
            return new
        finally:
            if own:
                _logout(client)

    def _handled(self, client: Any, uid: int) -> None:
        if self.settings.email_imap_handled == "move":
            target = self.settings.email_imap_handled_folder
            if not client.folder_exists(target):
                client.create_folder(target)
            if client.has_capability("MOVE"):
                client.move([uid], target)
            else:
                client.copy([uid], target)
                client.delete_messages([uid])
                client.expunge()
        else:
            client.add_flags([uid], [HANDLED, b"\\Seen"])

    def run(self, stop: threading.Event) -> None:
        """Fetch until `stop`: waiting in IDLE where the server offers it (renewed every
        poll interval), else polling; reconnecting with a back-off after any failure."""
        backoff = 1.0
        while not stop.is_set():
            client = None
            try:
                client = connect_imap(self.settings)
                idle = client.has_capability("IDLE")
                backoff = 1.0
                while not stop.is_set():
                    self.fetch_once(client)
                    if idle:
                        self._idle(client, stop)
                    else:
                        stop.wait(self.settings.email_poll_seconds)
            except Exception as exc:
                log.warning("IMAP: %s; reconnecting in %.0f s", exc, backoff)
                stop.wait(backoff)
                backoff = min(300.0, backoff * 2)
            finally:
                if client is not None:
                    _logout(client)

    def _idle(self, client: Any, stop: threading.Event) -> None:
        client.idle()
        try:
            waited = 0.0
            while not stop.is_set() and waited < self.settings.email_poll_seconds:
                step = min(5.0, self.settings.email_poll_seconds)
                if client.idle_check(timeout=step):
                    break  # something arrived (or changed): fetch
                waited += step
        finally:
            client.idle_done()


def _logout(client: Any) -> None:
    try:
        client.logout()
    except Exception:
        with contextlib.suppress(Exception):
            client.shutdown()


class _Handler:
    """aiosmtpd handler: a message for the shop's address is kept, then acknowledged."""

    def __init__(
        self, settings: Settings, engine: Engine, on_stored: Callable[[], None] | None
    ) -> None:
        self.settings, self.engine, self.on_stored = settings, engine, on_stored
        self.address = (settings.email_address or "").lower()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.lower() != self.address:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        import asyncio

        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        try:
            await asyncio.to_thread(receive, self.engine, raw, source="lmtp")
        except Exception:
            log.exception("could not keep a message received over LMTP/SMTP")
            return "451 4.3.0 Try again later"
        if self.on_stored:
            self.on_stored()
        return "250 2.0.0 OK"


def mail_receiver(
    settings: Settings, engine: Engine, on_stored: Callable[[], None] | None = None
) -> Any:
    """An LMTP or SMTP server on SUPPORTBOT_EMAIL_LISTEN_HOST:PORT (aiosmtpd's threaded
    controller: `.start()`, `.stop()`)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.lmtp import LMTP
    from aiosmtpd.smtp import SMTP

    handler = _Handler(settings, engine, on_stored)
    limit = settings.email_max_message_bytes
    lmtp = settings.email_inbound == "lmtp"

    class Receiver(Controller):
        def factory(self) -> SMTP:
            server_class = LMTP if lmtp else SMTP
            return server_class(self.handler, data_size_limit=limit, enable_SMTPUTF8=True)

    return Receiver(
        handler,
        hostname=settings.email_listen_host,
        port=settings.email_listen_port,
        ready_timeout=30,
    )
