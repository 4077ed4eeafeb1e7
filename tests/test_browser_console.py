"""Every page a new user opens loads clean (issue 24): the customer chat (a question answered
by the offline model, a hand-off, "I'm done" and the rating card), the desk signed in as a
staff account (the ticket opened), the report, /docs and /redoc. In Chromium, any console
error, uncaught error, failed request or response of 400 and above fails the test; so does a
page without its icon.

Screenshots of each page are saved under test-artifacts/browser/.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import pytest
from playwright.sync_api import ConsoleMessage, Page, Request, Response, expect

from agent.api.app import create_app
from agent.runtime import build_runtime
from agent.store import staff
from agent.store.db import transaction
from agent.store.importer import import_path
from ingest.pipeline import ingest
from tests.conftest import ARTIFACTS, RETAIL_SLICE, SettingsFactory
from tests.live_server import serve

pytestmark = pytest.mark.slow
DEMO_DOCS = Path(__file__).resolve().parents[1] / "demo" / "docs"
PASSWORD = "correct horse battery"


@dataclass
class Watched:
    """What went wrong on one page, as the browser saw it."""

    name: str
    problems: list[str] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.problems.append(f"console error: {message.text} at {message.location['url']}")

    def response(self, response: Response) -> None:
        if response.status >= 400:
            self.problems.append(f"{response.status} {response.request.method} {response.url}")

    def failed(self, request: Request) -> None:
        # The page ending its own live feed (or leaving while it runs) aborts a request: that
        # is no failure. Anything else (refused, reset, blocked) is.
        if request.failure != "net::ERR_ABORTED":
            self.problems.append(f"failed {request.method} {request.url}: {request.failure}")


def _watch(page: Page, name: str) -> Watched:
    watched = Watched(name)
    page.on("console", watched.console)
    page.on("pageerror", lambda error: watched.problems.append(f"uncaught: {error}"))
    page.on("response", watched.response)
    page.on("requestfailed", watched.failed)
    return watched


def _shot(page: Page, name: str, *, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


def _icon(page: Page, watched: Watched) -> None:
    """The page links the app's icon, and it is served (as is /favicon.ico, which browsers
    ask for by themselves)."""
    icons = page.locator('link[rel="icon"]')
    href = icons.first.get_attribute("href") if icons.count() else None
    if href != "/static/favicon.svg":
        watched.problems.append(f"icon: {page.url} links {href!r}")
    for path in ("/static/favicon.svg", "/favicon.ico"):
        served = page.request.get(urljoin(page.url, path))
        kind = served.headers.get("content-type", "")
        if served.status != 200 or not kind.startswith("image/svg+xml"):
            watched.problems.append(f"icon: {path} is {served.status} {kind}")


@pytest.fixture
def offline_site(make_settings: SettingsFactory) -> Iterator[str]:
    """The product with no Anthropic key (the offline model), the demo store and help pages,
    and a staff account."""
    runtime = build_runtime(make_settings(anthropic_base_url=None, anthropic_api_key=None))
    import_path(runtime.engine, RETAIL_SLICE)
    assert runtime.agent.kb is not None
    ingest(runtime.agent.kb, [DEMO_DOCS])
    with transaction(runtime.engine) as session:
        staff.create_account(session=session, username="anna", display_name="Anna Berg",
                             password=PASSWORD)  # fmt: skip
    with serve(create_app(runtime.settings, runtime)) as base:
        yield base


def test_no_page_logs_an_error_or_fails_a_request(browser, offline_site: str) -> None:  # type: ignore[no-untyped-def]
    base = offline_site
    watched: list[Watched] = []
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        # The customer: a question answered from the help centre, a person asked for, then
        # "I'm done" and the rating card (which asks whether a rating was given before).
        chat = context.new_page()
        watched.append(_watch(chat, "chat"))
        chat.goto(base)
        _icon(chat, watched[-1])
        chat.fill("#text", "How do I descale my kettle?")
        chat.click("#send")
        chat.wait_for_selector(".msg.assistant .sources")
        chat.click("#human")
        expect(chat.locator("#state")).to_have_text("With a human agent")
        with chat.expect_response(lambda r: r.url.endswith("/rating")):
            chat.click("#done")  # asks whether a rating was given before: none yet
        expect(chat.locator(".msg.rating")).to_be_visible()
        _shot(chat, "30-console-clean-chat")

        # Staff: the desk, signed in with an account, the customer's ticket opened.
        desk = context.new_page()
        watched.append(_watch(desk, "desk"))
        desk.goto(base + "/staff")
        _icon(desk, watched[-1])
        desk.fill("#username", "anna")
        desk.fill("#password", PASSWORD)
        desk.click("#sign-in")
        expect(desk.locator("#desk")).to_be_visible()
        desk.locator("#tickets .ticket").first.click()
        expect(desk.locator(".transcript")).to_contain_text("descale my kettle")
        # The customer panel, the notes and the order changes load beside the transcript.
        for loaded in ("Not verified: the customer", "No notes yet.", "No order changes in this"):
            expect(desk.get_by_text(loaded)).to_be_visible()
        _shot(desk, "31-console-clean-desk")

        # The report, in the same tab (its sign-in is the tab's).
        desk.click("a.report-link")
        expect(desk.locator("#report")).to_have_attribute("data-loaded", "true")
        _icon(desk, watched[-1])
        _shot(desk, "32-console-clean-report")

        # The API docs: Swagger UI and ReDoc, their scripts from this server.
        docs = context.new_page()
        watched.append(_watch(docs, "docs"))
        docs.goto(base + "/docs")
        docs.wait_for_selector('[data-path="/v1/conversations/{conversation_id}/messages"]')
        docs.wait_for_load_state("networkidle")
        _shot(docs, "33-console-clean-docs", full_page=False)
        redoc = context.new_page()
        watched.append(_watch(redoc, "redoc"))
        redoc.goto(base + "/redoc")
        redoc.wait_for_selector("text=API docs by Redocly")
        redoc.wait_for_load_state("networkidle")
        # ReDoc drops its logo when the image fails to load.
        if not redoc.evaluate("""() => {
              const logo = document.querySelector("a[href='https://redocly.com/redoc/'] img");
              return Boolean(logo && logo.complete && logo.naturalWidth > 0); }"""):
            watched[-1].problems.append("ReDoc's logo was not drawn")
        _shot(redoc, "34-console-clean-redoc", full_page=False)  # the logo at the bottom
        problems = [f"{w.name}: {problem}" for w in watched for problem in w.problems]
    finally:
        context.close()
    assert not problems, "\n".join(problems)
