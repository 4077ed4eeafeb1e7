"""Sending the outbox over SMTP. A reply is claimed, sent and marked sent; a server that is
down or answers with a temporary error leaves it to be tried again with a back-off (nothing is
lost); a recipient the server refuses for good is marked refused, not retried. Each reply keeps
its Message-ID however often it is tried, and is sent once as far as SMTP allows: only a crash
between the server's acceptance and our mark can send it twice (with the same Message-ID, which
mail programs show once)."""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine

from agent.config import Settings
from agent.domain import utcnow
from agent.email.compose import compose
from agent.email.connect import connect_smtp
from agent.store import email as mail_store
from agent.store.db import transaction

log = logging.getLogger(__name__)

CLAIM = timedelta(minutes=5)


def from_name(settings: Settings) -> str:
    return settings.email_from_name or f"{settings.company_name} Support"


class OutboxSender:
    def __init__(
        self, settings: Settings, engine: Engine, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.settings, self.engine, self.clock = settings, engine, clock

    def send_pending(self, limit: int = 1000) -> int:
        """Send the replies due now; returns how many went out. Stops at the first failure
        to reach the server (the rest wait for the next round)."""
        sent = 0
        client: smtplib.SMTP | None = None
        try:
            for _ in range(limit):
                with transaction(self.engine) as session:
                    row = mail_store.claim_outbox(session=session, now=self.clock(), hold=CLAIM)
                    if row is None:
                        break
                    assert row.id is not None
                    row_id, message = row.id, compose(row, from_name=from_name(self.settings))
                    sender, to = row.from_address, row.to_address
                try:
                    client = client or connect_smtp(self.settings)
                    client.send_message(message, from_addr=sender, to_addrs=[to])
                except (
                    smtplib.SMTPRecipientsRefused,
                    smtplib.SMTPSenderRefused,
                    smtplib.SMTPDataError,
                ) as exc:
                    code = _code(exc)
                    if code is not None and code >= 500:
                        self._done(row_id, "refused", f"{type(exc).__name__}: {exc}")
                        log.warning("reply %d refused by the SMTP server: %s", row_id, exc)
                        continue
                    self._retry(row_id, exc)
                    _close(client)
                    client = None
                    break
                except (OSError, smtplib.SMTPException) as exc:
                    self._retry(row_id, exc)
                    _close(client)
                    client = None
                    break
                self._done(row_id, "sent")
                sent += 1
        finally:
            _close(client)
        return sent

    def _done(self, row_id: int, state: str, error: str | None = None) -> None:
        with transaction(self.engine) as session:
            mail_store.outbox_done(session=session, outbox_id=row_id, state=state, error=error)

    def _retry(self, row_id: int, exc: BaseException) -> None:
        log.warning("reply %d not sent (%s); trying again later", row_id, exc)
        with transaction(self.engine) as session:
            mail_store.outbox_retry(
                session=session,
                outbox_id=row_id,
                error=f"{type(exc).__name__}: {exc}",
                base=self.settings.email_retry_seconds,
            )


def _code(exc: BaseException) -> int | None:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [c for c, _ in exc.recipients.values()]
        return min(codes) if codes else None
    code = getattr(exc, "smtp_code", None)
    return int(code) if isinstance(code, int) else None


def _close(client: smtplib.SMTP | None) -> None:
    if client is None:
        return
    try:
        client.quit()
    except Exception:
        client.close()
