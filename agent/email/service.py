"""`supportbot email run`: the inbound side (the IMAP mailbox, or an LMTP/SMTP server of our
own), the processor and the outbox sender, each in a thread of one process. State lives in the
database, so the process can stop at any point and start again: nothing is lost or doubled."""

from __future__ import annotations

import logging
import threading
from typing import Any

from agent.config import Settings
from agent.email.dkim_check import DnsLookup
from agent.email.inbound import ImapInbound, mail_receiver
from agent.email.outbox import OutboxSender
from agent.email.process import Processor
from agent.runtime import Runtime, build_runtime

log = logging.getLogger(__name__)

IDLE_SECONDS = 5.0  # how often the processor and the outbox look for work nobody announced


def email_settings(settings: Settings) -> Settings:
    """The settings turns of email conversations run with: a proposed change waits for the
    customer as long as an email conversation takes (SUPPORTBOT_EMAIL_ACTION_EXPIRY_MINUTES)."""
    return settings.model_copy(
        update={"action_expiry_minutes": settings.email_action_expiry_minutes}
    )


def email_runtime(settings: Settings) -> Runtime:
    return build_runtime(email_settings(settings))


class EmailService:
    def __init__(self, runtime: Runtime, *, dns: DnsLookup | None = None) -> None:
        self.runtime, self.settings = runtime, runtime.settings
        self.stop_event = threading.Event()
        self.work = threading.Event()  # a message was stored
        self.replies = threading.Event()  # a reply was queued
        self.processor = Processor(runtime, dns=dns)
        self.outbox = OutboxSender(self.settings, runtime.engine)
        self.threads: list[threading.Thread] = []
        self.receiver: Any = None

    def start(self) -> None:
        if self.settings.email_inbound == "imap":
            inbound = ImapInbound(self.settings, self.runtime.engine, on_stored=self.work.set)
            self._thread("email-imap", lambda: inbound.run(self.stop_event))
        else:
            self.receiver = mail_receiver(
                self.settings, self.runtime.engine, on_stored=self.work.set
            )
            self.receiver.start()
        self._thread("email-process", self._process_loop)
        self._thread("email-outbox", self._outbox_loop)

    def _thread(self, name: str, target: Any) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _process_loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                if self.processor.process_pending():
                    self.replies.set()
                    continue
            except Exception:
                log.exception("email processing failed; going on")
            self.work.wait(IDLE_SECONDS)
            self.work.clear()

    def _outbox_loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.outbox.send_pending()
            except Exception:
                log.exception("sending email failed; going on")
            self.replies.wait(IDLE_SECONDS)
            self.replies.clear()

    def stop(self) -> None:
        self.stop_event.set()
        self.work.set()
        self.replies.set()
        if self.receiver is not None:
            self.receiver.stop()
        for thread in self.threads:
            thread.join(timeout=30)
