"""The staff desk a team works a shift in, and what the customer sees of it, in Chromium:
signing in with a staff account, the ticket list and its filters, the customer panel, notes
that never reach the customer, and live updates (server-sent events) on both pages.

Screenshots of each step are saved under test-artifacts/browser/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from playwright.sync_api import Page, expect

from agent.api.app import create_app
from agent.runtime import Runtime, build_runtime
from agent.store import staff
from agent.store.db import transaction
from agent.store.importer import import_path
from agent.store.keys import create_key
from agent.store.tables import KeyScope
from tests.conftest import ARTIFACTS, IVAN, RETAIL_SLICE, YARA, SettingsFactory
from tests.fake_anthropic import FakeAnthropic, text, tool_use
from tests.live_server import serve

pytestmark = pytest.mark.slow
PASSWORD = "correct horse battery"
STREAM_SECONDS = 2  # the server ends each live stream this soon: the pages reconnect
JOINED = "Anna Berg joined the conversation."
RESOLVED = "Anna Berg has resolved this conversation; the assistant is back."
IVAN_EMAIL, YARA_EMAIL = str(IVAN["email"]), str(YARA["email"])
IVAN_ORDERS = [str(o) for o in IVAN["orders"]]


@dataclass
class Site:
    base: str
    runtime: Runtime
    admin: str
    backend: str

    def api(
        self, method: str, path: str, token: str | None = None, **kwargs: object
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.admin}"}
        return httpx.request(method, self.base + path, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]

    def sign_in(self, username: str) -> str:
        response = httpx.post(f"{self.base}/v1/staff/sessions",
                              json={"username": username, "password": PASSWORD})  # fmt: skip
        assert response.status_code == 201, response.text
        return str(response.json()["token"])

    def hand_off(self, fake: FakeAnthropic, email: str, said: str, reason: str) -> tuple[str, int]:
        """A conversation (of a verified customer) the assistant handed to a person: its id
        and its ticket's."""
        conversation = self.api("POST", "/v1/conversations", self.backend,
                                json={"customer_email": email}).json()["id"]  # fmt: skip
        fake.enqueue(tool_use("escalate_to_human", {"reason": reason, "summary": said}),
                     text("A colleague will reply here."))  # fmt: skip
        turn = self.api("POST", f"/v1/conversations/{conversation}/messages", self.backend,
                        json={"text": said})  # fmt: skip
        assert turn.json()["state"] == "human", turn.text
        tickets = self.api("GET", "/v1/tickets?newest_first=true").json()
        return conversation, next(t["id"] for t in tickets if t["conversation_id"] == conversation)

    def customer_says(self, conversation: str, said: str) -> None:
        """The customer writes while a person has the conversation (the model is not asked)."""
        turn = self.api("POST", f"/v1/conversations/{conversation}/messages", self.backend,
                        json={"text": said})  # fmt: skip
        assert turn.status_code == 200 and turn.json()["state"] == "human", turn.text


@pytest.fixture
def site(make_settings: SettingsFactory) -> Iterator[Site]:
    settings = make_settings(event_poll_seconds=0.05, event_stream_seconds=STREAM_SECONDS)
    runtime = build_runtime(settings)
    import_path(runtime.engine, RETAIL_SLICE)
    with transaction(runtime.engine) as session:
        staff.create_account(session=session, username="anna", display_name="Anna Berg",
                             password=PASSWORD)  # fmt: skip
        staff.create_account(session=session, username="bob", display_name="Bob Marsh",
                             password=PASSWORD)  # fmt: skip
        admin = create_key(session=session, name="automation", scope=KeyScope.ADMIN)[1]
        backend = create_key(session=session, name="shop", scope=KeyScope.BACKEND)[1]
    with serve(create_app(runtime.settings, runtime)) as base:
        yield Site(base, runtime, admin, backend)


@pytest.fixture
def context(browser, site: Site) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """A browser context per test, closed before the server stops (its live streams too)."""
    opened = browser.new_context(viewport={"width": 1280, "height": 1000})
    yield opened
    opened.close()


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _desk(context, site: Site, username: str = "anna") -> Page:  # type: ignore[no-untyped-def]
    page: Page = context.new_page()
    page.goto(site.base + "/staff")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    expect(page.locator("#desk")).to_be_visible()
    return page


def _ticket(page: Page, ticket: int):  # type: ignore[no-untyped-def]
    return page.locator(f'#tickets .ticket[data-ticket="{ticket}"]')


def _listed(page: Page) -> list[int]:
    return [int(t) for t in page.locator("#tickets .ticket").evaluate_all(
        "(items) => items.map((i) => i.dataset.ticket)")]  # fmt: skip


def _reconnected(page: Page, path: str):  # type: ignore[no-untyped-def]
    """Waits (as a context manager) for the page to open `path`'s stream again after the
    server ended it, resuming with Last-Event-ID."""
    return page.expect_request(
        lambda r: path in r.url and bool(r.headers.get("last-event-id")),
        timeout=(STREAM_SECONDS + 8) * 1000,
    )


def test_staff_sign_in_with_their_account_and_sign_out(context, site: Site) -> None:  # type: ignore[no-untyped-def]
    page: Page = context.new_page()
    page.goto(site.base + "/staff")
    expect(page.locator("#key")).to_be_hidden()  # a staff account first; the key is the option
    page.fill("#username", "anna")
    page.fill("#password", "not the password")
    page.click("#sign-in")
    expect(page.locator("#login-error")).to_have_text("Wrong username or password.")
    expect(page.locator("#desk")).to_be_hidden()

    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    expect(page.locator("#desk")).to_be_visible()
    expect(page.locator("#login")).to_be_hidden()
    expect(page.locator("header #who")).to_have_text("Anna Berg")
    expect(page.locator("#sign-out")).to_be_visible()
    token = page.evaluate("sessionStorage.getItem('supportbot.adminKey')")
    assert token.startswith("sbs_")  # the sign-in's token, not a password
    assert site.api("GET", "/v1/staff/me", token).json()["display_name"] == "Anna Berg"
    _shot(page, "20-desk-signed-in")

    page.reload()  # the sign-in lasts for the tab's session
    expect(page.locator("header #who")).to_have_text("Anna Berg")
    expect(page.locator("#desk")).to_be_visible()
    page.click("a.report-link")  # the report opens with the same sign-in
    expect(page.locator("#report")).to_have_attribute("data-loaded", "true")
    page.go_back()
    expect(page.locator("#desk")).to_be_visible()

    page.click("#sign-out")
    expect(page.locator("#login")).to_be_visible()
    expect(page.locator("#desk")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('supportbot.adminKey')") is None
    assert site.api("GET", "/v1/staff/me", token).status_code == 401  # revoked at once

    # Automation still opens the desk with an admin API key.
    page.click("#use-key")
    page.fill("#key", site.admin)
    page.click("#sign-in")
    expect(page.locator("header #who")).to_have_text("automation (API key)")
    page.close()


def test_the_report_signs_in_with_a_staff_account_of_its_own(
    context, site: Site, fake: FakeAnthropic
) -> None:  # type: ignore[no-untyped-def]
    with transaction(site.runtime.engine) as session:
        staff.create_account(session=session, username="cara", display_name="Cara Lind",
                             password=PASSWORD)  # fmt: skip
    site.hand_off(fake, IVAN_EMAIL, "where is my refund", "refund")
    page: Page = context.new_page()
    page.goto(site.base + "/staff/report")  # straight to the report, not through the desk
    expect(page.locator("#login")).to_be_visible()
    expect(page.locator("#username")).to_be_focused()
    expect(page.locator("#key")).to_be_hidden()  # a staff account first; the key is the option
    expect(page.locator("#report")).to_be_hidden()
    page.fill("#username", "cara")
    page.fill("#password", "not the password")
    page.click("#sign-in")
    expect(page.locator("#login-error")).to_have_text("Wrong username or password.")
    expect(page.locator("#report")).to_be_hidden()
    _shot(page, "27-report-sign-in")

    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    expect(page.locator("#report")).to_have_attribute("data-loaded", "true")
    expect(page.locator("#report")).to_be_visible()
    expect(page.locator("#login")).to_be_hidden()
    expect(page.locator('[data-figure="conversations"] .value')).to_have_text("1")
    expect(page.locator('[data-figure="handed_off"] .value')).to_have_text("100%")
    token = page.evaluate("sessionStorage.getItem('supportbot.adminKey')")
    assert token.startswith("sbs_")  # the sign-in's token, not a password
    assert site.api("GET", "/v1/staff/me", token).json()["username"] == "cara"
    _shot(page, "28-report-signed-in-with-an-account")

    page.reload()  # the sign-in lasts for the tab's session ...
    expect(page.locator("#report")).to_have_attribute("data-loaded", "true")
    expect(page.locator("#login")).to_be_hidden()
    page.click("a.back")  # ... and opens the desk as well
    expect(page.locator("#desk")).to_be_visible()
    expect(page.locator("header #who")).to_have_text("Cara Lind")

    # Signed out, the report opens with an admin API key, its other option.
    page.click("#sign-out")
    expect(page.locator("#login")).to_be_visible()
    page.goto(site.base + "/staff/report")
    expect(page.locator("#login")).to_be_visible()
    page.click("#use-key")
    expect(page.locator("#username")).to_be_hidden()
    expect(page.locator("#sign-in")).to_have_text("Open the report")
    page.fill("#key", "sba_not-a-key")
    page.click("#sign-in")
    expect(page.locator("#login-error")).to_be_visible()
    expect(page.locator("#report")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('supportbot.adminKey')") is None
    page.fill("#key", site.admin)
    page.click("#sign-in")
    expect(page.locator("#report")).to_have_attribute("data-loaded", "true")
    expect(page.locator('[data-figure="conversations"] .value')).to_have_text("1")
    assert page.evaluate("sessionStorage.getItem('supportbot.adminKey')") == site.admin
    page.close()


def test_the_desk_lists_every_ticket_and_filters_them(
    context, site: Site, fake: FakeAnthropic
) -> None:  # type: ignore[no-untyped-def]
    order = IVAN_ORDERS[0]
    _, broken = site.hand_off(fake, IVAN_EMAIL, f"order {order} arrived broken", "damaged-item")
    _, gift = site.hand_off(fake, YARA_EMAIL, "where is my gift card balance", "gift-card")
    _, lost = site.hand_off(fake, YARA_EMAIL, "my parcel never came", "lost-parcel")
    anna = site.sign_in("anna")
    assert site.api("POST", f"/v1/tickets/{broken}/resolve", anna).is_success
    assert site.api("POST", f"/v1/tickets/{lost}/claim", anna).is_success

    page = _desk(context, site)
    expect(page.locator("#tickets .ticket")).to_have_count(3)  # resolved ones too
    assert _listed(page) == [lost, gift, broken]  # newest first
    expect(page.locator("#ticket-count")).to_have_text("3 tickets")
    row = _ticket(page, lost).inner_text()
    assert "Yara" in row and "claimed · Anna Berg" in row and "lost-parcel" in row
    assert "just now" in row or "min ago" in row  # its age
    expect(_ticket(page, broken).locator(".pill")).to_have_text(re.compile("resolved"))
    _shot(page, "21-desk-every-ticket")

    def shows(*tickets: int) -> None:
        rows = page.locator("#tickets .ticket")
        expect(rows).to_have_count(len(tickets))
        for i, ticket in enumerate(tickets):
            expect(rows.nth(i)).to_have_attribute("data-ticket", str(ticket))

    page.select_option("#status", "resolved")
    shows(broken)
    page.select_option("#status", "open")
    shows(gift)
    page.select_option("#status", "")
    page.select_option("#assignee", "me")
    shows(lost, broken)  # resolving an unclaimed ticket makes it the resolver's
    page.select_option("#assignee", "none")
    shows(gift)
    page.select_option("#assignee", "")
    page.fill("#q", "GIFT card")  # the customer's words
    shows(gift)
    page.click("#clear-filters")
    shows(lost, gift, broken)
    page.fill("#customer", IVAN_EMAIL)
    shows(broken)
    page.fill("#customer", "yara")  # part of a name
    shows(lost, gift)
    page.fill("#customer", "")
    page.fill("#order", order.lstrip("#"))  # with or without the '#'
    shows(broken)
    page.fill("#order", "#W0000000")
    expect(page.locator("#tickets")).to_contain_text("No tickets match.")
    page.close()


def test_the_customer_panel_shows_the_customers_orders(
    context, site: Site, fake: FakeAnthropic
) -> None:  # type: ignore[no-untyped-def]
    pending = IVAN_ORDERS[1]  # pending
    conversation, ticket = site.hand_off(fake, IVAN_EMAIL, "cancel please", "cancel")
    page = _desk(context, site)
    _ticket(page, ticket).click()
    panel = page.locator("#customer-panel")
    expect(panel).to_contain_text("Ivan Santos")
    expect(panel).to_contain_text(IVAN_EMAIL)
    for order in IVAN_ORDERS:
        expect(panel.locator(f'.panel-order[data-order="{order}"]')).to_be_visible()
    expect(panel.locator(f'.panel-order[data-order="{pending}"] .pill')).to_have_text("pending")
    expect(panel.locator(".panel-conversation.this")).to_contain_text(f"#{ticket}")

    # A change run from the desk, from pickers (the change form is built from each change's
    # schema): the order, its items, the product's other options, the customer's methods.
    page.select_option("#change-tool", "modify_pending_order_items")
    expect(page.locator("#change-about")).to_contain_text("Swap items of a pending order")
    page.select_option("#change-arg-order_id", pending)
    page.locator('#change-inputs input[data-arg="item_ids"]').first.check()
    new_option = page.locator("#change-new-0")
    expect(new_option.locator('option[value="1793929609"]')).to_have_count(1)
    new_option.select_option("1793929609")  # the high-back chair
    page.select_option("#change-arg-payment_method_id", "paypal_6151711")
    _shot(page, "22b-desk-change-form")
    page.click("#change-run")
    expect(page.locator("#change-result")).to_contain_text("Executed: Change order")
    changed = panel.locator(f'.panel-order[data-order="{pending}"]')
    expect(changed.locator(".pill").first).to_have_text("pending (item modified)")
    expect(changed.locator(".panel-actions")).to_contain_text("executed")
    expect(changed.locator(".panel-actions")).to_contain_text("Anna Berg")
    page.select_option("#change-tool", "cancel_pending_order")
    expect(page.locator("#change-arg-reason option")).to_have_count(2)  # the schema's enum
    page.select_option("#change-arg-order_id", "#W5183325")  # another pending order
    page.click("#change-run")
    expect(page.locator("#change-result")).to_contain_text("Executed: Cancel order")
    cancelled = panel.locator('.panel-order[data-order="#W5183325"]')
    expect(cancelled.locator(".pill").first).to_have_text("cancelled")

    # Assignment: to a colleague, and back to the queue.
    page.select_option("#assign", label="Bob Marsh")
    expect(_ticket(page, ticket).locator(".pill")).to_have_text("claimed · Bob Marsh")
    expect(page.locator("#ticket-state")).to_contain_text("With Bob Marsh")
    page.select_option("#assign", label="Unassigned")
    expect(_ticket(page, ticket).locator(".pill")).to_have_text("open")

    # Saved replies: save the reply being written, insert it into another, delete it.
    page.fill("#reply", "Refunds take 5-7 working days to reach your card.")
    page.click("#saved-manage summary")
    page.fill("#saved-title", "Refund timing")
    page.click("#save-reply")
    expect(page.locator("#saved-list")).to_contain_text("Refund timing")
    page.fill("#reply", "Hi Ivan! ")
    page.select_option("#saved-replies", label="Refund timing")
    expect(page.locator("#reply")).to_have_value(
        "Hi Ivan! Refunds take 5-7 working days to reach your card."
    )  # inserted, to be edited before it is sent
    _shot(page, "22-desk-customer-panel")
    page.click('#saved-list button:has-text("Delete")')
    expect(page.locator("#saved-list")).not_to_contain_text("Refund timing")
    assert site.api("GET", "/v1/saved-replies").json() == []
    assert conversation
    page.close()


def test_a_note_on_the_desk_never_reaches_the_customer(
    context, site: Site, fake: FakeAnthropic
) -> None:  # type: ignore[no-untyped-def]
    secret = "SECRET-NOTE: <b>the bank</b> flagged this card"  # shown as typed, not as HTML
    customer: Page = context.new_page()
    customer.goto(site.base)
    fake.enqueue(
        tool_use("escalate_to_human", {"reason": "Customer asked for a person", "summary": "x"}),
        text("I've passed you to a colleague; they'll reply here."),
    )
    customer.click("#human")
    expect(customer.locator("#state")).to_have_text("With a human agent")

    desk = _desk(context, site)
    desk.locator("#tickets .ticket").first.click()
    expect(desk.locator("#transcript")).to_contain_text("talk to a human")
    expect(desk.locator("#notes-title")).to_contain_text("Only staff see notes")
    desk.fill("#note", secret)
    desk.click("#add-note")
    expect(desk.locator("#note-list .note-item")).to_contain_text(secret)
    expect(desk.locator("#note-list .note-item")).to_contain_text("Anna Berg")
    expect(desk.locator("#note")).to_have_value("")
    desk.fill("#reply", "Hi! Anna here, I'm looking into it.")
    desk.click("#send-reply")
    expect(desk.locator("#transcript")).to_contain_text("Anna here")
    _shot(desk, "23-desk-note-and-reply")

    # The customer sees the person join and reply, and nothing of the note.
    expect(customer.locator(".msg.staff")).to_contain_text("Anna here")
    expect(customer.locator(".msg.system")).to_have_text([JOINED])
    assert "SECRET-NOTE" not in customer.inner_text("body")
    assert "SECRET-NOTE" not in customer.content()
    customer.reload()
    expect(customer.locator(".msg.staff")).to_contain_text("Anna here")
    assert "SECRET-NOTE" not in customer.content()
    _shot(customer, "24-customer-never-sees-the-note")
    customer.close()
    desk.close()


def test_the_desk_updates_live_without_reloading(context, site: Site, fake: FakeAnthropic) -> None:  # type: ignore[no-untyped-def]
    conversation, first = site.hand_off(fake, IVAN_EMAIL, "where is my refund", "refund")
    page = _desk(context, site)
    lists: list[str] = []
    page.on("request", lambda r: lists.append(r.url) if "/v1/tickets?" in r.url else None)
    _ticket(page, first).click()
    expect(page.locator("#transcript")).to_contain_text("where is my refund")
    page.evaluate("window.__marker = 1")

    # A new hand-off appears in the list.
    _, second = site.hand_off(fake, YARA_EMAIL, "my parcel is lost", "lost-parcel")
    expect(_ticket(page, second)).to_be_visible()
    expect(_ticket(page, second)).to_have_class(re.compile(r"\bfresh\b"))  # new since opened
    expect(page).to_have_title(re.compile(r"^\(1\) "))  # counted in a background tab
    assert _listed(page) == [second, first]

    # After the server ends the stream, the page follows on from where it was.
    with _reconnected(page, "/v1/desk/events"):
        pass
    site.customer_says(conversation, "Hello? Is anyone there?")
    expect(page.locator("#transcript .msg.customer").last).to_contain_text("Is anyone there?")

    # A colleague's note appears too; a message in another conversation marks its ticket.
    bob = site.sign_in("bob")
    site.api("POST", f"/v1/tickets/{first}/notes", bob, json={"text": "Refund went out Monday."})
    expect(page.locator("#note-list")).to_contain_text("Refund went out Monday.")
    expect(page.locator("#note-list")).to_contain_text("Bob Marsh")
    other = site.api("GET", f"/v1/tickets/{second}").json()["conversation_id"]
    site.customer_says(other, "any news?")
    expect(_ticket(page, second).locator(".new-message")).to_be_visible()
    # ... and a colleague taking a ticket changes its row.
    site.api("POST", f"/v1/tickets/{second}/claim", bob)
    expect(_ticket(page, second).locator(".pill")).to_have_text("claimed · Bob Marsh")
    _shot(page, "25-desk-live")

    # The customer of the open ticket ends the conversation: the desk says so, and stops
    # offering a reply that would not reach them.
    ended = site.api("POST", f"/v1/conversations/{conversation}/end", site.backend)
    assert ended.is_success, ended.text
    expect(_ticket(page, first).locator(".pill.left")).to_have_text("customer left")
    expect(page.locator("#reply-closed")).to_contain_text("The customer ended the conversation")
    expect(page.locator("#reply-form")).to_be_hidden()
    expect(page.locator("#resolve")).to_be_enabled()  # the follow-up is theirs to finish

    assert page.evaluate("window.__marker") == 1  # no reload
    assert len(lists) < 10  # the list is fetched when something changed, not polled
    page.close()


def test_the_customer_sees_people_join_and_leave_without_reloading(
    context, site: Site, fake: FakeAnthropic
) -> None:  # type: ignore[no-untyped-def]
    customer: Page = context.new_page()
    customer.goto(site.base)
    fake.enqueue(
        tool_use("escalate_to_human", {"reason": "Customer asked for a person", "summary": "x"}),
        text("I've passed you to a colleague; they'll reply here."),
    )
    with customer.expect_request(lambda r: "/events?after=" in r.url):  # following, from now
        customer.click("#human")
    expect(customer.locator("#state")).to_have_text("With a human agent")
    customer.evaluate("window.__marker = 1")
    fetched: list[str] = []
    customer.on(
        "request",
        lambda r: fetched.append(r.url) if re.search(r"/v1/conversations/[^/]+$", r.url) else None,
    )
    # The stream ends and the page resumes it, without reading the transcript over and over.
    with _reconnected(customer, "/events"):
        pass
    assert fetched == []

    anna = site.sign_in("anna")
    (ticket,) = site.api("GET", "/v1/tickets", anna).json()
    assert site.api("POST", f"/v1/tickets/{ticket['id']}/claim", anna).is_success
    expect(customer.locator(".msg.system")).to_have_text([JOINED])
    reply = site.api("POST", f"/v1/tickets/{ticket['id']}/reply", anna,
                     json={"text": "Hi, Anna here. How can I help?"})  # fmt: skip
    assert reply.is_success
    expect(customer.locator(".msg.staff")).to_contain_text("Hi, Anna here.")
    expect(customer.locator(".msg.staff .who")).to_have_text("Anna Berg")
    assert site.api("POST", f"/v1/tickets/{ticket['id']}/resolve", anna).is_success
    expect(customer.locator(".msg.system")).to_have_text([JOINED, RESOLVED])
    expect(customer.locator("#state")).to_be_hidden()  # back with the assistant
    rating = customer.locator(".msg.rating")
    expect(rating).to_be_visible()
    # The rating card asks, and leaves telling what happened to the notice just above it.
    expect(rating.locator(".question")).to_have_text("How did we do?")
    expect(rating.locator(".thumbs button")).to_have_count(2)
    assert customer.inner_text("body").count("resolved this conversation") == 1
    assert customer.inner_text("body").count("the assistant is back") == 1
    _shot(customer, "26-customer-sees-join-and-leave")
    assert customer.evaluate("window.__marker") == 1  # no reload

    # Reloaded, the notices stand where they happened among the messages.
    customer.reload()
    expect(customer.locator(".msg.system")).to_have_text([JOINED, RESOLVED])
    shown = customer.locator("#log > .msg:not(.intro):not(.rating)").evaluate_all(
        "(items) => items.map((i) => [i.classList[1], i.innerText.trim()])"
    )
    assert [role for role, _ in shown] == ["customer", "assistant", "system", "staff", "system"]
    assert shown[2][1] == JOINED and "Anna here" in shown[3][1] and shown[4][1] == RESOLVED
    customer.close()
