"""Processing a stored inbound message: noise is recorded and left alone; a person's message
finds its conversation (by its threading headers first, by the conversation token in its
subject only as a fallback, and either way only when it comes from that conversation's own
address) or starts one, and its new words and photos go to the agent as one customer turn;
the answer goes to the outbox. Idempotent: a message is admitted into its conversation once
(in the turn's own first transaction), and its answer is queued once; a message whose
processing failed is tried again with a back-off, never lost."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from agent.domain import ConversationState, utcnow
from agent.email.dkim_check import DnsLookup, aligned_dkim_domain
from agent.email.noise import why_not_answered
from agent.email.parse import ParsedMail, parse
from agent.email.replies import enqueue_turn
from agent.engine.events import Outcome
from agent.engine.loop import Said
from agent.errors import ConversationClosed, InvalidInput, TooLarge, UnsupportedMedia
from agent.features.attachments import image_blocks
from agent.features.customers import vouched_customer
from agent.runtime import Runtime
from agent.store import email as mail_store
from agent.store import ratelimit
from agent.store.conversations import create_conversation, lock_conversation
from agent.store.db import transaction

log = logging.getLogger(__name__)

CLAIM = timedelta(minutes=10)  # a worker that died mid-message leaves it to another after this
FORWARDED_NOTE = "(A forwarded message followed; its text is not shown here.)"
NO_TEXT = "(The email had no text.)"


@dataclass(frozen=True)
class EmailAdmission:
    """Admits an email into its conversation, in the turn's first transaction: the message is
    marked as taken there (so a retry after a crash never posts it twice) and becomes the
    thread's newest message (what our reply answers). Identity checks count a sender's failures
    as a client's."""

    inbound_id: int
    conversation_id: str
    sender: str
    message_id: str
    references: tuple[str, ...]

    @property
    def client(self) -> str:
        return f"email:{self.sender}"[:80]

    @property
    def speaker(self) -> str:
        return "customer"

    def __call__(self, session: Session) -> Any:
        conversation = lock_conversation(session=session, conversation_id=self.conversation_id)
        mail_store.admit_inbound(
            session=session,
            inbound_id=self.inbound_id,
            conversation_id=self.conversation_id,
            after_sequence=conversation.last_sequence,
        )
        mail_store.note_inbound(
            session=session,
            conversation_id=self.conversation_id,
            message_id=self.message_id,
            references=list(self.references),
        )
        return conversation


class Processor:
    def __init__(
        self,
        runtime: Runtime,
        *,
        dns: DnsLookup | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.runtime, self.settings, self.engine = runtime, runtime.settings, runtime.engine
        self.dns, self.clock = dns, clock
        self.shop = (self.settings.email_address or "").lower()

    def process_pending(self, limit: int = 1000) -> int:
        """Process every message due now (at most `limit`); returns how many were taken."""
        done = 0
        while done < limit:
            with transaction(self.engine) as session:
                row = mail_store.claim_inbound(session=session, now=self.clock(), hold=CLAIM)
                claimed = (
                    (
                        row.id,
                        row.state,
                        row.raw,
                        row.size,
                        row.attempts,
                        row.conversation_id,
                        row.admitted_after,
                    )
                    if row
                    else None
                )
            if claimed is None:
                return done
            done += 1
            inbound_id = claimed[0]
            assert inbound_id is not None
            try:
                self._handle(*claimed)  # type: ignore[arg-type]
            except Exception as exc:  # kept, and tried again later: never lost
                log.exception("email %d failed; trying again later", inbound_id)
                with transaction(self.engine) as session:
                    mail_store.retry_inbound(
                        session=session,
                        inbound_id=inbound_id,
                        error=f"{type(exc).__name__}: {exc}",
                        base=self.settings.email_retry_seconds,
                    )
        return done

    # -- one message --------------------------------------------------------------------

    def _finish(self, inbound_id: int, state: str, reason: str, cid: str | None = None) -> None:
        with transaction(self.engine) as session:
            mail_store.finish_inbound(
                session=session,
                inbound_id=inbound_id,
                state=state,
                reason=reason,
                conversation_id=cid,
            )

    def _handle(
        self,
        inbound_id: int,
        state: str,
        raw: bytes,
        size: int,
        attempts: int,
        conversation_id: str | None,
        admitted_after: int | None,
    ) -> None:
        mail = parse(raw)
        recoverable = state == "admitted" and conversation_id and admitted_after is not None
        if recoverable and self._recover(inbound_id, conversation_id, admitted_after):  # type: ignore[arg-type]
            return
        noise = why_not_answered(mail, self.shop)
        if noise is not None:
            log.info("email %d not answered: %s", inbound_id, noise)
            self._finish(inbound_id, "ignored", noise)
            return
        if attempts == 1 and self._over_limit(mail.sender):
            self._finish(inbound_id, "ignored", "over the sender's hourly limit")
            return
        existing = self._conversation_of(mail)
        cid = existing or self._start(mail, raw)
        text, images = self._content(mail, size, new=existing is None)
        try:
            result = self._turn(inbound_id, cid, mail, text, images)
        except ConversationClosed:  # ended meanwhile: the message starts a conversation
            cid = self._start(mail, raw)
            result = self._turn(
                inbound_id, cid, mail, self._content(mail, size, new=True)[0], images
            )
        with transaction(self.engine) as session:
            if result.outcome != Outcome.QUEUED_FOR_HUMAN:
                enqueue_turn(self.settings, session, result, key=f"reply:{inbound_id}")
            mail_store.finish_inbound(
                session=session,
                inbound_id=inbound_id,
                state="answered",
                reason=result.outcome.value,
                conversation_id=result.conversation_id,
            )

    def _turn(
        self, inbound_id: int, cid: str, mail: ParsedMail, text: str, images: list[dict[str, Any]]
    ) -> Any:
        admit = EmailAdmission(
            inbound_id,
            cid,
            mail.sender,
            mail.message_id,
            tuple(mail.references or mail.in_reply_to),
        )
        return self.runtime.agent.turn(cid, Said(text, images), admit=admit).result()

    def _recover(self, inbound_id: int, cid: str, after: int) -> bool:
        """A message whose turn began before a crash: its stored answer is queued, if the turn
        got as far; otherwise it goes to the agent again (and the engine acknowledges the
        interrupted turn)."""
        with transaction(self.engine) as session:
            answer = mail_store.answer_after(session=session, conversation_id=cid, sequence=after)
            if answer is None:
                return False
            text = "\n\n".join(b["text"] for b in answer.content if b.get("type") == "text")
            mail_store.enqueue(
                session=session, key=f"reply:{inbound_id}", conversation_id=cid, text=text
            )
            mail_store.finish_inbound(
                session=session,
                inbound_id=inbound_id,
                state="answered",
                reason="answered (recovered)",
                conversation_id=cid,
            )
        return True

    def _over_limit(self, sender: str) -> bool:
        with transaction(self.engine) as session:
            limits = {f"email:{sender}"[:200]: self.settings.email_rate_limit_per_sender}
            return bool(ratelimit.count(session, limits, window_seconds=3600))

    def _conversation_of(self, mail: ParsedMail) -> str | None:
        """The open conversation this message continues: by its threading headers, else by
        the token in its subject; only one that belongs to the sender's address."""
        with Session(self.engine) as session:
            ids = [*mail.in_reply_to, *reversed(mail.references)]
            threads = mail_store.threads_by_message_ids(session=session, message_ids=ids)
            if not threads and mail.token:
                found = mail_store.thread_by_token(session=session, token=mail.token)
                threads = [found] if found is not None else []
            for thread in threads:
                if thread.address != mail.sender:
                    continue  # someone else's thread: this sender gets a conversation of their own
                conversation = mail_store.conversation_state(
                    session=session, conversation_id=thread.conversation_id
                )
                if conversation is not None and conversation.state != ConversationState.CLOSED:
                    return thread.conversation_id
        return None

    def _start(self, mail: ParsedMail, raw: bytes) -> str:
        """A new email conversation for the sender: anonymous, unless the shop trusts DKIM
        and the message is signed by the sender's own domain (then bound to the customer with
        that email, if there is one)."""
        domain = None
        if self.settings.email_trust_dkim:
            domain = aligned_dkim_domain(raw, mail.sender, self.dns)
        with transaction(self.engine) as session:
            customer_id = None
            if domain is not None:
                try:
                    customer_id = vouched_customer(
                        session, self.runtime.orders(session), mail.sender
                    )
                except InvalidInput:
                    customer_id = None  # signed, but no customer has this address
            conversation = create_conversation(
                session=session, customer_id=customer_id, channel="email"
            )
            mail_store.create_thread(
                session=session,
                conversation_id=conversation.id,
                address=mail.sender,
                shop_address=self.shop,
                subject=mail.topic,
                dkim_domain=domain if customer_id else None,
            )
            return conversation.id

    def _content(
        self, mail: ParsedMail, size: int, *, new: bool
    ) -> tuple[str, list[dict[str, Any]]]:
        """The customer's message: their new words (a new conversation's subject first), a
        note for what was left out, and their photos (as the chat takes them)."""
        parts: list[str] = []
        if size > self.settings.email_max_message_bytes:
            parts.append(
                f"(The email was {_size(size)}, over the limit of "
                f"{_size(self.settings.email_max_message_bytes)}; only its subject "
                "was read.)"
            )
        if new and mail.topic:
            parts.append(f"Subject: {mail.topic}")
        if mail.text:
            parts.append(mail.text)
        if mail.forwarded:
            parts.append(FORWARDED_NOTE)
        notes: list[str] = []
        blocks: list[dict[str, Any]] = []
        for upload in mail.images:
            if len(blocks) >= self.settings.max_images:
                notes.append(f"{upload.name} (not read: at most {self.settings.max_images} photos)")
                continue
            try:
                blocks += image_blocks([upload], self.settings)
            except (InvalidInput, TooLarge, UnsupportedMedia) as exc:
                notes.append(f"{upload.name} (not read: {exc})")
        notes += [f"{a.name} ({_size(a.size)}; not opened)" for a in mail.attachments]
        if notes:
            parts.append("(Attached: " + "; ".join(notes) + ")")
        text = "\n\n".join(parts)
        limit = self.settings.max_message_chars
        if len(text) > limit:
            text = text[: limit - 40].rstrip() + "\n(The rest of the email was cut.)"
        if not text and not blocks:
            text = NO_TEXT
        return text, blocks


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{max(1, n // 1024)} KB"
