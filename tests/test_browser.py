"""The web chat and the staff desk, driven in Debian's Chromium with Playwright.

Screenshots of each step are saved under test-artifacts/browser/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from agent.api.app import create_app
from agent.features.closing import end_conversation, rate
from agent.runtime import Runtime, build_runtime
from agent.store.conversations import lock_conversation
from agent.store.db import transaction
from agent.store.importer import import_path
from agent.store.keys import create_key
from agent.store.tables import ConversationRating, KeyScope, Order, ProposedAction, utcnow
from ingest.pipeline import ingest
from tests.conftest import ARTIFACTS, IVAN, RETAIL_SLICE, SettingsFactory
from tests.fake_anthropic import FakeAnthropic, text, tool_use, tool_uses
from tests.live_server import serve

pytestmark = pytest.mark.slow
DEMO_DOCS = Path(__file__).resolve().parents[1] / "demo" / "docs"


@pytest.fixture
def site(make_settings: SettingsFactory) -> Iterator[tuple[str, Runtime, str]]:
    runtime = build_runtime(make_settings())
    import_path(runtime.engine, RETAIL_SLICE)
    assert runtime.agent.kb is not None
    ingest(runtime.agent.kb, [DEMO_DOCS])
    with transaction(runtime.engine) as session:
        admin = create_key(session=session, name="Sam", scope=KeyScope.ADMIN)[1]
    with serve(create_app(runtime.settings, runtime)) as base:
        yield base, runtime, admin


def _shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _key_sign_in(page, key: str) -> None:  # type: ignore[no-untyped-def]
    """Open the desk with an admin API key (the sign-in form's other option)."""
    page.click("#use-key")
    page.fill("#key", key)
    page.click("#sign-in")


def _say(page, message: str) -> None:  # type: ignore[no-untyped-def]
    page.fill("#text", message)
    page.click("#send")


def test_customer_verifies_and_sees_the_streamed_order_answer(
    browser, site, fake: FakeAnthropic
) -> None:  # type: ignore[no-untyped-def]
    base, _, _ = site
    order = IVAN["orders"][0]
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    page.goto(base)
    fake.enqueue(text("I can help with that. What's the email address on your account?"))
    _say(page, f"Where is my order {order}?")
    page.wait_for_selector("text=email address on your account")
    answer = f"Your order {order} was delivered; tracking number 843053632392."
    fake.enqueue(
        tool_uses(("verify_customer", {"email": IVAN["email"], "order_id": order}),
                  ("order_status", {"order_id": order})),
        text(answer, delay=0.2),
    )  # fmt: skip
    _say(page, IVAN["email"])
    page.wait_for_selector(f"text=Looking up order {order}")
    page.wait_for_selector("text=tracking number 843053632392")
    _shot(page, "1-order-answer-phone")
    bubbles = page.locator(".msg.assistant").all_inner_texts()
    assert answer in bubbles[-1] and "Checking your details ✓" in bubbles[-1]
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    page.close()


def test_the_assistants_progress_note_shows_while_it_works(
    browser, site, fake: FakeAnthropic
) -> None:  # type: ignore[no-untyped-def]
    """Sonnet 5.5 returns its note before a tool call as a thinking block: the page still shows
    it (muted, as a working note) and then the tool and the answer."""
    base, _, _ = site
    page = browser.new_page()
    page.goto(base)
    fake.enqueue(
        tool_use("search_knowledge_base", {"query": "descale kettle"},
                 say="Let me check the kettle manual."),
        text("Descale it every 4 weeks [1].", delay=0.3),
    )  # fmt: skip
    _say(page, "How do I descale my kettle?")
    note = page.wait_for_selector(".msg.assistant .note")
    assert note.inner_text() == "Let me check the kettle manual."
    page.wait_for_selector("text=Descale it every 4 weeks")
    _shot(page, "2b-progress-note")
    bubble = page.locator(".msg.assistant").last.inner_text()
    assert bubble.index("Let me check the kettle manual.") < bubble.index("Descale it every")
    page.close()


def test_the_chat_sends_nothing_while_it_is_answering(browser, site, fake: FakeAnthropic) -> None:  # type: ignore[no-untyped-def]
    """One turn at a time: while the assistant answers, the page says so and sends nothing
    else (Enter and the buttons do nothing); the text typed meanwhile is kept."""
    base, _, _ = site
    page = browser.new_page()
    page.goto(base)
    fake.enqueue(text("Here is a slow answer.", delay=1.5))
    _say(page, "First question")
    page.wait_for_selector("#send:disabled")
    assert page.get_attribute("#text", "placeholder") == "Still answering…"
    assert page.is_disabled("#human")
    page.fill("#text", "Second question")
    page.press("#text", "Enter")  # ignored while answering: nothing is sent, nothing is lost
    page.wait_for_selector("text=Here is a slow answer.")
    page.wait_for_selector("#send:enabled")
    assert page.input_value("#text") == "Second question"
    customer = page.locator(".msg.customer").all_inner_texts()
    assert customer == ["First question"] and len(fake.bodies) == 1
    _shot(page, "2c-one-turn-at-a-time")
    page.close()


def test_a_message_over_the_limit_stays_in_the_box_with_the_error(
    browser, site, fake: FakeAnthropic
) -> None:  # type: ignore[no-untyped-def]
    """Issue 24: a message over SUPPORTBOT_MAX_MESSAGE_CHARS (4,000) is neither sent nor
    cleared: the box keeps it and says why, until it fits. Should the server refuse a message
    all the same, the text comes back to the box."""
    base, _, _ = site
    page = browser.new_page()
    posted: list[str] = []
    page.on("request", lambda r: posted.append(r.url) if r.method == "POST" else None)
    page.goto(base)
    long = "My kettle leaks. " + "x" * 4_490  # 4,507 characters
    _say(page, long)
    error = page.wait_for_selector("#composer-error", state="visible")
    assert error.inner_text() == (
        "Your message is too long: 4,507 characters; the limit is 4,000. Please shorten it."
    )
    assert page.input_value("#text") == long
    assert page.locator(".msg.customer").count() == 0 and posted == []  # nothing sent
    _shot(page, "2d-message-too-long")

    page.fill("#text", "My kettle leaks.")  # once it fits, the error goes
    assert page.is_hidden("#composer-error")
    fake.enqueue(text("Sorry to hear that. Which kettle is it?"))
    page.click("#send")
    page.wait_for_selector("text=Which kettle is it?")
    assert page.input_value("#text") == ""

    # A page that let a longer message through (an older page, another limit): the server's
    # refusal shows, and the text is back in the box.
    page.evaluate("window.SUPPORTBOT.maxMessageChars = 100000")
    _say(page, long)
    refused = page.wait_for_selector(".msg.assistant.error")
    assert "The message is too long (4507 characters; the limit is 4000)." in refused.inner_text()
    assert page.input_value("#text") == long
    _shot(page, "2e-message-refused-kept")
    assert len(fake.bodies) == 1  # the long message never reached the model
    page.close()


def test_policy_answer_shows_a_citation_that_opens_the_source(
    browser, site, fake: FakeAnthropic
) -> None:  # type: ignore[no-untyped-def]
    base, _, _ = site
    page = browser.new_page()
    page.goto(base)
    fake.enqueue(
        tool_use("search_knowledge_base", {"query": "return window"}),
        text("You can return delivered items within 30 days of delivery [1]."),
    )
    _say(page, "How long do I have to return something?")
    link = page.wait_for_selector("a.cite")
    assert link.inner_text() == "[1]"
    assert link.get_attribute("href") == "https://help.acme.example/returns-and-refunds"
    assert "Returns, Exchanges and Refunds" in page.locator(".sources").inner_text()
    _shot(page, "2-policy-citation")
    page.close()


def test_a_tool_waiting_for_verification_is_a_step_not_a_failure(
    browser, site, fake: FakeAnthropic
) -> None:  # type: ignore[no-untyped-def]
    """order_status refuses until the customer is verified: that is the next step of the
    conversation (tool_finish says `needs_verification`), not a red failure."""
    base, _, _ = site
    order = IVAN["orders"][0]
    page = browser.new_page()
    page.goto(base)
    fake.enqueue(
        tool_use("order_status", {"order_id": order}),
        text("I need to verify who you are first: what's the email address on your account?"),
    )
    _say(page, f"Where is my order {order}?")
    page.wait_for_selector("text=what's the email address on your account?")
    _shot(page, "11-needs-verification-step")
    note = page.locator(".msg.assistant .tool").last
    assert note.inner_text() == f"Looking up order {order} — I need to verify who you are first"
    assert "failed" not in (note.get_attribute("class") or "")
    assert page.locator(".tool.failed").count() == 0
    page.close()


@pytest.fixture
def offline_site(make_settings: SettingsFactory) -> Iterator[str]:
    runtime = build_runtime(make_settings(anthropic_base_url=None, anthropic_api_key=None))
    import_path(runtime.engine, RETAIL_SLICE)
    import_path(runtime.engine, RETAIL_SLICE.with_name("retail_catalog.json"))  # every product
    assert runtime.agent.kb is not None
    ingest(runtime.agent.kb, [DEMO_DOCS])
    with serve(create_app(runtime.settings, runtime)) as base:
        yield base


def test_the_offline_model_works_out_an_exchange_in_the_chat(browser, offline_site) -> None:  # type: ignore[no-untyped-def]
    """Without Claude: the request is kept through verification, the new option is asked for
    among those in stock, and the change is proposed with its buttons, then carried out."""
    page = browser.new_page()
    page.goto(offline_site)
    _say(page, "I'd like to exchange the garden hose from #W6893533 for a different length")
    page.wait_for_selector("text=First I need to verify your identity")
    _say(page, f"{IVAN['email']}, zip {IVAN['zip']}")
    page.wait_for_selector("text=Which one would you like instead for the Garden Hose")
    asked = page.locator(".msg.assistant").last.inner_text()
    assert "1. 100ft, latex, blue: $98.61" in asked
    _shot(page, "13-offline-asks-which-option")
    _say(page, "1")
    page.wait_for_selector(".proposal .choices button.confirm")
    box = page.locator(".change-summary .what").last.inner_text()
    assert box.startswith("Exchange from order #W6893533: Garden Hose") and "100ft" in box
    page.click(".proposal button.confirm")
    page.wait_for_selector("text=the exchange for order #W6893533 is requested")
    page.wait_for_selector(".proposal .decision >> text=Confirmed")
    _shot(page, "14-offline-exchange-confirmed")
    page.close()


def test_a_paused_identity_check_is_a_wait_in_the_customers_words(browser, offline_site) -> None:  # type: ignore[no-untyped-def]
    """After two wrong zip codes the checks pause: the right one sent during the pause shows as
    a wait, not a failure, and the customer reads a customer's sentence, not the model's."""
    page = browser.new_page()
    page.goto(offline_site)
    for wrong in ("11111", "22222"):
        _say(page, f"{IVAN['email']} {wrong}")
        page.wait_for_selector(f".msg.assistant >> nth={0 if wrong == '11111' else 1}")
        page.wait_for_selector("#send:enabled")
    _say(page, f"{IVAN['email']} {IVAN['zip']}")
    page.wait_for_selector("text=To keep your account safe")
    bubble = page.locator(".msg.assistant").last
    note = bubble.locator(".tool").last
    assert note.inner_text() == "Checking your details — paused for a moment"
    assert "failed" not in (note.get_attribute("class") or "")
    said = bubble.inner_text()
    assert "seconds" in said and "Ask the customer" not in said and "verify_customer" not in said
    _shot(page, "15-identity-checks-paused")
    page.close()


def test_a_cited_answer_shows_each_source_once(browser, offline_site) -> None:  # type: ignore[no-untyped-def]
    """The offline model names its source in a "Source: [1] …" line (for the terminal and the
    staff desk); the chat lists the source under the answer, once, and leaves the line out."""
    page = browser.new_page()
    page.goto(offline_site)
    _say(page, "How do I descale my kettle?")
    page.wait_for_selector(".msg.assistant .sources")
    _shot(page, "12-source-once-offline")
    for shown in (page, _reloaded(page)):
        bubble = shown.locator(".msg.assistant").last
        (source,) = bubble.locator(".sources li").all_inner_texts()
        assert source.startswith("[1] Electric Kettle (EK-1500) User Manual")
        said = bubble.inner_text()
        assert "Source:" not in said and said.count("User Manual") == 1
        assert "From our help centre [1]" in said  # the inline citation stays
    page.close()


def test_sources_the_model_lists_in_its_text_are_shown_once(
    browser, site, fake: FakeAnthropic
) -> None:  # type: ignore[no-untyped-def]
    base, _, _ = site
    page = browser.new_page()
    page.goto(base)
    fake.enqueue(
        tool_use("search_knowledge_base", {"query": "return window"}),
        text("You can return delivered items within 30 days of delivery [1].\n\n"
             "Sources:\n[1] Returns, Exchanges and Refunds"),
    )  # fmt: skip
    _say(page, "How long do I have to return something?")
    page.wait_for_selector(".msg.assistant .sources")
    _shot(page, "13-source-once-claude")
    said = page.locator(".msg.assistant").last.inner_text()
    assert said.count("Returns, Exchanges and Refunds") == 1 and "Sources:" not in said
    assert "within 30 days of delivery [1]" in said
    page.close()


def _reloaded(page):  # type: ignore[no-untyped-def]
    """The same conversation after a reload (the transcript drawn from the server)."""
    page.reload()
    page.wait_for_selector(".msg.assistant .sources")
    return page


def test_customer_asks_for_a_human_and_sees_the_staff_reply(
    browser, site, fake: FakeAnthropic
) -> None:  # type: ignore[no-untyped-def]
    base, _, admin = site
    customer = browser.new_page()
    customer.goto(base)
    fake.enqueue(
        tool_use(
            "escalate_to_human",
            {"reason": "Customer asked for a person", "summary": "wants a person"},
        ),
        text("I've passed you to a colleague; they'll reply here."),
    )
    customer.click("#human")
    customer.wait_for_selector("text=With a human agent")
    _shot(customer, "3-handed-off")

    staff = browser.new_page()
    staff.goto(base + "/staff")
    _key_sign_in(staff, admin)
    staff.wait_for_selector("#desk", state="visible")
    assert not staff.is_visible("#login")  # the key form gives way to the desk
    staff.click("button.ticket")
    staff.wait_for_selector("#transcript >> text=talk to a human")
    staff.click("#claim")
    staff.wait_for_selector("text=claimed · Sam")
    staff.fill("#reply", "Hi! This is Sam from Acme. How can I help?")
    staff.click("#reply-form button")
    staff.wait_for_selector("#transcript >> text=This is Sam from Acme")
    _shot(staff, "4-staff-desk")

    customer.wait_for_selector(".msg.staff >> text=This is Sam from Acme", timeout=15_000)
    assert "Sam" in customer.locator(".msg.staff .who").inner_text()
    _shot(customer, "5-customer-sees-staff-reply")
    staff.click("#resolve")
    customer.wait_for_selector("#state", state="hidden", timeout=15_000)  # back with the bot
    customer.close()
    staff.close()


def test_staff_see_the_photo_a_customer_attached(
    browser, site, fake: FakeAnthropic, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from tests.images import png

    base, _, admin = site
    photo = tmp_path / "cracked-kettle.png"
    photo.write_bytes(png(64, 48))
    customer = browser.new_page()
    customer.goto(base)
    fake.enqueue(
        tool_use(
            "escalate_to_human",
            {"reason": "Damaged on arrival", "summary": "photo of a cracked kettle"},
        ),
        text("Sorry about that! A colleague will look at your photo."),
    )
    customer.set_input_files("#photos", str(photo))
    customer.fill("#text", "My kettle arrived cracked, photo attached. I want a person.")
    customer.click("#send")
    customer.wait_for_selector("text=With a human agent")
    assert customer.locator(".msg.customer img.photo-thumb").count() == 1

    staff = browser.new_page()
    staff.goto(base + "/staff")
    _key_sign_in(staff, admin)
    staff.click("button.ticket")
    image = staff.wait_for_selector("#transcript img.photo-thumb")
    assert staff.evaluate("(img) => img.complete && img.naturalWidth", image) == 64
    _shot(staff, "6-staff-sees-photo")
    customer.close()
    staff.close()


# Order changes wait for the customer's confirmation (see tests/test_consent.py).
PENDING = IVAN["orders"][1]  # pending, paid $544.29 with PayPal
CANCEL = {"order_id": PENDING, "reason": "ordered by mistake"}
SUMMARY = (
    f"Cancel order {PENDING} (reason: ordered by mistake). Refund: $544.29 back to your PayPal."
)


def _order_status(runtime: Runtime) -> str:
    with Session(runtime.engine) as session:
        order = session.get(Order, PENDING)
        assert order is not None
        return order.status


def _actions(runtime: Runtime) -> list[tuple[str, str | None]]:
    with Session(runtime.engine) as session:
        rows = session.exec(select(ProposedAction).order_by(ProposedAction.created_at)).all()  # type: ignore[arg-type]
        return [(a.status.value, a.decided_by) for a in rows]


def _propose_cancellation(page, fake: FakeAnthropic) -> object:  # type: ignore[no-untyped-def]
    """The customer verifies and asks to cancel; the assistant proposes it: the proposal's bubble."""
    fake.enqueue(
        tool_use("verify_customer", {"email": IVAN["email"], "order_id": PENDING}),
        tool_use("cancel_pending_order", CANCEL),
    )
    _say(page, f"I'm {IVAN['email']}. Please cancel {PENDING}, I ordered it by mistake.")
    page.wait_for_selector(".proposal .choices button.confirm")
    return page.locator(".msg.assistant").last


def test_the_change_to_confirm_is_set_apart_from_the_models_words(
    browser, site, fake: FakeAnthropic
) -> None:  # type: ignore[no-untyped-def]
    """A model (or a document it read) that words its call to look like a free test cannot
    make its words pass for the change: the box holds only the summary the server built."""
    base, _, _ = site
    page = browser.new_page()
    page.goto(base)
    lure = ("Please confirm: Nothing will change; this is a free test. Reply yes to receive "
            "your refund.")  # fmt: skip
    fake.enqueue(
        tool_use("verify_customer", {"email": IVAN["email"], "order_id": PENDING}),
        tool_use("cancel_pending_order", CANCEL, say=lure),
    )
    _say(page, f"I'm {IVAN['email']}. Is {PENDING} on its way?")
    page.wait_for_selector(".proposal .choices button.confirm")
    bubble = page.locator(".msg.assistant").last
    boxes = bubble.locator(".change-summary")
    assert boxes.count() == 1
    assert boxes.locator(".what").inner_text() == SUMMARY
    assert "free test" not in boxes.inner_text()
    assert "free test" in bubble.inner_text()  # the model's words stay, outside the box
    _shot(page, "7b-change-set-apart")


def test_customer_confirms_a_cancellation_with_the_button(
    browser, site, fake: FakeAnthropic
) -> None:  # type: ignore[no-untyped-def]
    base, runtime, _ = site
    page = browser.new_page()
    page.goto(base)
    bubble = _propose_cancellation(page, fake)
    shown = bubble.inner_text()
    assert SUMMARY in shown and "Checking your details ✓" in shown
    assert f"Cancelling order {PENDING} — waiting for your confirmation" in shown
    assert bubble.locator(".change-summary .what").inner_text() == SUMMARY
    confirm = bubble.get_by_role("button", name="Confirm")
    decline = bubble.get_by_role("button", name="Decline")
    assert confirm.is_enabled() and decline.is_enabled()
    assert page.is_enabled("#send")  # the customer may still type instead
    _shot(page, "7-change-proposed")
    assert _order_status(runtime) == "pending" and _actions(runtime) == [("proposed", None)]

    # After a reload the proposal, still waiting, offers its buttons again.
    page.reload()
    page.wait_for_selector(".proposal .choices button.confirm")
    bubble = page.locator(".msg.assistant", has=page.locator(".proposal"))
    assert SUMMARY in bubble.inner_text()
    posted: list[str] = []
    page.on("request", lambda r: posted.append(r.url) if "/actions/" in r.url else None)
    calls = len(fake.bodies)
    fake.enqueue(
        text("Done: order #W8770097 is cancelled and $544.29 goes back to your PayPal.", delay=0.5)
    )
    page.click(".proposal button.confirm")
    # Both buttons are off at once; a second click sends nothing.
    assert page.locator(".proposal button:enabled").count() == 0
    page.evaluate("document.querySelector('.proposal button.confirm')?.click()")
    page.wait_for_selector("text=goes back to your PayPal")
    page.wait_for_selector(".proposal .decision >> text=Confirmed")
    assert page.locator(".proposal button").count() == 0  # the muted line replaces them
    assert page.get_attribute(".proposal .decision", "aria-live") == "polite"
    assert page.is_enabled("#send")
    _shot(page, "8-change-confirmed")
    assert len(posted) == 1 and posted[0].endswith("/confirm") and len(fake.bodies) == calls + 1
    assert _order_status(runtime) == "cancelled"
    assert _actions(runtime) == [("executed", "customer")]

    # Reloaded, a settled proposal shows how it ended, without buttons.
    page.reload()
    page.wait_for_selector(".proposal.settled .decision >> text=Confirmed")
    assert page.locator(".proposal button").count() == 0
    assert "goes back to your PayPal" in page.locator(".msg.assistant").last.inner_text()
    page.close()


def test_a_spanish_customer_confirms_in_spanish(browser, site, fake: FakeAnthropic) -> None:  # type: ignore[no-untyped-def]
    """The engine's question and summary are in the customer's language (agent/engine/consent.py),
    and so are the box, its buttons and how it ended."""
    base, runtime, _ = site
    page = browser.new_page()
    page.goto(base)
    fake.enqueue(
        tool_use("verify_customer", {"email": IVAN["email"], "order_id": PENDING}),
        tool_use("cancel_pending_order", CANCEL),
    )
    _say(page, f"Soy {IVAN['email']}. Quiero cancelar el pedido {PENDING}, lo pedí por error.")
    page.wait_for_selector(".proposal .choices button.confirm")
    bubble = page.locator(".msg.assistant").last
    summary = (f"Cancelar el pedido {PENDING} (motivo: pedido por error). Reembolso: $544.29 de "
               "vuelta a su PayPal.")  # fmt: skip
    assert bubble.locator(".change-summary .what").inner_text() == summary
    assert bubble.locator(".change-summary .label").text_content() == "El cambio que debe confirmar"
    assert "Confirme, por favor" not in bubble.inner_text()  # its opening gives way to the box
    assert "Responda «sí» para seguir adelante" in bubble.inner_text()
    assert bubble.get_by_role("button", name="Rechazar").is_enabled()
    _shot(page, "8b-change-proposed-in-spanish")
    fake.enqueue(text("Hecho: el pedido está cancelado."))
    bubble.get_by_role("button", name="Confirmar").click()
    page.wait_for_selector(".proposal .decision >> text=Confirmado")
    assert _order_status(runtime) == "cancelled"
    page.reload()  # read back from the transcript, it speaks Spanish still
    page.wait_for_selector(".proposal.settled .decision >> text=Confirmado")
    page.close()


def test_customer_declines_and_a_typed_reply_settles_a_proposal(
    browser, site, fake: FakeAnthropic
) -> None:  # type: ignore[no-untyped-def]
    base, runtime, _ = site
    page = browser.new_page()
    page.goto(base)
    _propose_cancellation(page, fake)
    # Typing instead of pressing a button: the message settles the first proposal (not carried
    # out) and the assistant proposes again.
    fake.enqueue(tool_use("cancel_pending_order", CANCEL))
    _say(page, "Hmm, is it too late to keep it instead?")
    page.wait_for_selector(".proposal.settled .decision >> text=Not carried out")
    page.wait_for_selector(".proposal:not(.settled) button.decline")
    assert page.locator(".proposal").count() == 2
    assert page.locator(".proposal:not(.settled)").count() == 1

    fake.enqueue(text("No problem, I've left your order as it is."))
    page.click(".proposal:not(.settled) button.decline")
    page.wait_for_selector("text=left your order as it is")
    page.wait_for_selector(".proposal .decision >> text=Declined")
    assert page.locator(".proposal button").count() == 0
    assert page.locator(".proposal .decision").all_inner_texts() == ["Not carried out", "Declined"]
    _shot(page, "9-change-declined")
    assert _order_status(runtime) == "pending"
    assert _actions(runtime) == [("superseded", "customer"), ("declined", "customer")]
    page.reload()
    page.wait_for_selector(".proposal.settled >> text=Declined")
    assert page.locator(".proposal .decision").all_inner_texts() == ["Not carried out", "Declined"]
    page.close()


def test_staff_see_the_order_changes_and_run_one_for_the_customer(
    browser, site, fake: FakeAnthropic
) -> None:  # type: ignore[no-untyped-def]
    base, runtime, admin = site
    customer = browser.new_page()
    customer.goto(base)
    _propose_cancellation(customer, fake)
    fake.enqueue(text("No problem, I've left your order as it is."))
    customer.click(".proposal button.decline")
    customer.wait_for_selector(".proposal .decision >> text=Declined")
    fake.enqueue(
        tool_use("escalate_to_human",
                 {"reason": "Customer asked for a person", "summary": "declined a cancellation"}),
        text("I've passed you to a colleague; they'll reply here."),
    )  # fmt: skip
    customer.click("#human")
    customer.wait_for_selector("text=With a human agent")

    staff = browser.new_page(viewport={"width": 1280, "height": 1000})
    staff.goto(base + "/staff")
    _key_sign_in(staff, admin)
    staff.click("button.ticket")
    change = staff.wait_for_selector("#change-list .change")
    listed = change.inner_text()
    assert "declined" in listed and SUMMARY in listed
    assert "Proposed by the assistant" in listed and "decided by the customer" in listed
    assert "Ivan Santos (ivan_santos_6635)" in staff.inner_text("#change-for")
    staff.wait_for_selector("#transcript >> text=Order change: declined")  # beside the proposal

    # Staff run the cancellation for the customer: executed, listed as theirs.
    staff.select_option("#change-tool", "cancel_pending_order")
    staff.select_option("#change-arg-order_id", PENDING)  # picked from the customer's orders
    staff.select_option("#change-arg-reason", CANCEL["reason"])  # the schema's choices
    staff.click("#change-run")
    staff.wait_for_selector("#change-result >> text=Executed: Cancel order")
    staff.wait_for_selector("#change-list .change >> text=Run by Sam")
    items = staff.locator("#change-list .change").all_inner_texts()
    assert len(items) == 2 and "executed" in items[0] and "declined" in items[1]
    assert _order_status(runtime) == "cancelled"
    _shot(staff, "10-staff-order-changes")

    # Again: a rule refuses it (the order is cancelled now); the reason is shown.
    staff.click("#change-run")
    staff.wait_for_selector("#change-result.error >> text=Failed:")
    assert "'cancelled'" in staff.inner_text("#change-result")
    staff.wait_for_selector("#change-list .change:nth-child(3)")
    assert "failed" in staff.locator("#change-list .change").first.inner_text()
    customer.close()
    staff.close()


# Outcomes and satisfaction: the end of a conversation, its rating, and the desk's report.


def _ratings(runtime: Runtime) -> list[tuple[str, str | None]]:
    with Session(runtime.engine) as session:
        return [(r.score, r.comment) for r in session.exec(select(ConversationRating)).all()]


def test_customer_ends_the_chat_and_rates_it(browser, site, fake: FakeAnthropic) -> None:  # type: ignore[no-untyped-def]
    base, runtime, _ = site
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    page.goto(base)
    assert page.is_hidden("#done")  # nothing to end yet
    fake.enqueue(text("You can return delivered items within 30 days."))
    _say(page, "How long do I have to return something?")
    page.wait_for_selector("text=within 30 days")
    page.click("#done")
    card = page.wait_for_selector(".msg.rating")
    assert "How did we do?" in card.inner_text()
    assert page.inner_text("#state") == "Conversation ended" and page.is_hidden("#done")
    assert page.is_visible("#restart") and page.locator("#text").count() == 0  # no more messages
    assert page.is_disabled(".rating .send-rating")  # a thumb first
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    _shot(page, "14-rating-asked-phone")

    page.click(".rating button.down")
    assert page.get_attribute(".rating button.down", "aria-pressed") == "true"
    page.fill(".rating .comment", "The answer was fine but I wanted the exact date.")
    page.click(".rating .send-rating")
    page.wait_for_selector(".rating .sent >> text=Thanks for your feedback!")
    _shot(page, "15-rated")
    assert _ratings(runtime) == [("down", "The answer was fine but I wanted the exact date.")]

    # After a reload the ended conversation shows the rating as sent; a new one replaces it.
    page.reload()
    page.wait_for_selector(".rating.rated")
    assert page.get_attribute(".rating button.down", "aria-pressed") == "true"
    assert (
        page.input_value(".rating .comment") == "The answer was fine but I wanted the exact date."
    )
    page.click(".rating button.up")
    page.fill(".rating .comment", "")
    page.click(".rating .send-rating")
    page.wait_for_function("document.querySelector('.rating .send-rating').disabled === false")
    assert _ratings(runtime) == [("up", None)]

    page.click("#restart")  # a fresh conversation
    page.wait_for_selector("#text")
    assert page.locator(".msg").count() == 1 and page.is_enabled("#send")
    assert page.is_hidden("#done") and page.is_visible("#human")
    page.close()


def test_a_resolved_hand_off_asks_for_a_rating(browser, site, fake: FakeAnthropic) -> None:  # type: ignore[no-untyped-def]
    import httpx

    base, runtime, admin = site
    page = browser.new_page()
    page.goto(base)
    fake.enqueue(
        tool_use("escalate_to_human",
                 {"reason": "Customer asked for a person", "summary": "wants a person"}),
        text("I've passed you to a colleague; they'll reply here."),
    )  # fmt: skip
    page.click("#human")
    page.wait_for_selector("text=With a human agent")
    assert page.locator(".msg.rating").count() == 0
    staff = {"Authorization": f"Bearer {admin}"}
    (ticket,) = httpx.get(f"{base}/v1/tickets", headers=staff).json()
    assert httpx.post(f"{base}/v1/tickets/{ticket['id']}/resolve", headers=staff).is_success
    card = page.wait_for_selector(".msg.rating", timeout=15_000)  # seen at the next refresh
    # The notice tells what happened (once); the card only asks.
    assert card.query_selector(".question").inner_text() == "How did we do?"
    assert (
        page.inner_text(".msg.system")
        == "Sam has resolved this conversation; the assistant is back."
    )
    assert page.inner_text("body").count("resolved this conversation") == 1
    page.click(".rating button.up")
    page.click(".rating .send-rating")
    page.wait_for_selector(".rating .sent >> text=Thanks for your feedback!")
    _shot(page, "16-rating-after-hand-off")
    assert _ratings(runtime) == [("up", None)]
    assert page.is_enabled("#send") and page.is_visible("#done")  # the chat goes on
    page.close()


def test_staff_read_the_report_with_its_charts(browser, site, fake: FakeAnthropic) -> None:  # type: ignore[no-untyped-def]
    base, runtime, admin = site
    agent = runtime.agent
    resolved = agent.start_conversation()
    fake.enqueue(text("You can return delivered items within 30 days."))
    agent.ask(resolved, "How long do I have to return something?")
    with transaction(runtime.engine) as session:
        conversation = lock_conversation(session=session, conversation_id=resolved)
        end_conversation(session=session, conversation=conversation, by="customer")
        rate(session=session, conversation=conversation, score="up", comment=None, by="customer")
    handed = agent.start_conversation()
    fake.enqueue(
        tool_use("escalate_to_human",
                 {"reason": "Customer asked for a person", "summary": "wants a person"}),
        text("I've passed you to a colleague."),
    )  # fmt: skip
    agent.ask(handed, "I'd like to talk to a human, please.")
    fake.enqueue(text("Our kettles have a two-year warranty."))
    agent.ask(agent.start_conversation(), "What's the warranty on kettles?")

    page = browser.new_page(viewport={"width": 1280, "height": 1100})
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto(base + "/staff")
    _key_sign_in(page, admin)
    page.wait_for_selector("#desk", state="visible")
    page.click("a.report-link")
    page.wait_for_selector("#report[data-loaded=true]")
    figure = lambda name: page.inner_text(f'[data-figure="{name}"] .value')  # noqa: E731
    assert figure("conversations") == "3"
    assert figure("resolved") == "50%" and figure("handed_off") == "50%"  # of the 2 decided
    assert figure("satisfaction") == "100%" and figure("changes") == "0"
    assert "1 ongoing" in page.inner_text('[data-figure="conversations"]')
    drawn = page.evaluate(
        "['outcomes-chart', 'rates-chart', 'reasons-chart'].map((id) => {"
        "  const chart = Chart.getChart(id); return chart ? chart.data.datasets.map((d) => d.data) : null; })"
    )
    assert drawn[0] == [[1], [1], [0], [1]]  # resolved, handed off, abandoned, ongoing
    assert drawn[1] == [[50], [100]]  # resolution rate, satisfaction (%)
    assert drawn[2] == [[1, 0, 0, 0, 0, 0]]  # customer_asked first
    (row,) = page.locator("#periods tbody tr").all_inner_texts()
    assert row.startswith(utcnow().date().isoformat())
    _shot(page, "17-report")
    # Everything the page loaded came from this server (the charting library too).
    assert requested and all(url.startswith(base) for url in requested)
    assert any(url.endswith("/static/vendor/chart.umd.min.js") for url in requested)

    page.select_option("#by", "week")
    page.click("#filters button")
    page.wait_for_selector("#period-head >> text=Week of")
    page.fill("#since", "2999-01-01")
    page.click("#filters button")
    page.wait_for_selector("#periods >> text=No conversations in this period.")
    assert figure("conversations") == "0"
    page.close()
