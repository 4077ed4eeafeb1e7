"""Email as a channel, end to end against real mail servers: Dovecot holds the shop's and the
customers' mailboxes, an SMTP server relays supportbot's replies into them; the fake Messages
API answers (tests/mail_servers.py, tests/email_rig.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from sqlmodel import Session, col, select

from agent.store.tables import Conversation, EmailInbound
from tests.conftest import IVAN, RETAIL_SLICE, customer_id
from tests.email_rig import MailRig, body_of, make_rig
from tests.fake_anthropic import FakeAnthropic, text, tool_use

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


def _dkim_signed(rig: MailRig, sender: str, domain: str, body: str) -> tuple[bytes, Any]:
    """`body` from `sender`, DKIM-signed by `domain`, and a DNS lookup that knows its key."""
    import base64

    import dkim
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())  # fmt: skip
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)  # fmt: skip
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
