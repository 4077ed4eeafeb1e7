"""The desk a support team works in: staff accounts, assignment, internal notes, saved
replies, the customer panel, ticket search, and the live feeds of the desk and the customer."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from agent.api.app import create_app
from agent.runtime import Runtime, build_runtime
from agent.store import desk_events, staff
from agent.store.db import transaction
from agent.store.desk_events import DeskEventKind
from agent.store.importer import import_path
from agent.store.keys import create_key
from agent.store.tables import KeyScope
from tests.conftest import IVAN, RETAIL_SLICE, YARA, SettingsFactory
from tests.fake_anthropic import FakeAnthropic, text, tool_use
from tests.live_server import serve

PASSWORD = "correct horse battery"


@dataclass
class Desk:
    client: TestClient
    runtime: Runtime
    backend: dict[str, str]
    admin: dict[str, str]

    def sign_in(self, username: str, password: str = PASSWORD) -> dict[str, str]:
        response = self.client.post(
            "/v1/staff/sessions", json={"username": username, "password": password}
        )
        assert response.status_code == 201, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    def hand_off(self, fake: FakeAnthropic, email: str, said: str, reason: str) -> tuple[str, int]:
        """A conversation the assistant handed to a person: (its id, the ticket's id)."""
        conversation = self.client.post(
            "/v1/conversations", json={"customer_email": email}, headers=self.backend
        ).json()["id"]
        fake.enqueue(tool_use("escalate_to_human", {"reason": reason, "summary": said}),
                     text("A colleague will reply here."))  # fmt: skip
        turn = self.client.post(f"/v1/conversations/{conversation}/messages",
                                json={"text": said}, headers=self.backend)  # fmt: skip
        assert turn.json()["state"] == "human", turn.text
        tickets = self.client.get(f"/v1/tickets?q={reason}", headers=self.admin).json()
        return conversation, next(t["id"] for t in tickets if t["conversation_id"] == conversation)


def _accounts(runtime: Runtime) -> None:
    with transaction(runtime.engine) as session:
        staff.create_account(session=session, username="anna", display_name="Anna Berg",
                             password=PASSWORD)  # fmt: skip
        staff.create_account(session=session, username="bob", display_name="Bob Marsh",
                             password=PASSWORD)  # fmt: skip


def _runtime(make_settings: SettingsFactory, **overrides: Any) -> tuple[Runtime, dict[str, str]]:
    runtime = build_runtime(make_settings(**overrides))
    import_path(runtime.engine, RETAIL_SLICE)
    _accounts(runtime)
    with transaction(runtime.engine) as session:
        keys = {s: create_key(session=session, name=f"{s.value}-key", scope=s)[1]
                for s in (KeyScope.BACKEND, KeyScope.ADMIN)}  # fmt: skip
    return runtime, {k.value: f"Bearer {v}" for k, v in keys.items()}


@pytest.fixture
def db_url(any_db_url: str) -> str:
    """Every desk test runs on SQLite and on PostgreSQL (search, locks, the feed)."""
    return any_db_url


@pytest.fixture
def desk(make_settings: SettingsFactory) -> Iterator[Desk]:
    runtime, keys = _runtime(make_settings, event_poll_seconds=0.05, event_stream_seconds=2)
    with TestClient(create_app(runtime.settings, runtime)) as client:
        yield Desk(client, runtime, {"Authorization": keys["backend"]},
                   {"Authorization": keys["admin"]})  # fmt: skip


def _transcript(desk: Desk, conversation: str) -> dict[str, Any]:
    response = desk.client.get(f"/v1/conversations/{conversation}", headers=desk.backend)
    assert response.status_code == 200
    return response.json()


def test_staff_sign_in_and_reply_under_their_own_name(desk: Desk, fake: FakeAnthropic) -> None:
    wrong = desk.client.post("/v1/staff/sessions", json={"username": "anna", "password": "nope"})
    unknown = desk.client.post("/v1/staff/sessions",
                               json={"username": "zed", "password": PASSWORD})  # fmt: skip
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["error"]["message"] == unknown.json()["error"]["message"]

    anna = desk.sign_in("anna")
    me = desk.client.get("/v1/staff/me", headers=anna).json()
    assert me["display_name"] == "Anna Berg" and me["username"] == "anna"
    assert desk.client.get("/v1/staff/me", headers=desk.admin).json()["id"] is None  # a key
    names = [s["display_name"] for s in desk.client.get("/v1/staff", headers=anna).json()]
    assert names == ["Anna Berg", "Bob Marsh"]

    conversation, ticket = desk.hand_off(fake, IVAN["email"], "I want a person", "asked")
    claimed = desk.client.post(f"/v1/tickets/{ticket}/claim", headers=anna).json()
    assert claimed["claimed_by"] == "Anna Berg" and claimed["assignee_id"] == me["id"]
    bob = desk.sign_in("bob")  # a colleague cannot take it over by claiming
    assert desk.client.post(f"/v1/tickets/{ticket}/claim", headers=bob).status_code == 409
    reply = desk.client.post(f"/v1/tickets/{ticket}/reply", json={"text": "Hi Ivan, Anna here."},
                             headers=anna)  # fmt: skip
    assert reply.json()["author"] == "Anna Berg"
    seen = _transcript(desk, conversation)
    assert seen["messages"][-1]["role"] == "staff"
    assert seen["messages"][-1]["author"] == "Anna Berg"
    assert [n["text"] for n in seen["notices"]] == ["Anna Berg joined the conversation."]

    desk.client.delete("/v1/staff/sessions/current", headers=anna)
    gone = desk.client.get("/v1/tickets", headers=anna)
    assert gone.status_code == 401 and "sign in again" in gone.json()["error"]["message"]


def test_disabling_an_account_ends_its_sign_ins(desk: Desk) -> None:
    bob = desk.sign_in("bob")
    with transaction(desk.runtime.engine) as session:
        staff.update_account(session=session, username="bob", disabled=True)
    assert desk.client.get("/v1/tickets", headers=bob).status_code == 401
    again = desk.client.post("/v1/staff/sessions", json={"username": "bob", "password": PASSWORD})
    assert again.status_code == 401


def test_failed_sign_ins_are_limited_and_successful_ones_are_not(desk: Desk) -> None:
    """Ten wrong passwords for one username in a minute, and even the right one waits for the
    minute to end; many colleagues signing in from one address are not held up."""
    for _ in range(12):  # a whole office behind one address, at the start of a shift
        desk.sign_in("bob")
    codes = [
        desk.client.post("/v1/staff/sessions",
                         json={"username": "anna", "password": f"guess-{i}"}).status_code
        for i in range(11)
    ]  # fmt: skip
    assert codes == [401] * 10 + [429]
    right = desk.client.post("/v1/staff/sessions", json={"username": "anna", "password": PASSWORD})
    assert right.status_code == 429 and int(right.headers["Retry-After"]) >= 1
    assert desk.sign_in("bob")  # another username from the same address still signs in


def test_notes_never_reach_the_customer_or_the_model(desk: Desk, fake: FakeAnthropic) -> None:
    conversation, ticket = desk.hand_off(fake, IVAN["email"], "refund please", "refund-dispute")
    anna = desk.sign_in("anna")
    note = desk.client.post(f"/v1/tickets/{ticket}/notes",
                            json={"text": "SECRET-NOTE: card flagged by the bank"},
                            headers=anna)  # fmt: skip
    assert note.status_code == 201 and note.json()["author"] == "Anna Berg"
    notes = desk.client.get(f"/v1/tickets/{ticket}/notes", headers=desk.admin).json()
    assert [n["text"] for n in notes] == ["SECRET-NOTE: card flagged by the bank"]
    empty = desk.client.post(f"/v1/tickets/{ticket}/notes", json={"text": "  "}, headers=anna)
    assert empty.status_code == 422

    assert "SECRET-NOTE" not in json.dumps(_transcript(desk, conversation))
    desk.client.post(f"/v1/tickets/{ticket}/resolve", headers=anna)
    fake.enqueue(text("Anything else?"))
    desk.client.post(f"/v1/conversations/{conversation}/messages", json={"text": "thanks"},
                     headers=desk.backend)  # fmt: skip
    assert "SECRET-NOTE" not in json.dumps(fake.bodies[-1])  # the model never sees it


def test_assignment_tells_the_customer_who_joined_and_left(desk: Desk, fake: FakeAnthropic) -> None:
    conversation, ticket = desk.hand_off(fake, YARA["email"], "my parcel is lost", "lost-parcel")
    anna = desk.sign_in("anna")
    bob_id = next(s["id"] for s in desk.client.get("/v1/staff", headers=anna).json()
                  if s["username"] == "bob")  # fmt: skip
    assigned = desk.client.post(f"/v1/tickets/{ticket}/assign", json={"staff_id": bob_id},
                                headers=anna).json()  # fmt: skip
    assert assigned["claimed_by"] == "Bob Marsh" and assigned["status"] == "claimed"
    bob = desk.sign_in("bob")
    mine = desk.client.get("/v1/tickets?assignee=me", headers=bob).json()
    assert [t["id"] for t in mine] == [ticket]
    assert desk.client.get("/v1/tickets?assignee=me", headers=anna).json() == []

    back = desk.client.post(f"/v1/tickets/{ticket}/assign", json={"staff_id": None}, headers=bob)
    assert back.json()["status"] == "open" and back.json()["claimed_by"] is None
    queue = desk.client.get("/v1/tickets?assignee=none&status=open", headers=bob).json()
    assert ticket in [t["id"] for t in queue]
    nobody = desk.client.post(f"/v1/tickets/{ticket}/assign", json={"staff_id": 999}, headers=bob)
    assert nobody.status_code == 422

    desk.client.post(f"/v1/tickets/{ticket}/reply", json={"text": "On it."}, headers=anna)
    desk.client.post(f"/v1/tickets/{ticket}/resolve", headers=anna)
    notices = [n["text"] for n in _transcript(desk, conversation)["notices"]]
    assert notices == [
        "Bob Marsh joined the conversation.",
        "Bob Marsh stepped away; the next person on our team will pick this up.",
        "Anna Berg joined the conversation.",
        "Anna Berg has resolved this conversation; the assistant is back.",
    ]


def test_every_ticket_is_searchable(desk: Desk, fake: FakeAnthropic) -> None:
    first, t1 = desk.hand_off(fake, IVAN["email"], f"order {IVAN['orders'][0]} arrived broken",
                              "damaged-item")  # fmt: skip
    _, t2 = desk.hand_off(fake, YARA["email"], "where is my gift card balance", "gift-card")
    anna = desk.sign_in("anna")
    desk.client.post(f"/v1/tickets/{t1}/resolve", headers=anna)

    def ids(query: str) -> list[int]:
        response = desk.client.get(f"/v1/tickets?{query}", headers=anna)
        assert response.status_code == 200, response.text
        assert int(response.headers["X-Total-Count"]) == len(response.json())
        return [t["id"] for t in response.json()]

    assert ids("") == [t1, t2] and ids("newest_first=true") == [t2, t1]
    assert ids("status=resolved") == [t1] and ids("status=open") == [t2]
    assert ids("customer=" + IVAN["email"]) == [t1]
    assert ids("customer=yara") == [t2]  # part of the name
    assert ids("order_id=" + IVAN["orders"][0].lstrip("#")) == [t1]  # without the '#'
    assert ids("q=GIFT%20card") == [t2]  # the customer's words, any case
    assert ids("q=100%25") == []  # a LIKE wildcard is matched literally
    page = desk.client.get("/v1/tickets?limit=1&offset=1", headers=anna)
    assert [t["id"] for t in page.json()] == [t2] and page.headers["X-Total-Count"] == "2"
    assert first


def test_saved_replies(desk: Desk) -> None:
    anna = desk.sign_in("anna")
    made = desk.client.post("/v1/saved-replies",
                            json={"title": "Refund timing", "text": "Refunds take 5-7 days."},
                            headers=anna)  # fmt: skip
    assert made.status_code == 201 and made.json()["created_by"] == "Anna Berg"
    twice = desk.client.post("/v1/saved-replies", json={"title": "Refund timing", "text": "x"},
                             headers=anna)  # fmt: skip
    assert twice.status_code == 409
    listed = desk.client.get("/v1/saved-replies", headers=desk.admin).json()
    assert [r["title"] for r in listed] == ["Refund timing"]
    assert (
        desk.client.delete(f"/v1/saved-replies/{made.json()['id']}", headers=anna).status_code
        == 204
    )
    assert desk.client.get("/v1/saved-replies", headers=anna).json() == []
    assert desk.client.delete("/v1/saved-replies/999", headers=anna).status_code == 404


def test_customer_panel_shows_orders_with_their_changes(desk: Desk, fake: FakeAnthropic) -> None:
    conversation, ticket = desk.hand_off(fake, IVAN["email"], "cancel please", "cancel")
    anna = desk.sign_in("anna")
    customer_id = desk.client.get(f"/v1/tickets/{ticket}", headers=anna).json()["customer_id"]
    panel = desk.client.get(f"/v1/customers/{customer_id}", headers=anna).json()
    assert panel["email"] == IVAN["email"]
    assert {o["order_id"] for o in panel["orders"]} >= set(IVAN["orders"])
    (earlier,) = panel["conversations"]
    assert earlier["id"] == conversation and earlier["tickets"][0]["id"] == ticket

    pending = next(o for o in panel["orders"] if o["status"] == "pending")
    run = desk.client.post(f"/v1/customers/{customer_id}/actions", headers=anna, json={
        "tool": "cancel_pending_order", "conversation_id": conversation,
        "arguments": {"order_id": pending["order_id"], "reason": "no longer needed"}})  # fmt: skip
    assert run.status_code == 201 and run.json()["status"] == "executed", run.text
    panel = desk.client.get(f"/v1/customers/{customer_id}", headers=anna).json()
    order = next(o for o in panel["orders"] if o["order_id"] == pending["order_id"])
    assert order["status"] == "cancelled"
    assert [(a["tool"], a["status"], a["proposed_by"]) for a in order["actions"]] == [
        ("cancel_pending_order", "executed", "staff:Anna Berg")
    ]
    assert desk.client.get("/v1/customers/nobody", headers=anna).status_code == 404
    assert desk.client.get(f"/v1/customers/{customer_id}", headers=desk.backend).status_code == 403


def _read_events(response: httpx.Response, into: list[tuple[str, dict[str, Any]]]) -> None:
    name = None
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and name:
            into.append((name, json.loads(line.split(":", 1)[1])))


def _follow(url: str, headers: dict[str, str]) -> tuple[threading.Thread, list[Any]]:
    events: list[tuple[str, dict[str, Any]]] = []

    def run() -> None:
        try:
            with httpx.stream("GET", url, headers=headers, timeout=30) as response:
                assert response.status_code == 200
                _read_events(response, events)
        except httpx.RemoteProtocolError:
            pass  # the test's server stopped while the desk was still following

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, events


def _wait_for(events: list[Any], count: int) -> None:
    import time

    deadline = time.monotonic() + 10
    while len(events) < count and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.mark.slow
def test_live_feeds_reach_the_desk_and_the_customer(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    runtime, keys = _runtime(make_settings, event_poll_seconds=0.05, event_stream_seconds=20)
    app = create_app(runtime.settings, runtime)
    backend, admin = {"Authorization": keys["backend"]}, {"Authorization": keys["admin"]}
    with serve(app) as base:
        desk_thread, desk_events = _follow(f"{base}/v1/desk/events", admin)
        _wait_for(desk_events, 1)  # "ready": following from now on
        assert desk_events[0][0] == "ready"
        conversation = httpx.post(f"{base}/v1/conversations", headers=backend,
                                  json={"customer_email": IVAN["email"]}).json()["id"]  # fmt: skip
        fake.enqueue(tool_use("escalate_to_human", {"reason": "asked", "summary": "wants a human"}),
                     text("A colleague will reply here."))  # fmt: skip
        httpx.post(f"{base}/v1/conversations/{conversation}/messages", headers=backend,
                   json={"text": "a person please"}, timeout=30)  # fmt: skip
        _wait_for(desk_events, 2)
        assert desk_events[1][0] == "desk" and desk_events[1][1]["kind"] == "ticket_opened"
        ticket = desk_events[1][1]["ticket_id"]

        since = httpx.get(f"{base}/v1/conversations/{conversation}", headers=backend).json()
        customer_thread, seen = _follow(
            f"{base}/v1/conversations/{conversation}/events?after={since['last_event_id']}", backend
        )
        httpx.post(f"{base}/v1/conversations/{conversation}/messages", headers=backend,
                   json={"text": "hello? anyone?"}, timeout=30)  # fmt: skip
        token = httpx.post(f"{base}/v1/staff/sessions",
                           json={"username": "anna", "password": PASSWORD}).json()["token"]  # fmt: skip
        anna = {"Authorization": f"Bearer {token}"}
        httpx.post(f"{base}/v1/tickets/{ticket}/notes", json={"text": "private"}, headers=anna)
        httpx.post(
            f"{base}/v1/tickets/{ticket}/reply", json={"text": "Hi, Anna here."}, headers=anna
        )
        httpx.post(f"{base}/v1/tickets/{ticket}/resolve", headers=anna)
        customer_thread.join(timeout=10)
        assert not customer_thread.is_alive()  # the customer's stream ends when the bot is back
        _wait_for(desk_events, 7)

    kinds = [e["kind"] for name, e in desk_events if name == "desk"]
    assert kinds == ["ticket_opened", "customer_message", "note", "joined", "staff_reply",
                     "resolved"]  # fmt: skip
    said = [e["text"] for name, e in desk_events
            if name == "desk" and e["kind"] == "customer_message"]  # fmt: skip
    assert said == ["hello? anyone?"]  # the desk sees what the customer wrote, as it arrives
    assert [(name, e["text"]) for name, e in seen if name != "ready"] == [
        ("notice", "Anna Berg joined the conversation."),
        ("staff_reply", ""),
        ("notice", "Anna Berg has resolved this conversation; the assistant is back."),
    ]
    assert "private" not in json.dumps(seen)
    desk_thread.join(timeout=1)


def test_a_staff_sign_in_has_its_own_rate_limit(make_settings: SettingsFactory) -> None:
    """The desk refreshes several panels on each live event: a sign-in gets the staff limit,
    not an API key's."""
    runtime, keys = _runtime(make_settings, rate_limit_per_key=3, rate_limit_per_staff=8)
    with TestClient(create_app(runtime.settings, runtime)) as client:
        token = client.post("/v1/staff/sessions",
                            json={"username": "anna", "password": PASSWORD}).json()["token"]  # fmt: skip
        anna = {"Authorization": f"Bearer {token}"}
        codes = [client.get("/v1/tickets", headers=anna).status_code for _ in range(9)]
        assert codes == [200] * 8 + [429]
        admin = [client.get("/v1/tickets", headers={"Authorization": keys["admin"]}).status_code
                 for _ in range(4)]  # fmt: skip
        assert admin == [200] * 3 + [429]


def test_the_feed_hands_out_events_that_commit_out_of_order(db_url: str) -> None:
    """PostgreSQL numbers events when they are inserted, not when they commit: an event that
    becomes visible after a higher-numbered one still reaches the followers, and a gap that
    never fills (a rolled-back insert) holds nothing up, however many events follow it."""
    from agent.api.event_feed import BATCH, FeedHub
    from agent.store.db import make_engine
    from agent.store.tables import DeskEvent

    engine = make_engine(db_url)

    def add(*ids: int) -> None:
        with transaction(engine) as session:
            session.add_all(DeskEvent(id=i, kind="note", conversation_id=None) for i in ids)

    def read() -> list[tuple[int | None, bool]]:
        return [(d.event.id, d.late) for d in feed._read()]

    feed = FeedHub(engine, poll_seconds=1)
    feed._position = 0
    add(1, 2)
    assert read() == [(1, False), (2, False)]
    add(4)  # 3 is still in an open transaction
    assert read() == [(4, False)]
    assert read() == []
    add(3)
    assert read() == [(3, True)]
    assert read() == []  # each event once

    add(*range(6, 6 + BATCH + 50))  # 5 never comes; many events after it
    first, second = read(), read()
    assert [i for i, _ in first + second] == list(range(6, 6 + BATCH + 50))
    engine.dispose()


@pytest.mark.slow
def test_many_followers_share_one_reader(make_settings: SettingsFactory) -> None:
    """Twenty open desks read the event table once per interval between them, not twenty
    times: each worker has one reader that hands events to every stream."""
    runtime, keys = _runtime(make_settings, event_poll_seconds=0.1, event_stream_seconds=1.5)
    app = create_app(runtime.settings, runtime)
    admin = {"Authorization": keys["admin"]}
    with serve(app) as base:
        followers = [_follow(f"{base}/v1/desk/events", admin) for _ in range(20)]
        for _, events in followers:
            _wait_for(events, 1)
        with transaction(runtime.engine) as session:  # something happens while all follow
            desk_events.record(session=session, kind=DeskEventKind.NOTE, conversation_id=None)
        for thread, _ in followers:
            thread.join(timeout=10)
    reads = app.state.supportbot.feed_hub.reads
    assert all([name for name, _ in events] == ["ready", "desk"] for _, events in followers)
    assert reads <= 1.5 / 0.1 + 5  # one reader: about one read per interval


def test_a_refusal_before_verification_is_a_step_not_a_failure(
    desk: Desk, fake: FakeAnthropic
) -> None:
    """The transcript staff read marks a tool that refused only because the customer was not
    verified yet, so the desk shows it as a step rather than a failure."""
    conversation = desk.client.post("/v1/conversations", json={}, headers=desk.backend).json()
    fake.enqueue(tool_use("order_status", {"order_id": IVAN["orders"][0]}),
                 text("First, what is the email on your account?"))  # fmt: skip
    turn = desk.client.post(f"/v1/conversations/{conversation['id']}/messages",
                            json={"text": f"where is {IVAN['orders'][0]}?"},
                            headers=desk.backend).json()  # fmt: skip
    (answered,) = turn["tool_calls"]  # the turn's own answer says the same
    (call,) = _transcript(desk, conversation["id"])["messages"][-1]["tool_calls"]
    assert call["is_error"] is True and call["needs_verification"] is True
    assert answered == call


def test_a_stream_that_starts_after_a_late_event_still_gets_it(db_url: str) -> None:
    """A browser that reconnects with a Last-Event-ID above an event that only just became
    visible (it committed after a higher-numbered one) is handed that event on connect."""
    import asyncio

    from agent.api.event_feed import FeedHub
    from agent.store.db import make_engine
    from agent.store.tables import DeskEvent

    engine = make_engine(db_url)

    def add(*ids: int) -> None:
        with transaction(engine) as session:
            session.add_all(DeskEvent(id=i, kind="note", conversation_id=None) for i in ids)

    async def scenario() -> list[int | None]:
        feed = FeedHub(engine, poll_seconds=60)
        first, _ = await feed.follow()  # a desk that follows all along
        add(2)  # 1 is still in an open transaction
        feed._read()
        add(1)
        assert [d.event.id for d in feed._read()] == [1]  # late
        _, late = await feed.follow()  # a browser reconnecting with Last-Event-ID 2
        feed.leave(first)
        return [e.id for e in late]

    assert asyncio.run(scenario()) == [1]
    engine.dispose()


def test_the_desk_is_told_when_the_customer_leaves_a_hand_off(
    desk: Desk, fake: FakeAnthropic
) -> None:
    conversation, ticket = desk.hand_off(fake, IVAN["email"], "refund me by hand", "refund")
    anna = desk.sign_in("anna")
    desk.client.post(f"/v1/tickets/{ticket}/claim", headers=anna)
    with transaction(desk.runtime.engine) as session:
        before = desk_events.last_id(session=session)

    ended = desk.client.post(f"/v1/conversations/{conversation}/end", headers=desk.backend)
    assert ended.status_code == 200, ended.text

    with transaction(desk.runtime.engine) as session:
        told = desk_events.since(session=session, after=before)
        told_customer = desk_events.since(session=session, after=before, public_only=True,
                                          conversation_id=conversation)  # fmt: skip
    assert [(e.kind, e.ticket_id, e.text) for e in told] == [
        ("customer_left", ticket, "The customer ended the conversation.")
    ]
    assert told_customer == []  # the customer knows: they ended it
    shown = desk.client.get(f"/v1/tickets/{ticket}", headers=anna).json()
    assert shown["status"] == "claimed" and shown["customer_ended_at"] is not None
    listed = desk.client.get("/v1/tickets?assignee=me", headers=anna).json()
    assert listed[0]["customer_ended_at"] == shown["customer_ended_at"]
    # Every time the desk shows carries its zone, on SQLite as on PostgreSQL.
    for moment in (shown["created_at"], shown["customer_ended_at"]):
        assert moment.endswith(("Z", "+00:00")), moment

    reply = desk.client.post(f"/v1/tickets/{ticket}/reply", json={"text": "Still there?"},
                             headers=anna)  # fmt: skip
    assert reply.status_code == 409
    assert "customer ended this conversation" in reply.json()["error"]["message"]
    resolved = desk.client.post(f"/v1/tickets/{ticket}/resolve", headers=anna).json()
    assert resolved["status"] == "resolved"
    assert _transcript(desk, conversation)["state"] == "closed"  # resolving does not reopen it
