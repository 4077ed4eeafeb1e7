"""The web chat and the staff desk, driven in Debian's Chromium with Playwright.

Screenshots of each step are saved under test-artifacts/browser/.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.api.app import create_app
from agent.runtime import Runtime, build_runtime
from agent.store.db import transaction
from agent.store.importer import import_path
from agent.store.keys import create_key
from agent.store.tables import KeyScope
from ingest.pipeline import ingest
from tests.conftest import IVAN, RETAIL_SLICE, SettingsFactory
from tests.fake_anthropic import FakeAnthropic, text, tool_use, tool_uses
from tests.live_server import serve

pytestmark = pytest.mark.slow
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "browser"
DEMO_DOCS = Path(__file__).resolve().parents[1] / "demo" / "docs"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = shutil.which("chromium")
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("chromium not found; .ci/run must install Debian's chromium")
        pytest.skip("chromium not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


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
    staff.fill("#key", admin)
    staff.click("#login button")
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
    staff.fill("#key", admin)
    staff.click("#login button")
    staff.click("button.ticket")
    image = staff.wait_for_selector("#transcript img.photo-thumb")
    assert staff.evaluate("(img) => img.complete && img.naturalWidth", image) == 64
    _shot(staff, "6-staff-sees-photo")
    customer.close()
    staff.close()
