"""Email as a channel, end to end against real mail servers: Dovecot holds the shop's and the
customers' mailboxes, an SMTP server relays supportbot's replies into them; the fake Messages
API answers (tests/mail_servers.py, tests/email_rig.py)."""

from __future__ import annotations

import functools
import re
import smtplib
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import Session, col, select

from agent.api.app import create_app
from agent.domain import utcnow
from agent.email.check import check as run_check
from agent.email.outbox import OutboxSender
from agent.email.process import Processor
from agent.email.service import EmailService
from agent.features.email_links import sign_link
from agent.store import email as mail_store
from agent.store import proposals
from agent.store.db import transaction
from agent.store.keys import create_key
from agent.store.tables import Conversation, EmailInbound, EmailOutbox, KeyScope, Order
from tests.conftest import IVAN, RETAIL_SLICE, customer_id
from tests.email_rig import LINK_BASE, LINK_SECRET, MailRig, body_of, make_rig
from tests.fake_anthropic import FakeAnthropic, text, tool_use
from tests.images import png
from tests.mail_servers import free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def rig(mail_servers, make_settings) -> Iterator[MailRig]:  # type: ignore[no-untyped-def]
    built = make_rig(mail_servers, make_settings, RETAIL_SLICE)
    for address in (IVAN["email"], "stranger@example.net"):
        mail_servers.dovecot.clear(address)
    yield built


def test_a_new_question_is_answered_by_email_in_its_thread(
    rig: MailRig, fake: FakeAnthropic
) -> None:
    fake.enqueue(text("Our return window is 30 days from delivery."))
    sent = rig.write(IVAN["email"], "Returns", "Hello, how long do I have to return something?")
    rig.cycle()
    [answer] = rig.inbox(IVAN["email"])
    assert answer["In-Reply-To"] == sent["Message-ID"]
    assert sent["Message-ID"] in answer["References"]
    assert answer["Subject"].startswith("Re: Returns [#")
    assert answer["From"].addresses[0].addr_spec == rig.shop
    assert "30 days" in body_of(answer)
    assert "30 days" in body_of(answer, "html")
    assert answer["Message-ID"].startswith("<sb.")
    # the model saw the new words, with the subject of a new conversation
    said = fake.bodies[-1]["messages"][-1]["content"]
    assert [b["text"] for b in said if b["type"] == "text"] == [
        "Subject: Returns\n\nHello, how long do I have to return something?"
    ]
    # handled once: another round fetches, answers and sends nothing more
    rig.cycle()
    assert len(rig.inbox(IVAN["email"])) == 1


# -- helpers --------------------------------------------------------------------------------


def last_said(fake: FakeAnthropic) -> list[str]:
    """The text blocks of the customer's message in the model's last request."""
    message = fake.bodies[-1]["messages"][-1]
    return [b["text"] for b in message["content"] if b["type"] == "text"]


def conversations(rig: MailRig) -> list[Any]:
    with Session(rig.runtime.engine) as session:
        return list(session.exec(select(Conversation).order_by(col(Conversation.created_at))).all())


def inbound_rows(rig: MailRig) -> list[EmailInbound]:
    with Session(rig.runtime.engine) as session:
        return list(session.exec(select(EmailInbound).order_by(col(EmailInbound.id))).all())


def tool_results(fake: FakeAnthropic) -> list[dict[str, Any]]:
    return [
        b
        for body in fake.bodies
        for m in body["messages"]
        if m["role"] == "user"
        for b in m["content"]
        if b["type"] == "tool_result"
    ]


# -- threading and cleaning -----------------------------------------------------------------


def test_a_reply_lands_in_its_conversation_by_its_threading_headers(
    rig: MailRig, fake: FakeAnthropic
) -> None:
    fake.enqueue(text("We ship within 2 days."), text("Exchanges are free within 30 days."))
    rig.write(IVAN["email"], "Shipping", "How fast do you ship?")
    rig.cycle()
    [answer] = rig.inbox(IVAN["email"])
    reply = rig.write(IVAN["email"], "Re: whatever the client made of it", "And exchanges?",
                      reply_to=answer)  # fmt: skip
    rig.cycle()
    assert len(conversations(rig)) == 1
    assert len(fake.bodies[-1]["messages"]) == 3  # the first exchange, then the new message
    assert last_said(fake) == ["And exchanges?"]  # no subject line within a thread
    second = rig.inbox(IVAN["email"])[-1]
    assert second["In-Reply-To"] == reply["Message-ID"]
    assert answer["Message-ID"] in second["References"]
    assert second["Subject"] == answer["Subject"]  # "Re: Shipping [#TOKEN]", kept


def test_the_subject_token_threads_only_for_the_conversations_own_address(
    rig: MailRig, fake: FakeAnthropic
) -> None:
    fake.enqueue(text("First answer."), text("Second answer."), text("A stranger's answer."))
    rig.write(IVAN["email"], "Lamp", "My lamp flickers.")
    rig.cycle()
    [answer] = rig.inbox(IVAN["email"])
    subject = str(answer["Subject"])
    # No threading headers (a client that drops them): the token in the subject threads it.
    rig.write(IVAN["email"], subject, "It still flickers.")
    rig.cycle()
    assert len(conversations(rig)) == 1
    # The same subject, and even the threading headers, from another address: a new
    # conversation, answered to that address only.
    rig.write("stranger@example.net", subject, "What did Ivan order?", reply_to=answer)
    rig.cycle()
    assert len(conversations(rig)) == 2
    assert len(rig.inbox(IVAN["email"])) == 2
    [theirs] = rig.inbox("stranger@example.net")
    assert "A stranger's answer." in body_of(theirs)
    assert len(fake.bodies[-1]["messages"]) == 1  # nothing of Ivan's conversation


def test_quoted_history_and_signatures_never_reach_the_model(
    rig: MailRig, fake: FakeAnthropic
) -> None:
    fake.enqueue(text("Noted."), text("Noted again."))
    body = (
        "Thanks, and can I exchange the kettle?\n\nBest regards,\nIvan Santos\n\n"
        "On Mon, 30 Nov 2026 at 10:00, Acme Support <shop@shop.test> wrote:\n"
        "> Your order #W6893533 ships to zip 75277.\n> Anything else?\n"
    )
    rig.write(IVAN["email"], "Re: kettle", body)
    rig.cycle()
    assert last_said(fake) == ["Subject: kettle\n\nThanks, and can I exchange the kettle?"]
    # HTML only, with Gmail's quote block
    html = ("<div dir='ltr'>Is the <b>blue</b> one in stock?</div><br><div class='gmail_quote'>"
            "<div>On Mon wrote:</div><blockquote>old question about #W6893533</blockquote></div>")  # fmt: skip
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = IVAN["email"], rig.shop, "Stock"
    message["Message-ID"] = "<html-only@example.com>"
    message.set_content(html, subtype="html")
    rig.deliver(message)
    rig.cycle()
    assert last_said(fake) == ["Subject: Stock\n\nIs the blue one in stock?"]


def test_a_forwarded_mail_sends_only_the_customers_note(rig: MailRig, fake: FakeAnthropic) -> None:
    fake.enqueue(text("Let me look into that."))
    body = (
        "Can you check this one?\n\n---------- Forwarded message ---------\n"
        "From: Acme Orders <orders@acme.example>\nSubject: Your order #W6893533\n\n"
        "Your order #W6893533 has shipped to ivan.santos3158@example.com, zip 75277.\n"
    )
    rig.write(IVAN["email"], "Fwd: Your order", body)
    rig.cycle()
    said = last_said(fake)[0]
    assert said.startswith("Subject: Your order\n\nCan you check this one?")
    assert "forwarded message followed" in said
    assert "75277" not in said and "W6893533" not in said


# -- identity -------------------------------------------------------------------------------


def test_a_forged_sender_gets_nothing_about_someone_elses_order(
    rig: MailRig, fake: FakeAnthropic
) -> None:
    order = {"order_id": IVAN["orders"][0]}
    fake.enqueue(tool_use("order_status", order), text("Please verify first."),
                 tool_use("order_status", order), text("Please verify first."))  # fmt: skip
    # From a stranger's own address, asking for Ivan's order.
    rig.write("stranger@example.net", "Order", f"What is in order {order['order_id']}?")
    # Ivan's address forged (no signature), asking the same.
    rig.write(IVAN["email"], "Order", f"What is in order {order['order_id']}?")
    rig.cycle()
    results = tool_results(fake)
    assert len(results) == 2 and all(r.get("is_error") for r in results)
    assert all(c.customer_id is None for c in conversations(rig))
    [reply] = rig.inbox("stranger@example.net")
    assert "Please verify first." in body_of(reply)
    # Each answer went only to the address its conversation belongs to.
    assert sorted(tuple(r) for _, r, _ in rig.servers.smtp.accepted[-2:]) == sorted(
        [("stranger@example.net",), (IVAN["email"],)]
    )


def test_verification_by_mail_uses_facts_typed_in_the_new_text_only(
    rig: MailRig, fake: FakeAnthropic
) -> None:
    facts = {"email": IVAN["email"], "zip_code": IVAN["zip"]}
    fake.enqueue(tool_use("verify_customer", facts), text("I couldn't verify you."))
    quoted = (f"Please check my order.\n\nOn Mon, Acme wrote:\n> email {IVAN['email']}, "
              f"zip {IVAN['zip']}\n")  # fmt: skip
    rig.write(IVAN["email"], "Order", quoted)
    rig.cycle()
    assert tool_results(fake)[-1].get("is_error")  # the facts were only in the quoted part
    fake.enqueue(tool_use("verify_customer", facts), tool_use("order_status",
                 {"order_id": IVAN["orders"][0]}), text("Your order was delivered."))  # fmt: skip
    [answer] = rig.inbox(IVAN["email"])
    rig.write(IVAN["email"], "Re: Order", f"My email is {IVAN['email']} and my zip is "
              f"{IVAN['zip']}.", reply_to=answer)  # fmt: skip
    rig.cycle()
    assert conversations(rig)[0].customer_id is not None
    assert not tool_results(fake)[-1].get("is_error")
    assert "delivered" in body_of(rig.inbox(IVAN["email"])[-1])


@functools.cache
def _rsa_key() -> tuple[bytes, bytes]:
    """A 2,048-bit RSA key made with openssl (the mail servers' fixture needs it anyway):
    (the private key in PEM, the public key in DER, as a DKIM DNS record carries it)."""
    private = subprocess.run(["openssl", "genrsa", "2048"], capture_output=True,
                             check=True).stdout  # fmt: skip
    public = subprocess.run(["openssl", "rsa", "-pubout", "-outform", "DER"], input=private,
                            capture_output=True, check=True).stdout  # fmt: skip
    return private, public


def _dkim_signed(rig: MailRig, sender: str, domain: str, body: str) -> tuple[bytes, Any]:
    """`body` from `sender`, DKIM-signed by `domain`, and a DNS lookup that knows its key."""
    import base64

    import dkim

    private, public = _rsa_key()
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, rig.shop, "Order"
    message["Message-ID"] = f"<signed-{uuid.uuid4().hex}@{domain}>"
    message.set_content(body)
    raw = message.as_bytes()
    signature = dkim.sign(raw, b"sel", domain.encode(), private,
                          include_headers=[b"from", b"to", b"subject", b"message-id"])  # fmt: skip

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name.rstrip(b".") == f"sel._domainkey.{domain}".encode() else None

    return signature + raw, dns


def test_dkim_aligned_trust_binds_the_sender_and_nothing_less(
    mail_servers: Any, make_settings: Any, fake: FakeAnthropic
) -> None:
    rig = make_rig(mail_servers, make_settings, RETAIL_SLICE, email_trust_dkim=True)
    mail_servers.dovecot.clear(IVAN["email"])
    order = {"order_id": IVAN["orders"][0]}
    # Signed by another domain than the From address's: not trusted.
    raw, rig.dns = _dkim_signed(rig, IVAN["email"], "attacker.example", "Order status?")
    rig.deliver(raw)
    fake.enqueue(tool_use("order_status", order), text("Please verify first."))
    rig.cycle()
    assert conversations(rig)[-1].customer_id is None
    assert tool_results(fake)[-1].get("is_error")
    # Signed by example.com, the From domain: bound to the customer with that address.
    raw, rig.dns = _dkim_signed(rig, IVAN["email"], "example.com", "Order status?")
    rig.deliver(raw)
    fake.enqueue(tool_use("order_status", order), text("It was delivered."))
    rig.cycle()
    assert conversations(rig)[-1].customer_id == customer_id(rig.runtime, IVAN["email"])
    assert not tool_results(fake)[-1].get("is_error")
    # The same signed message with its body altered after signing: not trusted.
    tampered = raw.replace(b"Order status?", b"Cancel everything")
    rig.deliver(tampered.replace(b"<signed-", b"<tampered-"))
    fake.enqueue(text("Please verify first."))
    rig.cycle()
    assert conversations(rig)[-1].customer_id is None


# -- consent --------------------------------------------------------------------------------

CANCEL = {"order_id": "#W8770097", "reason": "no longer needed"}


def _verified_with_proposal(rig: MailRig, fake: FakeAnthropic) -> tuple[EmailMessage, str]:
    """Ivan verifies by mail and is proposed a cancellation: (the proposal's email, the
    action's id)."""
    facts = {"email": IVAN["email"], "zip_code": IVAN["zip"]}
    fake.enqueue(tool_use("verify_customer", facts), tool_use("cancel_pending_order", CANCEL))
    rig.write(IVAN["email"], "Cancel", f"Please cancel #W8770097, I no longer need it. "
              f"I'm {IVAN['email']}, zip {IVAN['zip']}.")  # fmt: skip
    rig.cycle()
    proposal = rig.inbox(IVAN["email"])[-1]
    with Session(rig.runtime.engine) as session:
        [action] = proposals.list_actions(
            session=session, conversation_id=conversations(rig)[-1].id
        )
    return proposal, action.id


def _status(rig: MailRig, action_id: str) -> str:
    with Session(rig.runtime.engine) as session:
        action = proposals.get_action(session=session, action_id=action_id)
        assert action is not None
        return proposals.current_status(action).value


def _order_status(rig: MailRig, order_id: str) -> str:
    with Session(rig.runtime.engine) as session:
        order = session.get(Order, order_id)
        assert order is not None
        return order.status


def test_a_change_is_confirmed_by_replying_yes(rig: MailRig, fake: FakeAnthropic) -> None:
    proposal, action_id = _verified_with_proposal(rig, fake)
    body = body_of(proposal)
    assert "The change to confirm:" in body and "#W8770097" in body
    assert 'reply to this email with "yes"' in body and "Any other reply declines it" in body
    assert f"{LINK_BASE}/email/actions/{action_id}?t=" in body
    assert _order_status(rig, "#W8770097") == "pending"
    fake.enqueue(text("Done: order #W8770097 is cancelled."))
    rig.write(IVAN["email"], "Re: Cancel", "Yes\n\n-- \nIvan\n\nOn Mon, Acme wrote:\n> Please "
              "confirm", reply_to=proposal)  # fmt: skip
    rig.cycle()
    assert _status(rig, action_id) == "executed"
    assert _order_status(rig, "#W8770097") == "cancelled"
    assert "cancelled" in body_of(rig.inbox(IVAN["email"])[-1])


def test_any_other_reply_declines_the_change(rig: MailRig, fake: FakeAnthropic) -> None:
    proposal, action_id = _verified_with_proposal(rig, fake)
    fake.enqueue(text("All right, I left it as it is."))
    rig.write(IVAN["email"], "Re: Cancel", "yes but only if it hasn't shipped?",
              reply_to=proposal)  # fmt: skip
    rig.cycle()
    assert _status(rig, action_id) == "superseded"
    assert _order_status(rig, "#W8770097") == "pending"
    assert "left it as it is" in body_of(rig.inbox(IVAN["email"])[-1])


def _link(body: str) -> str:
    found = re.search(r"http://127\.0\.0\.1:9(/email/actions/\S+)", body)
    assert found is not None, body
    return found.group(1)


def test_a_change_is_confirmed_by_its_one_time_link(rig: MailRig, fake: FakeAnthropic) -> None:
    proposal, action_id = _verified_with_proposal(rig, fake)
    link = _link(body_of(proposal))
    with TestClient(create_app(rig.settings, rig.runtime)) as client:
        # Opening it (a mail scanner does) changes nothing: a page with a Confirm button.
        for _ in range(2):
            page = client.get(link)
            assert page.status_code == 200 and 'method="post"' in page.text
            assert "#W8770097" in page.text
        assert _status(rig, action_id) == "proposed"
        # The link of another action, or a forged token, refuses.
        other = link.replace(action_id, "act_" + "0" * 20)
        assert client.post(other).status_code == 410
        assert client.post(link[:-3] + "abc").status_code == 410
        fake.enqueue(text("Your order #W8770097 is cancelled."))
        done = client.post(link)
        assert done.status_code == 200 and "Your change was made" in done.text
        assert _status(rig, action_id) == "executed"
        # Used once: again, it refuses (GET and POST), and nothing runs twice.
        again = client.post(link)
        assert again.status_code == 410 and "used already" in again.text
        assert client.get(link).status_code == 410
    rig.send()
    outcome = rig.inbox(IVAN["email"])[-1]
    assert "is cancelled" in body_of(outcome)
    assert outcome["In-Reply-To"] == proposal["Message-ID"] or outcome["References"]


def test_an_expired_link_changes_nothing(rig: MailRig, fake: FakeAnthropic) -> None:
    _, action_id = _verified_with_proposal(rig, fake)
    with transaction(rig.runtime.engine) as session:
        link = mail_store.create_link(session=session, action_id=action_id,
                                      conversation_id=conversations(rig)[-1].id,
                                      expires_at=utcnow() - timedelta(minutes=1))  # fmt: skip
        token = sign_link(LINK_SECRET, link_id=link.id, action_id=action_id,
                          expires=time.time() - 60)  # fmt: skip
    with TestClient(create_app(rig.settings, rig.runtime)) as client:
        refused = client.post(f"/email/actions/{action_id}?t={token}")
        assert refused.status_code == 410 and "expired" in refused.text
    assert _status(rig, action_id) == "proposed"
    assert _order_status(rig, "#W8770097") == "pending"


# -- noise and failures ---------------------------------------------------------------------

BOUNCE = b"""From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
To: shop@shop.test
Subject: Undelivered Mail Returned to Sender
Message-ID: <bounce-1@mx.example.net>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="b1"

--b1
Content-Type: text/plain

This is the mail system. Your message could not be delivered.
--b1
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
Final-Recipient: rfc822; nobody@example.net
Action: failed
Status: 5.1.1
--b1--
"""


def test_auto_replies_bounces_and_lists_are_recorded_and_never_answered(
    rig: MailRig, fake: FakeAnthropic
) -> None:
    rig.write(IVAN["email"], "Automatic reply: Returns", "I am out of the office until Monday.",
              headers={"Auto-Submitted": "auto-replied", "X-Autoreply": "yes"})  # fmt: skip
    rig.write(IVAN["email"], "Out of office", "Away.", headers={"X-Autorespond": "true"})
    rig.write("news@lists.example.net", "Weekly digest", "News.",
              headers={"List-Id": "<news.lists.example.net>", "Precedence": "list"})  # fmt: skip
    rig.write("promo@example.net", "Sale", "Buy now.", headers={"Precedence": "bulk"})
    rig.deliver(BOUNCE)
    rig.cycle()
    rows = inbound_rows(rig)
    assert [r.state for r in rows] == ["ignored"] * 5
    assert "Auto-Submitted" in rows[0].reason and "X-Autorespond" in rows[1].reason
    assert "list" in rows[2].reason and "bulk" in rows[3].reason
    assert "multipart/report" in rows[4].reason or "Auto-Submitted" in rows[4].reason
    assert fake.bodies == [] and conversations(rig) == []
    assert rig.inbox(IVAN["email"]) == []


def test_the_servers_down_and_back_lose_nothing_and_double_nothing(
    rig: MailRig, fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.enqueue(text("Answer one."), text("Answer two."))
    rig.write(IVAN["email"], "One", "First question?")
    # IMAP down: fetching fails, the message waits in the mailbox.
    rig.servers.dovecot.stop()
    try:
        with pytest.raises(OSError):
            rig.fetch()
    finally:
        rig.servers.dovecot.start()
    assert rig.fetch() == 1
    # SMTP down: the answer waits in the outbox.
    rig.servers.smtp.stop()
    try:
        rig.process()
        assert rig.send() == 0
        rig.write(IVAN["email"], "Two", "Second question?")
        rig.fetch()
        rig.process()
        with Session(rig.runtime.engine) as session:
            queued = session.exec(select(EmailOutbox)).all()
        assert [q.state for q in queued] == ["pending", "pending"]
        assert queued[0].last_error
    finally:
        rig.servers.smtp.start()
    later = OutboxSender(
        rig.settings, rig.runtime.engine, clock=lambda: utcnow() + timedelta(hours=2)
    )
    assert later.send_pending() == 2
    assert later.send_pending() == 0
    rig.cycle()
    assert sorted(body_of(m).splitlines()[0] for m in rig.inbox(IVAN["email"])) == [
        "Answer one.",
        "Answer two.",
    ]
    # The mailbox's copies are flagged as handled: fetched again, nothing new.
    assert rig.fetch() == 0


def test_a_message_that_fails_is_kept_and_tried_again_once(
    rig: MailRig, fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.enqueue(text("The answer."))
    rig.write(IVAN["email"], "Hello", "A question?")
    rig.fetch()
    # The answer is stored, but the process fails before queueing its email (a crash).
    from agent.email import process

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the process died here")

    monkeypatch.setattr(process, "enqueue_turn", crash)
    rig.process()
    [row] = inbound_rows(rig)
    assert row.state == "admitted" and "died here" in (row.last_error or "")
    monkeypatch.undo()
    later = Processor(rig.runtime, clock=lambda: utcnow() + timedelta(hours=2))
    assert later.process_pending() == 1  # recovered: its stored answer is queued
    assert later.process_pending() == 0
    rig.send()
    [answer] = rig.inbox(IVAN["email"])
    assert "The answer." in body_of(answer)
    assert len(fake.bodies) == 1  # the model was asked once
    # The same message delivered again (a second copy, same Message-ID): handled once.
    again = rig.inbox(IVAN["email"])
    rig.servers.dovecot.deliver(rig.servers.dovecot.messages(rig.shop)[0], rig.shop)
    rig.cycle()
    assert len(rig.inbox(IVAN["email"])) == len(again) == 1


def test_a_20_mb_attachment_is_listed_and_a_photo_goes_to_the_model(
    rig: MailRig, fake: FakeAnthropic
) -> None:
    fake.enqueue(text("Thanks for the photo."))
    big = bytes(range(256)) * (20 * 1024 * 1024 // 256)
    rig.write(IVAN["email"], "Broken lamp", "It arrived broken, see attached.",
              attachments=[("invoice.pdf", "application/pdf", big),
                           ("lamp.png", "image/png", png(16, 16))])  # fmt: skip
    rig.cycle()
    message = fake.bodies[-1]["messages"][-1]["content"]
    assert [b["type"] for b in message] == ["image", "text"]
    assert "invoice.pdf (20.0 MB; not opened)" in message[-1]["text"]
    assert "Thanks for the photo." in body_of(rig.inbox(IVAN["email"])[-1])


MALFORMED = [
    # a boundary that never closes, an unknown charset, broken base64, a header without colon
    b"From: ivan.santos3158@example.com\r\nTo: shop\r\nSubject: =?x-unknown?B?@@@?=\r\n"
    b"Message-ID: <bad-1@example.com>\r\nContent-Type: multipart/mixed; boundary=zz\r\n"
    b"Garbage header line\r\n\r\n--zz\r\nContent-Type: text/plain; charset=x-klingon\r\n\r\n"
    b"Where is my order?\r\n--zz\r\nContent-Type: image/png; name=a.png\r\n"
    b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!\r\n",
    # no headers at all, binary junk
    b"\x00\xff\xfe garbage \x80\x81\r\n\r\n\xff",
    # nested multiparts without boundaries
    b"From: ivan.santos3158@example.com\r\nMessage-ID: <bad-3@example.com>\r\n"
    b"Content-Type: multipart/alternative\r\n\r\nno boundary here\r\n",
]


def test_malformed_mime_never_crashes_anything(rig: MailRig, fake: FakeAnthropic) -> None:
    fake.enqueue(text("Answered the first."), text("Answered the third."))
    for raw in MALFORMED:
        rig.deliver(raw)
    rig.cycle()
    rows = inbound_rows(rig)
    assert [r.state for r in rows] == ["answered", "ignored", "answered"]
    assert "Where is my order?" in fake.bodies[0]["messages"][-1]["content"][-1]["text"]
    assert len(rig.inbox(IVAN["email"])) == 2


# -- the desk, the commands -----------------------------------------------------------------


def test_a_hand_off_and_staff_replies_reach_the_customer_by_email(
    rig: MailRig, fake: FakeAnthropic
) -> None:
    fake.enqueue(tool_use("escalate_to_human", {"reason": "customer asked", "summary": "wants a "
                 "person"}), text("I've passed this to a colleague."))  # fmt: skip
    rig.write(IVAN["email"], "Help", "I'd like to talk to a person, please.")
    rig.cycle()
    [handed] = rig.inbox(IVAN["email"])
    assert "A member of our team will answer you by email" in body_of(handed)
    with transaction(rig.runtime.engine) as session:
        keys = create_key(session=session, name="desk", scope=KeyScope.ADMIN)[1]
    admin = {"Authorization": f"Bearer {keys}"}
    with TestClient(create_app(rig.settings, rig.runtime)) as client:
        [ticket] = client.get("/v1/tickets", headers=admin).json()
        assert ticket["channel"] == "email"
        reply = client.post(f"/v1/tickets/{ticket['id']}/reply", json={"text": "Hello Ivan, "
                            "I can help."}, headers=admin)  # fmt: skip
        assert reply.status_code == 200, reply.text
    # The customer writes while a person has it: stored for them, no bot answer.
    rig.write(IVAN["email"], "Re: Help", "Thanks!", reply_to=handed)
    rig.cycle()
    messages = rig.inbox(IVAN["email"])
    assert len(messages) == 2
    staff = messages[-1]
    assert "Hello Ivan, I can help." in body_of(staff)
    assert (
        staff["In-Reply-To"] == handed["In-Reply-To"]
        or handed["Message-ID"] in (staff["References"] or "")
        or staff["Subject"] == handed["Subject"]
    )
    assert staff["Subject"] == handed["Subject"]
    assert "Auto-Submitted" not in staff  # a person's reply, not an automatic one
    assert len(conversations(rig)) == 1


def test_email_check_says_what_works_and_what_is_wrong_in_one_line(rig: MailRig) -> None:
    good = run_check(rig.settings)
    assert [f.ok for f in good] == [True, True], good
    assert "IDLE" in good[0].text and rig.shop in good[1].text
    wrong = rig.settings.model_copy(update={
        "email_imap_password": SecretStr("wrong"), "email_smtp_port": free_port(),
    })  # fmt: skip
    bad = run_check(wrong)
    assert [f.ok for f in bad] == [False, False]
    assert "refused the user name or password" in bad[0].text
    assert "nothing answers" in bad[1].text and "connection refused" in bad[1].text
    untrusted = rig.settings.model_copy(update={"email_tls_ca_file": None})
    assert "certificate is not trusted" in run_check(untrusted)[0].text
    assert all("\n" not in f.text for f in [*good, *bad])


def _wait_for(condition: Any, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_email_run_answers_over_imap_in_the_background(rig: MailRig, fake: FakeAnthropic) -> None:
    fake.enqueue(text("Answered by the running service."))
    service = EmailService(rig.runtime)
    service.start()
    try:
        rig.write(IVAN["email"], "Running", "Are you there?")
        _wait_for(lambda: len(rig.inbox(IVAN["email"])) == 1, "the answer")
    finally:
        service.stop()
    assert "running service" in body_of(rig.inbox(IVAN["email"])[0])


def test_mail_delivered_to_our_own_lmtp_port_is_answered(
    mail_servers: Any, make_settings: Any, fake: FakeAnthropic
) -> None:
    port = free_port()
    rig = make_rig(mail_servers, make_settings, RETAIL_SLICE, email_inbound="lmtp",
                   email_listen_port=port)  # fmt: skip
    mail_servers.dovecot.clear(IVAN["email"])
    fake.enqueue(text("Answered over LMTP."))
    service = EmailService(rig.runtime)
    service.start()
    try:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = IVAN["email"], rig.shop, "LMTP"
        message["Message-ID"] = "<lmtp-1@example.com>"
        message.set_content("Hello over LMTP")
        with smtplib.LMTP("127.0.0.1", port) as lmtp:
            refused = lmtp.sendmail(IVAN["email"], [rig.shop], message.as_bytes())
            assert refused == {}
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                lmtp.sendmail(IVAN["email"], ["someone-else@shop.test"], message.as_bytes())
        _wait_for(lambda: len(rig.inbox(IVAN["email"])) == 1, "the answer")
    finally:
        service.stop()
    assert "over LMTP" in body_of(rig.inbox(IVAN["email"])[0])


def test_handled_mail_can_be_moved_instead_of_flagged(
    mail_servers: Any, make_settings: Any, fake: FakeAnthropic
) -> None:
    rig = make_rig(mail_servers, make_settings, RETAIL_SLICE, email_imap_handled="move",
                   email_imap_handled_folder="Handled")  # fmt: skip
    mail_servers.dovecot.clear(IVAN["email"])
    fake.enqueue(text("Moved and answered."))
    rig.write(IVAN["email"], "Move", "Where does this go?")
    rig.cycle()
    assert mail_servers.dovecot.messages(rig.shop) == []
    assert len(mail_servers.dovecot.messages(rig.shop, folder="Handled")) == 1
    assert "Moved and answered." in body_of(rig.inbox(IVAN["email"])[0])
    assert rig.fetch() == 0
