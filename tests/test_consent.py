"""Order changes with the customer's confirmation, end to end through HTTP with the wire-level
fake scripted to call the tools: a call proposes, the customer confirms or declines, the model
receives the outcome as the tool's result and tells the customer. On SQLite and PostgreSQL,
under both thinking modes of the default model."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from agent.api.app import create_app
from agent.engine.consent import is_unambiguous_yes
from agent.engine.history import to_api_messages, validate
from agent.store import staff
from agent.store.conversations import load_messages
from agent.store.db import transaction
from agent.store.tables import Order, PaymentMethod, ProposedAction
from tests.conftest import ALL_THINKING_MODES, IVAN, SettingsFactory
from tests.fake_anthropic import FakeAnthropic, text, tool_use, tool_uses
from tests.test_api import Api, _events, _runtime
from tools import describe

thinking_mode = ALL_THINKING_MODES
PENDING, DELIVERED = "#W8770097", "#W6893533"  # Ivan's, paid $544.29 with paypal_6151711
CANCEL = {"order_id": PENDING, "reason": "ordered by mistake"}
ANYA_EMAIL = "anya.garcia2061@example.com"


@pytest.fixture
def db_url(any_db_url: str) -> str:
    return any_db_url


@pytest.fixture
def api(make_settings: SettingsFactory) -> Iterator[Api]:
    runtime, keys = _runtime(make_settings)
    with TestClient(create_app(runtime.settings, runtime)) as client:
        yield Api(client, runtime, keys)


def _post(api: Api, conversation: dict[str, Any], path: str, **kwargs: Any) -> Any:
    headers = api.auth("widget", **{"X-Conversation-Token": conversation["conversation_token"]}) \
        if conversation.get("conversation_token") else api.auth("backend")  # fmt: skip
    return api.client.post(f"/v1/conversations/{conversation['id']}{path}", headers=headers,
                           **kwargs)  # fmt: skip


def _say(api: Api, conversation: dict[str, Any], words: str) -> dict[str, Any]:
    response = _post(api, conversation, "/messages", json={"text": words})
    assert response.status_code == 200, response.text
    return response.json()


def _order(api: Api, order_id: str = PENDING) -> Order:
    with Session(api.runtime.engine) as session:
        found = session.get(Order, order_id)
        assert found is not None
        return found


def _action(api: Api, action_id: str) -> ProposedAction:
    with Session(api.runtime.engine) as session:
        found = session.get(ProposedAction, action_id)
        assert found is not None
        return found


def _last_results(fake: FakeAnthropic) -> list[dict[str, Any]]:
    """The user message of the newest request (what the model was just given)."""
    return fake.bodies[-1]["messages"][-1]["content"]


def _propose(api: Api, fake: FakeAnthropic, conversation: dict[str, Any]) -> dict[str, Any]:
    fake.enqueue(tool_use("cancel_pending_order", CANCEL))
    turn = _say(api, conversation, f"Please cancel {PENDING}, I ordered it by mistake.")
    assert turn["outcome"] == "awaiting_confirmation"
    return turn


def test_a_change_is_proposed_then_confirmed_and_the_model_reports_the_outcome(
    api: Api, fake: FakeAnthropic
) -> None:
    conversation = api.start("backend", customer_email=IVAN["email"])
    turn = _propose(api, fake, conversation)
    pending = turn["pending_action"]
    # What the customer is asked to confirm: the change, the amount and where it goes back.
    assert pending["tool"] == "cancel_pending_order"
    assert pending["summary"] == (f"Cancel order {PENDING} (reason: ordered by mistake). "
                                  "Refund: $544.29 back to your PayPal.")  # fmt: skip
    assert pending["summary"] in turn["reply"] and pending["expires_at"]
    assert _order(api).status == "pending"  # proposing changed nothing
    calls_before = len(fake.bodies)

    fake.enqueue(text("Done: your order is cancelled and $544.29 goes back to your PayPal."))
    confirmed = _post(api, conversation, f"/actions/{pending['id']}/confirm")
    assert confirmed.status_code == 200, confirmed.text
    body = confirmed.json()
    assert body["reply"].startswith("Done: your order is cancelled")
    assert body["action"] == {"id": pending["id"], "tool": "cancel_pending_order",
                              "summary": pending["summary"], "status": "executed"}  # fmt: skip
    assert body["pending_action"] is None and body["outcome"] == "answered"
    # The model got the outcome as the result of its own call, thinking blocks replayed.
    assert len(fake.bodies) == calls_before + 1
    (result,) = _last_results(fake)
    assert result["type"] == "tool_result" and '"status":"cancelled"' in result["content"]
    assert not result.get("is_error")
    order = _order(api)
    assert (order.status, order.cancel_reason) == ("cancelled", "ordered by mistake")
    with Session(api.runtime.engine) as session:
        history = to_api_messages(
            load_messages(session=session, conversation_id=conversation["id"])
        )
    validate([*history, {"role": "user", "content": [{"type": "text", "text": "thanks"}]}])
    action = _action(api, pending["id"])
    assert (action.status, action.decided_by) == ("executed", "backend:backend-test")

    # Executes at most once: a repeated confirmation returns the first outcome, no model call.
    again = _post(api, conversation, f"/actions/{pending['id']}/confirm")
    assert again.status_code == 200
    assert again.json()["action"]["status"] == "executed"
    assert again.json()["reply"] == body["reply"] and again.json()["outcome"] == "already_settled"
    assert len(fake.bodies) == calls_before + 1
    declined_late = _post(api, conversation, f"/actions/{pending['id']}/decline")
    assert declined_late.json()["action"]["status"] == "executed"

    # The transcript shows the proposal and where it stands.
    transcript = api.client.get(f"/v1/conversations/{conversation['id']}",
                                headers=api.auth("backend")).json()  # fmt: skip
    shown = [m for m in transcript["messages"] if m.get("action")]
    assert len(shown) == 1 and shown[0]["action"]["status"] == "executed"
    assert shown[0]["text"].startswith("Please confirm: Cancel order")


def test_declining_changes_nothing_and_the_model_is_told(api: Api, fake: FakeAnthropic) -> None:
    conversation = api.start("backend", customer_email=IVAN["email"])
    pending = _propose(api, fake, conversation)["pending_action"]
    fake.enqueue(text("No problem, I've left your order as it is."))
    declined = _post(api, conversation, f"/actions/{pending['id']}/decline").json()
    assert declined["action"]["status"] == "declined" and "left your order" in declined["reply"]
    (result,) = _last_results(fake)
    assert result["is_error"] is True and "declined" in result["content"]
    assert _order(api).status == "pending"
    confirm_after = _post(api, conversation, f"/actions/{pending['id']}/confirm").json()
    assert confirm_after["action"]["status"] == "declined" and _order(api).status == "pending"


def test_an_expired_proposal_does_not_run(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    runtime, keys = _runtime(make_settings, action_expiry_minutes=0.002)  # 120 ms
    with TestClient(create_app(runtime.settings, runtime)) as client:
        api = Api(client, runtime, keys)
        conversation = api.start("backend", customer_email=IVAN["email"])
        pending = _propose(api, fake, conversation)["pending_action"]
        time.sleep(0.3)
        listed = api.client.get(f"/v1/conversations/{conversation['id']}/actions",
                                headers=api.auth("backend")).json()  # fmt: skip
        assert listed[0]["status"] == "expired"  # reads as expired before anything settles it
        fake.enqueue(text("That confirmation timed out; shall I prepare it again?"))
        late = _post(api, conversation, f"/actions/{pending['id']}/confirm").json()
        assert late["action"]["status"] == "expired" and "timed out" in late["reply"]
        assert "did not confirm this change in time" in _last_results(fake)[0]["content"]
        assert _order(api).status == "pending"


def test_only_the_conversations_own_customer_can_confirm(api: Api, fake: FakeAnthropic) -> None:
    mine = api.start("widget")
    fake.enqueue(
        tool_use("verify_customer", {"email": IVAN["email"], "order_id": PENDING}),
        tool_use("cancel_pending_order", CANCEL),
    )
    turn = _say(api, mine, f"I'm {IVAN['email']}, cancel {PENDING}: ordered by mistake")
    action_id = turn["pending_action"]["id"]
    theirs = api.start("widget")
    as_them = api.client.post(f"/v1/conversations/{mine['id']}/actions/{action_id}/confirm",
                              headers=api.auth("widget", **{"X-Conversation-Token":
                                                            theirs["conversation_token"]}))  # fmt: skip
    assert as_them.status_code == 404
    # Their own conversation cannot confirm an action of another conversation either.
    wrong_place = _post(api, theirs, f"/actions/{action_id}/confirm")
    assert wrong_place.status_code == 404
    no_such = _post(api, mine, "/actions/act_nope/confirm")
    assert no_such.status_code == 404
    assert _order(api).status == "pending"
    fake.enqueue(text("Cancelled."))
    ok = _post(api, mine, f"/actions/{action_id}/confirm")
    assert ok.status_code == 200 and _action(api, action_id).decided_by == "customer"
    assert _order(api).status == "cancelled"


def test_nothing_can_be_proposed_before_verification(api: Api, fake: FakeAnthropic) -> None:
    anonymous = api.start("widget")
    fake.enqueue(tool_use("cancel_pending_order", CANCEL), text("First I need to verify you."))
    turn = _say(api, anonymous, f"cancel {PENDING}, ordered by mistake")
    assert turn["pending_action"] is None and turn["outcome"] == "answered"
    (result,) = _last_results(fake)
    assert result["is_error"] is True and "not verified" in result["content"]
    with Session(api.runtime.engine) as session:
        assert session.exec(select(ProposedAction)).all() == []


def test_a_change_a_rule_refuses_is_not_proposed(api: Api, fake: FakeAnthropic) -> None:
    conversation = api.start("backend", customer_email=IVAN["email"])
    fake.enqueue(
        tool_use("cancel_pending_order", {"order_id": DELIVERED, "reason": "no longer needed"}),
        text("That order was delivered, so it can't be cancelled; I can arrange a return."),
    )
    turn = _say(api, conversation, f"cancel {DELIVERED}")
    assert turn["pending_action"] is None
    (result,) = _last_results(fake)
    assert result["is_error"] is True and "'delivered'" in result["content"]
    # Another customer's order reads as missing.
    fake.enqueue(
        tool_use("cancel_pending_order", {"order_id": "#W6436609", "reason": "no longer needed"}),
        text("I couldn't find that order."),
    )
    assert _say(api, conversation, "cancel #W6436609")["pending_action"] is None
    assert "not found" in _last_results(fake)[0]["content"]


def test_rules_are_checked_again_when_the_customer_confirms(api: Api, fake: FakeAnthropic) -> None:
    conversation = api.start("backend", customer_email=IVAN["email"])
    pending = _propose(api, fake, conversation)["pending_action"]
    # Meanwhile the order moves on (the warehouse processed it).
    with Session(api.runtime.engine) as session:
        order = session.get(Order, PENDING)
        assert order is not None
        order.status = "processed"
        session.add(order)
        session.commit()
    fake.enqueue(text("Sorry, it was processed in the meantime, so it can't be cancelled."))
    body = _post(api, conversation, f"/actions/{pending['id']}/confirm").json()
    assert body["action"]["status"] == "failed"
    (result,) = _last_results(fake)
    assert result["is_error"] is True and "'processed'" in result["content"]
    assert _order(api).status == "processed"


def test_an_unambiguous_yes_confirms_and_anything_else_goes_to_the_model(
    api: Api, fake: FakeAnthropic
) -> None:
    conversation = api.start("backend", customer_email=IVAN["email"])
    _propose(api, fake, conversation)
    fake.enqueue(text("Which address should it go to instead?"))
    other = _say(api, conversation, "yes, but could it go to my office instead?")
    assert other["action"]["status"] == "superseded" and _order(api).status == "pending"
    results = _last_results(fake)
    assert results[0]["type"] == "tool_result" and results[0]["is_error"] is True
    assert results[1]["text"] == "yes, but could it go to my office instead?"

    _propose(api, fake, conversation)  # proposed again: a new action
    fake.enqueue(text("Cancelled; $544.29 goes back to your PayPal."))
    yes = _say(api, conversation, "Yes please!")
    assert yes["action"]["status"] == "executed" and _order(api).status == "cancelled"
    results = _last_results(fake)
    assert '"status":"cancelled"' in results[0]["content"] and results[1]["text"] == "Yes please!"


@pytest.mark.parametrize(
    ("reply", "confirms"),
    [("yes", True), ("Yes please!", True), ("OK, go ahead.", True), ("confirm", True),
     ("y", True), ("Yep 👍", True), ("yes?", False), ("no", False), ("yes but not the chair", False),
     ("not yet", False), ("yes and also cancel the other one", False), ("ok what about", False),
     ("", False), ("go ahead and refund it to my card instead", False)],
)  # fmt: skip
def test_the_yes_rule_is_strict(reply: str, confirms: bool) -> None:
    assert is_unambiguous_yes(reply) is confirms


def test_one_change_at_a_time_and_the_rest_of_the_round_waits_with_it(
    api: Api, fake: FakeAnthropic
) -> None:
    conversation = api.start("backend", customer_email=IVAN["email"])
    fake.enqueue(
        tool_uses(
            ("order_status", {"order_id": PENDING}),
            ("cancel_pending_order", CANCEL),
            ("cancel_pending_order", {"order_id": "#W5183325", "reason": "no longer needed"}),
        )
    )
    turn = _say(api, conversation, "cancel both pending orders")
    assert turn["pending_action"]["summary"].startswith(f"Cancel order {PENDING}")
    fake.enqueue(text("The first is cancelled; shall I cancel the other?"))
    _post(api, conversation, f"/actions/{turn['pending_action']['id']}/confirm")
    results = _last_results(fake)
    assert [r["type"] for r in results] == ["tool_result"] * 3
    assert '"status":"pending"' in results[0]["content"]  # the look-up, held with the proposal
    assert "one change at a time" in results[1]["content"] and results[1]["is_error"]
    assert '"status":"cancelled"' in results[2]["content"]
    assert _order(api, "#W5183325").status == "pending"


def test_the_turn_that_proposes_lists_the_proposed_call(api: Api, fake: FakeAnthropic) -> None:
    """The proposed change is one of the turn's calls (it was left out: `tool_calls` did not
    have it), in the order the model made them, with its input."""
    conversation = api.start("backend", customer_email=IVAN["email"])
    other = {"order_id": "#W5183325", "reason": "no longer needed"}
    fake.enqueue(tool_uses(("order_status", {"order_id": PENDING}),
                           ("cancel_pending_order", CANCEL), ("cancel_pending_order", other)))  # fmt: skip
    turn = _say(api, conversation, "cancel both pending orders")
    assert turn["pending_action"]["tool"] == "cancel_pending_order"
    # The look-up, the proposed change (not an error), the second change (refused: one at a
    # time).
    assert [(c["name"], c["label"], c["is_error"], c["waits"]) for c in turn["tool_calls"]] == [
        ("order_status", describe("order_status", {"order_id": PENDING}), False, False),
        ("cancel_pending_order", describe("cancel_pending_order", CANCEL), False, False),
        ("cancel_pending_order", describe("cancel_pending_order", other), True, False),
    ]


def test_the_flow_streams_as_server_sent_events(api: Api, fake: FakeAnthropic) -> None:
    conversation = api.start("backend", customer_email=IVAN["email"])
    fake.enqueue(tool_use("cancel_pending_order", CANCEL))
    with api.client.stream("POST", f"/v1/conversations/{conversation['id']}/messages",
                           json={"text": "cancel it, ordered by mistake"},
                           headers=api.auth("backend", Accept="text/event-stream")) as response:  # fmt: skip
        events = _events(response)
    names = [n for n, _ in events]
    assert names[-2:] == ["pending_action", "final"] and "tool_start" in names
    announced = events[-2][1]
    assert events[-1][1]["pending_action"] == announced
    assert events[-1][1]["outcome"] == "awaiting_confirmation"

    fake.enqueue(text("All done: order cancelled."))
    with api.client.stream("POST", f"/v1/conversations/{conversation['id']}/actions/"
                           f"{announced['id']}/confirm?stream=true",
                           headers=api.auth("backend")) as response:  # fmt: skip
        events = _events(response)
    names = [n for n, _ in events]
    assert names[0] == "tool_finish" and names[-1] == "final" and "text" in names
    assert events[-1][1]["action"]["status"] == "executed"
    assert "".join(d["delta"] for n, d in events if n == "text") == "All done: order cancelled."


def test_staff_see_every_action_and_run_changes_for_a_customer(
    api: Api, fake: FakeAnthropic
) -> None:
    conversation = api.start("backend", customer_email=IVAN["email"])
    pending = _propose(api, fake, conversation)["pending_action"]
    fake.enqueue(text("Left as it is."))
    _post(api, conversation, f"/actions/{pending['id']}/decline")
    admin = api.auth("admin")
    assert api.client.get("/v1/actions", headers=api.auth("backend")).status_code == 403
    listed = api.client.get("/v1/actions", headers=admin).json()
    assert [(a["status"], a["decided_by"]) for a in listed] == [
        ("declined", "backend:backend-test")
    ]
    assert listed[0]["customer_id"] == "ivan_santos_6635" and listed[0]["arguments"] == CANCEL

    # Staff run the same change for the customer: same rules, recorded as theirs.
    ran = api.client.post("/v1/customers/ivan_santos_6635/actions", headers=admin,
                          json={"tool": "cancel_pending_order", "arguments": CANCEL,
                                "conversation_id": conversation["id"]})  # fmt: skip
    assert ran.status_code == 201, ran.text
    assert (ran.json()["status"], ran.json()["decided_by"]) == ("executed", "staff:admin-test")
    assert _order(api).status == "cancelled"
    again = api.client.post("/v1/customers/ivan_santos_6635/actions", headers=admin,
                            json={"tool": "cancel_pending_order", "arguments": CANCEL})  # fmt: skip
    assert again.json()["status"] == "failed" and "'cancelled'" in again.json()["result"]
    unknown = api.client.post("/v1/customers/ivan_santos_6635/actions", headers=admin,
                              json={"tool": "order_status", "arguments": {}})  # fmt: skip
    assert unknown.status_code == 422
    nobody = api.client.post("/v1/customers/nobody/actions", headers=admin,
                             json={"tool": "cancel_pending_order", "arguments": CANCEL})  # fmt: skip
    assert nobody.status_code == 404
    by_status = api.client.get("/v1/actions", params={"status": "executed"}, headers=admin).json()
    assert [a["proposed_by"] for a in by_status] == ["staff:admin-test"]


def test_gift_card_refunds_move_the_balance_at_confirmation(api: Api, fake: FakeAnthropic) -> None:
    conversation = api.start("backend", customer_email=ANYA_EMAIL)
    fake.enqueue(tool_use("cancel_pending_order", {"order_id": "#W6436609",
                                                   "reason": "no longer needed"}))  # fmt: skip
    turn = _say(api, conversation, "cancel #W6436609, no longer needed")
    assert "$3,005.33 back to your gift card" in turn["pending_action"]["summary"]

    def balance() -> int | None:
        with Session(api.runtime.engine) as session:
            card = session.get(PaymentMethod, "gift_card_4374071")
            return card.balance_cents if card else None

    before = balance()
    fake.enqueue(text("Cancelled; the gift card has the money back."))
    _post(api, conversation, f"/actions/{turn['pending_action']['id']}/confirm")
    assert balance() == (before or 0) + 300533


def test_only_the_customer_or_their_backend_speaks_for_the_customer(
    api: Api, fake: FakeAnthropic
) -> None:
    """A staff sign-in or an admin key posting "yes" to a customer's conversation used to run
    the pending change as `decided_by="customer"`. Now staff and admin keys cannot post the
    customer's words or answer their proposals at all (403, nothing stored, nothing run), and
    every decision names who made it."""
    with transaction(api.runtime.engine) as session:
        staff.create_account(session=session, username="anna", display_name="Anna Berg",
                             password="correct horse battery")  # fmt: skip
    anna = api.client.post(
        "/v1/staff/sessions", json={"username": "anna", "password": "correct horse battery"}
    )
    as_anna = {"Authorization": f"Bearer {anna.json()['token']}"}
    conversation = api.start("backend", customer_email=IVAN["email"])
    pending = _propose(api, fake, conversation)["pending_action"]
    messages_before = len(_transcript(api, conversation))
    url = f"/v1/conversations/{conversation['id']}"
    for headers in (as_anna, api.auth("admin")):
        for path, body in (("/messages", {"text": "yes"}),
                           (f"/actions/{pending['id']}/confirm", None),
                           (f"/actions/{pending['id']}/decline", None)):  # fmt: skip
            refused = api.client.post(url + path, json=body, headers=headers)
            assert refused.status_code == 403, (path, refused.text)
            assert "customer" in refused.json()["error"]["message"]
    assert _order(api).status == "pending"
    assert _action(api, pending["id"]).status == "proposed"
    assert len(_transcript(api, conversation)) == messages_before  # nothing stored

    # The shop's backend relays its customer's "yes": recorded as the backend's decision.
    fake.enqueue(text("Done: cancelled."))
    _say(api, conversation, "yes")
    action = _action(api, pending["id"])
    assert (action.status, action.decided_by) == ("executed", "backend:backend-test")
    # ... and the customer's own "yes" through their widget as theirs.
    mine = api.start("widget")
    fake.enqueue(
        tool_use("verify_customer", {"email": IVAN["email"], "order_id": DELIVERED}),
        tool_use("modify_user_address", {**ADDRESS, "zip": "73301"}),
    )
    proposed = _say(api, mine, f"I'm {IVAN['email']}, order {DELIVERED}; new address please")
    fake.enqueue(text("Your address is updated."))
    _say(api, mine, "Yes please")
    action = _action(api, proposed["pending_action"]["id"])
    assert (action.status, action.decided_by) == ("executed", "customer")
    said = [m["text"] for m in _transcript(api, mine) if m["role"] == "customer"]
    assert said[-1] == "Yes please"  # the reply that confirmed is the customer's message


ADDRESS = {"address1": "1 Main St", "address2": "", "city": "Austin", "state": "TX",
           "country": "USA"}  # fmt: skip


@pytest.mark.parametrize(
    "smuggled",
    [
        {"address1": "1 Main St\nNothing will change; this is a free test. Reply yes"},
        {"address1": "1 Main St \u202etseT eerF"},  # a right-to-left override
        {"city": "Austin\x00"},
        {"zip": ""},
        {"zip": " "},
        {"address1": "   "},
        {"address1": "x" * 201},
    ],
)
def test_a_change_with_smuggled_or_blank_values_is_never_proposed(
    api: Api, fake: FakeAnthropic, smuggled: dict[str, str]
) -> None:
    """The values of a change are validated before anything is proposed: control and
    direction characters, blanks where an address needs a value, absurd lengths. The model
    is told why, and nothing reaches the summary a customer would confirm."""
    conversation = api.start("backend", customer_email=IVAN["email"])
    fake.enqueue(tool_use("modify_user_address", {**ADDRESS, "zip": "73301", **smuggled}),
                 text("I couldn't change that address."))  # fmt: skip
    turn = _say(api, conversation, "Please change my address")
    assert turn["outcome"] == "answered" and turn["pending_action"] is None
    (result,) = [b for b in _last_results(fake) if b["type"] == "tool_result"]
    assert result.get("is_error") is True
    with Session(api.runtime.engine) as session:
        assert session.exec(select(ProposedAction)).first() is None


def test_the_summary_shows_every_address_field_that_changes(api: Api, fake: FakeAnthropic) -> None:
    conversation = api.start("backend", customer_email=IVAN["email"])
    fake.enqueue(tool_use("modify_pending_order_address",
                          {"order_id": PENDING, **ADDRESS, "zip": "73301"}))  # fmt: skip
    summary = _say(api, conversation, "Ship it to Austin")["pending_action"]["summary"]
    with Session(api.runtime.engine) as session:
        order = session.get(Order, PENDING)
        assert order is not None
        before = dict(order.address)
    assert f"street “{before['address1']}” → “1 Main St”" in summary
    if before.get("address2"):  # a line that goes blank is said, never hidden
        assert f"second line “{before['address2']}” → (blank)" in summary
    assert f"zip code “{before['zip']}” → “73301”" in summary


def _transcript(api: Api, conversation: dict[str, Any]) -> list[dict[str, Any]]:
    response = api.client.get(f"/v1/conversations/{conversation['id']}",
                              headers=api.auth("backend"))  # fmt: skip
    assert response.status_code == 200, response.text
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages
