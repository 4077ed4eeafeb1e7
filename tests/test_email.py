"""Email as a channel, end to end against real mail servers: Dovecot holds the shop's and the
customers' mailboxes, an SMTP server relays supportbot's replies into them; the fake Messages
API answers (tests/mail_servers.py, tests/email_rig.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import IVAN, RETAIL_SLICE
from tests.email_rig import MailRig, body_of, make_rig
from tests.fake_anthropic import FakeAnthropic, text

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
