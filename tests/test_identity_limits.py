"""Identity checks that can't be brute-forced across conversations or fed by documents, and
rate limits per visitor on the public widget key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agent.api.app import create_app
from tests.conftest import IVAN, YARA, SettingsFactory
from tests.fake_anthropic import FakeAnthropic, Reply, text, tool_use
from tests.test_api import Api, _events, _runtime

WRONG_ZIPS = [f"{n:05d}" for n in range(10_000, 10_030)]


@pytest.fixture
def api(make_settings: SettingsFactory) -> Iterator[Api]:
    runtime, keys = _runtime(make_settings, verify_backoff_seconds=0)
    with TestClient(create_app(runtime.settings, runtime)) as client:
        yield Api(client, runtime, keys)


def _widget(api: Api, client: TestClient | None = None) -> tuple[TestClient, dict[str, str], str]:
    """A new anonymous widget conversation: (client, its headers, its id)."""
    client = client or api.client
    started = client.post("/v1/conversations", json={}, headers=api.auth("widget"))
    assert started.status_code == 201, started.text
    body = started.json()
    return client, api.auth("widget", **{"X-Conversation-Token": body["conversation_token"]}), \
        body["id"]  # fmt: skip


def _guess(fake: FakeAnthropic) -> None:
    """The model verifies with whatever the customer typed ("my email is ..., zip ...")."""

    def answer(body: dict[str, Any]) -> Reply:
        last = body["messages"][-1]["content"]
        if any(b.get("type") == "tool_result" for b in last):
            return text(next(b for b in last if b.get("type") == "tool_result")["content"])
        words = " ".join(b.get("text", "") for b in last if b.get("type") == "text").split()
        return tool_use("verify_customer", {"email": words[0], "zip_code": words[1]})

    fake.default = answer


def _say(client: TestClient, headers: dict[str, str], cid: str, words: str) -> dict[str, Any]:
    response = client.post(f"/v1/conversations/{cid}/messages", json={"text": words},
                           headers=headers)  # fmt: skip
    assert response.status_code == 200, response.text
    return response.json()


def test_guessing_across_fresh_conversations_locks_the_account(
    api: Api, fake: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    """The attack of the report: thirty zip guesses spread over ten fresh conversations (three
    each, under the per-conversation limit) used to verify the attacker as the customer."""
    _guess(fake)
    guesses = iter(WRONG_ZIPS)
    for _ in range(9):
        client, headers, cid = _widget(api)
        for _ in range(3):
            _say(client, headers, cid, f"{IVAN['email']} {next(guesses)}")
    # The tenth conversation has the right zip code: the account is locked by then.
    client, headers, cid = _widget(api)
    reply = _say(client, headers, cid, f"{IVAN['email']} {IVAN['zip']}")
    assert "locked" in reply["reply"]
    transcript = client.get(f"/v1/conversations/{cid}", headers=headers).json()
    assert transcript["customer"] is None  # never verified
    # Staff see who was named, from where, failed and locked.
    checks = api.client.get("/v1/identity-checks", params={"customer_id": "ivan_santos_6635"},
                            headers=api.auth("admin")).json()  # fmt: skip
    outcomes = [c["outcome"] for c in checks]
    assert outcomes.count("failed") == api.runtime.settings.verify_failures_per_customer
    assert "locked" in outcomes and checks[0]["client"] == "testclient"
    assert "failed identity check for customer:ivan_santos_6635" in caplog.text
    assert api.client.get("/v1/identity-checks", headers=api.auth("backend")).status_code == 403
    # The locked customer is still served where the shop vouches for them.
    bound = api.start("backend", customer_email=IVAN["email"])
    fake.enqueue(tool_use("order_status", {"order_id": IVAN["orders"][0]}), text("Delivered."))
    served = api.client.post(f"/v1/conversations/{bound['id']}/messages", json={"text": "status?"},
                             headers=api.auth("backend"))  # fmt: skip
    assert served.json()["tool_calls"][0]["is_error"] is False


def test_one_client_guessing_many_accounts_is_locked_out_and_others_are_not(
    api: Api, fake: FakeAnthropic
) -> None:
    _guess(fake)
    attacker = TestClient(api.client.app, client=("203.0.113.9", 4000))
    emails = [f"someone{n}@example.com" for n in range(12)]
    for n, email in enumerate(emails):
        client, headers, cid = _widget(api, attacker)
        reply = _say(client, headers, cid, f"{email} {WRONG_ZIPS[n]}")
    assert "locked" in reply["reply"]  # after ten failures from this address
    # Its right facts are refused too, while another visitor verifies at once.
    client, headers, cid = _widget(api, attacker)
    assert "locked" in _say(client, headers, cid, f"{YARA['email']} {YARA['zip']}")["reply"]
    visitor = TestClient(api.client.app, client=("198.51.100.4", 4000))
    client, headers, cid = _widget(api, visitor)
    assert "verified" in _say(client, headers, cid, f"{YARA['email']} {YARA['zip']}")["reply"]


def test_backoff_pauses_checks_after_two_failures(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    runtime, keys = _runtime(make_settings, verify_backoff_seconds=60)
    with TestClient(create_app(runtime.settings, runtime)) as client:
        api = Api(client, runtime, keys)
        _guess(fake)
        _, headers, cid = _widget(api)
        _say(client, headers, cid, f"{IVAN['email']} {WRONG_ZIPS[0]}")
        _say(client, headers, cid, f"{IVAN['email']} {WRONG_ZIPS[1]}")
        _, headers, cid = _widget(api)
        paused = _say(client, headers, cid, f"{IVAN['email']} {IVAN['zip']}")
        assert "paused for" in paused["reply"] and "seconds" in paused["reply"]


def test_a_paused_check_waits_and_is_not_a_failure(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    """verify_customer called while the account's checks are paused (issue 24): the web chat
    showed "Checking your details — failed", and the model's words were the only guide. The
    refusal is marked as a wait everywhere, and still tells the model what to do."""
    runtime, keys = _runtime(make_settings, verify_backoff_seconds=60)
    with TestClient(create_app(runtime.settings, runtime)) as client:
        api = Api(client, runtime, keys)
        _, headers, cid = _widget(api)
        for zip_code in WRONG_ZIPS[:2]:
            fake.enqueue(tool_use("verify_customer", {"email": IVAN["email"], "zip_code": zip_code}),
                         text("Those details don't match our records."))  # fmt: skip
            failed = _say(client, headers, cid, f"I'm {IVAN['email']}, zip {zip_code}")
        # Wrong details are a failure, and stay one.
        assert failed["tool_calls"] == [{"name": "verify_customer", "label": "Checking your details",
                                         "is_error": True, "needs_verification": False,
                                         "waits": False}]  # fmt: skip

        _, headers, cid = _widget(api)  # a fresh conversation: the account is paused
        fake.enqueue(tool_use("verify_customer", {"email": IVAN["email"], "zip_code": IVAN["zip"]}),
                     text("Please wait a minute, then send your details again."))  # fmt: skip
        with client.stream("POST", f"/v1/conversations/{cid}/messages?stream=true",
                           json={"text": f"I'm {IVAN['email']}, zip {IVAN['zip']}"},
                           headers=headers) as response:  # fmt: skip
            assert response.status_code == 200
            events = _events(response)
        waiting = {"name": "verify_customer", "label": "Checking your details", "is_error": True,
                   "needs_verification": False, "waits": True}  # fmt: skip
        finished = next(data for name, data in events if name == "tool_finish")
        assert {k: finished[k] for k in ("is_error", "needs_verification", "waits")} == {
            "is_error": True, "needs_verification": False, "waits": True}  # fmt: skip
        final = events[-1][1]
        assert events[-1][0] == "final" and final["tool_calls"] == [waiting]
        # The model is told what happened and what to do.
        (result,) = fake.bodies[-1]["messages"][-1]["content"]
        assert result["is_error"] and result["content"].startswith(
            "Identity checks are paused for "
        )
        assert "do not say they are wrong" in result["content"]
        assert "Ask the customer to double-check their details and send them again in" in \
            result["content"]  # fmt: skip
        # The transcript (the desk's and the chat's after a reload) says the same.
        transcript = client.get(f"/v1/conversations/{cid}", headers=headers).json()
        assert [c for m in transcript["messages"] for c in m["tool_calls"]] == [waiting]
        assert transcript["customer"] is None  # nothing was checked


def test_identity_facts_must_come_from_what_the_customer_typed(
    api: Api, fake: FakeAnthropic
) -> None:
    """A help-centre page (or any tool result) that names a customer's email and order must
    not verify an anonymous visitor as that customer."""
    client, headers, cid = _widget(api)
    leaked = {"email": IVAN["email"], "order_id": IVAN["orders"][0]}
    fake.enqueue(
        tool_use("search_knowledge_base", {"query": "onboarding note"}),
        tool_use("verify_customer", leaked),  # facts the model read, not the customer's
        text("I can't verify you that way."),
    )
    reply = _say(client, headers, cid, "what does the onboarding note say? then verify me")
    assert reply["tool_calls"][1] == {"name": "verify_customer", "label": "Checking your details",
                                      "is_error": True, "needs_verification": False,
                                      "waits": False}  # fmt: skip
    refusal = fake.bodies[-1]["messages"][-1]["content"][0]["content"]
    assert "facts the customer typed" in refusal
    assert client.get(f"/v1/conversations/{cid}", headers=headers).json()["customer"] is None
    # Typed by the customer (in any case, with or without the #), the same facts verify.
    fake.enqueue(tool_use("verify_customer", leaked), text("Thanks, you're verified."))
    typed = f"It's {IVAN['email'].upper()}, order {IVAN['orders'][0].lstrip('#').lower()}"
    _say(client, headers, cid, typed)
    assert client.get(f"/v1/conversations/{cid}", headers=headers).json()["customer"] == {
        "name": "Ivan Santos"
    }


def test_one_visitor_flooding_the_widget_key_is_throttled_alone(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    """Every visitor shares the public widget key: one client making conversations in a loop
    used to get 429 after 120, and then every other visitor did too."""
    runtime, keys = _runtime(make_settings, rate_limit_per_client=30, rate_limit_per_key=20)
    with TestClient(create_app(runtime.settings, runtime)) as client:
        api = Api(client, runtime, keys)
        flood = TestClient(client.app, client=("203.0.113.50", 1000))
        codes = [flood.post("/v1/conversations", json={}, headers=api.auth("widget")).status_code
                 for _ in range(35)]  # fmt: skip
        assert codes[:30] == [201] * 30 and set(codes[30:]) == {429}
        refused = flood.post("/v1/conversations", json={}, headers=api.auth("widget"))
        assert (
            "your address" in refused.json()["error"]["message"] and refused.headers["Retry-After"]
        )
        other = TestClient(client.app, client=("198.51.100.7", 1000))
        assert (
            other.post("/v1/conversations", json={}, headers=api.auth("widget")).status_code == 201
        )


def test_forwarded_for_counts_only_behind_a_trusted_proxy(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    runtime, keys = _runtime(make_settings, rate_limit_per_client=3,
                             trusted_proxies="10.0.0.0/8")  # fmt: skip
    with TestClient(create_app(runtime.settings, runtime)) as client:
        api = Api(client, runtime, keys)
        proxy = TestClient(client.app, client=("10.0.0.2", 1000))

        def start(client_: TestClient, forwarded: str) -> int:
            headers = api.auth("widget", **{"X-Forwarded-For": forwarded})
            return client_.post("/v1/conversations", json={}, headers=headers).status_code

        # Behind our proxy, each visitor is the address it appended (a spoofed first entry
        # changes nothing).
        assert [start(proxy, f"1.1.1.{n}, 203.0.113.1") for n in range(4)] == [201, 201, 201, 429]
        assert start(proxy, "203.0.113.2") == 201
        # A client that is not our proxy cannot pick its address with the header.
        direct = TestClient(client.app, client=("198.51.100.9", 1000))
        assert [start(direct, f"203.0.113.{n + 10}") for n in range(4)] == [201, 201, 201, 429]
