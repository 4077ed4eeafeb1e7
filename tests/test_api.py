"""The HTTP API contract: scopes, identity, streaming, the hand-off desk, limits and errors."""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi.testclient import TestClient

from agent.api.app import create_app
from agent.engine.history import to_api_messages, validate
from agent.features.identity import mint_customer_token
from agent.runtime import Runtime, build_runtime
from agent.store.conversations import load_messages
from agent.store.db import transaction
from agent.store.importer import import_path
from agent.store.keys import create_key, revoke_key
from agent.store.tables import KeyScope
from tests.conftest import IVAN, RETAIL_SLICE, YARA, SettingsFactory
from tests.fake_anthropic import FakeAnthropic, text, tool_use
from tests.live_server import serve

SECRET = "shop-signing-secret"


@dataclass
class Api:
    client: TestClient
    runtime: Runtime
    keys: dict[str, str]

    def auth(self, scope: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}", **extra}

    def start(self, scope: str = "backend", **body: object) -> dict:
        response = self.client.post("/v1/conversations", json=body, headers=self.auth(scope))
        assert response.status_code == 201, response.text
        return response.json()


def _runtime(make_settings: SettingsFactory, **overrides: object) -> tuple[Runtime, dict[str, str]]:
    runtime = build_runtime(make_settings(widget_secret=SECRET, **overrides))
    import_path(runtime.engine, RETAIL_SLICE)
    keys = {}
    with transaction(runtime.engine) as session:
        for scope in KeyScope:
            keys[scope.value] = create_key(
                session=session, name=f"{scope.value}-test", scope=scope
            )[1]
    return runtime, keys


@pytest.fixture
def api(make_settings: SettingsFactory) -> Iterator[Api]:
    runtime, keys = _runtime(make_settings)
    with TestClient(create_app(runtime.settings, runtime)) as client:
        yield Api(client, runtime, keys)


def test_keys_are_required_and_scoped(api: Api) -> None:
    missing = api.client.post("/v1/conversations", json={})
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "unauthorized"
    wrong = api.client.get("/v1/tickets", headers={"Authorization": "Bearer sb_admin_nope"})
    assert wrong.status_code == 401
    widget_on_desk = api.client.get("/v1/tickets", headers=api.auth("widget"))
    assert (
        widget_on_desk.status_code == 403 and widget_on_desk.json()["error"]["code"] == "forbidden"
    )
    backend_on_kb = api.client.get("/v1/kb/documents", headers=api.auth("backend"))
    assert backend_on_kb.status_code == 403
    with transaction(api.runtime.engine) as session:
        revoke_key(session=session, key_id=1)
    assert api.client.get("/v1/tickets", headers=api.auth("admin")).status_code == 401


def test_backend_vouches_for_customers_and_widgets_cannot(api: Api) -> None:
    bound = api.start("backend", customer_email=IVAN["email"])
    assert bound["customer"] == {"name": "Ivan Santos"} and bound["conversation_token"] is None
    refused = api.client.post("/v1/conversations", json={"customer_email": IVAN["email"]},
                              headers=api.auth("widget"))  # fmt: skip
    assert refused.status_code == 403
    unknown = api.client.post("/v1/conversations", json={"customer_email": "x@example.com"},
                              headers=api.auth("backend"))  # fmt: skip
    assert (
        unknown.status_code == 422 and "No customer matches" in unknown.json()["error"]["message"]
    )


def test_a_backend_vouches_by_customer_id_or_by_email_as_typed(api: Api) -> None:
    by_id = api.start("backend", customer_id="ivan_santos_6635")
    by_email = api.start("backend", customer_email=f" {IVAN['email'].upper()} ")
    assert by_id["customer"] == by_email["customer"] == {"name": "Ivan Santos"}
    unknown = api.client.post("/v1/conversations", json={"customer_id": "ivan_santos_0000"},
                              headers=api.auth("backend"))  # fmt: skip
    assert unknown.status_code == 422


def test_widget_customer_tokens_are_verified(api: Api) -> None:
    token = mint_customer_token(SECRET, IVAN["email"], ttl_seconds=300)
    bound = api.start("widget", customer_token=token)
    assert bound["customer"] == {"name": "Ivan Santos"} and bound["conversation_token"]
    forged = mint_customer_token("another-secret", IVAN["email"])
    expired = mint_customer_token(SECRET, IVAN["email"], ttl_seconds=-10)
    for bad, reason in ((forged, "signature"), (expired, "expired"), ("garbage", "malformed")):
        response = api.client.post("/v1/conversations", json={"customer_token": bad},
                                   headers=api.auth("widget"))  # fmt: skip
        assert response.status_code == 401 and reason in response.json()["error"]["message"]


def test_a_conversation_is_readable_only_by_its_customer_backend_or_staff(
    api: Api, fake: FakeAnthropic
) -> None:
    mine = api.start("widget")
    theirs = api.start("widget")
    fake.enqueue(text("Hello!"))
    sent = api.client.post(f"/v1/conversations/{mine['id']}/messages", json={"text": "hi"},
                           headers=api.auth("widget", **{"X-Conversation-Token": mine["conversation_token"]}))  # fmt: skip
    assert sent.status_code == 200 and sent.json()["reply"] == "Hello!"
    url = f"/v1/conversations/{mine['id']}"
    assert api.client.get(url, headers=api.auth("widget")).status_code == 404
    other_token = api.auth("widget", **{"X-Conversation-Token": theirs["conversation_token"]})
    assert api.client.get(url, headers=other_token).status_code == 404
    posted = api.client.post(url + "/messages", json={"text": "x"}, headers=other_token)
    assert posted.status_code == 404
    for scope in ("backend", "admin"):
        transcript = api.client.get(url, headers=api.auth(scope)).json()
        assert [m["role"] for m in transcript["messages"]] == ["customer", "assistant"]
    assert api.client.get("/v1/conversations/nope", headers=api.auth("admin")).status_code == 404


def test_another_customers_order_is_not_found_over_http(api: Api, fake: FakeAnthropic) -> None:
    conversation = api.start("backend", customer_email=IVAN["email"])
    fake.enqueue(tool_use("order_status", {"order_id": YARA["orders"][0]}), text("Not found."))
    turn = api.client.post(f"/v1/conversations/{conversation['id']}/messages",
                           json={"text": f"show {YARA['orders'][0]}"}, headers=api.auth("backend")).json()  # fmt: skip
    assert turn["tool_calls"] == [{"name": "order_status", "label": f"Looking up order {YARA['orders'][0]}",
                                   "is_error": True, "needs_verification": False,
                                   "waits": False}]  # fmt: skip
    assert "10126" not in json.dumps(fake.bodies[1])


def _events(response: httpx.Response) -> list[tuple[str, dict]]:
    events, name = [], None
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and name:
            events.append((name, json.loads(line.split(":", 1)[1])))
    return events


def test_streamed_turn_event_order_and_final_content(api: Api, fake: FakeAnthropic) -> None:
    order = IVAN["orders"][0]
    conversation = api.start("backend", customer_email=IVAN["email"])
    answer = f"Your order {order} was delivered."
    fake.enqueue(tool_use("order_status", {"order_id": order}), text(answer))
    with api.client.stream("POST", f"/v1/conversations/{conversation['id']}/messages",
                           json={"text": "where is my order?"},
                           headers=api.auth("backend", Accept="text/event-stream")) as response:  # fmt: skip
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _events(response)
    names = [n for n, _ in events]
    assert names[0] == "tool_start" and names[1] == "tool_finish" and names[-1] == "final"
    assert set(names[2:-1]) == {"text"} and len(names[2:-1]) > 1
    assert events[0][1]["label"] == f"Looking up order {order}"
    assert "".join(d["delta"] for n, d in events if n == "text") == answer
    final = events[-1][1]
    assert (
        final["reply"] == answer
        and final["degraded"] is False
        and final["usage"]["input_tokens"] > 0
    )
    assert final["message_id"] and final["state"] == "bot"
    query = api.client.post(f"/v1/conversations/{conversation['id']}/messages?stream=true",
                            json={"text": "   "}, headers=api.auth("backend"))  # fmt: skip
    assert query.status_code == 422 and query.json()["error"]["code"] == "invalid_input"


def test_degraded_turns_are_flagged(api: Api, fake: FakeAnthropic) -> None:
    from tests.fake_anthropic import error

    conversation = api.start("backend", customer_email=IVAN["email"])
    fake.enqueue(*[error(529, "Overloaded", retry_after=0.01) for _ in range(3)])
    with api.client.stream("POST", f"/v1/conversations/{conversation['id']}/messages?stream=true",
                           json={"text": "hello"}, headers=api.auth("backend")) as response:  # fmt: skip
        events = _events(response)
    assert events[0][0] == "degraded" and "offline" in events[0][1]["message"]
    assert events[-1][1]["degraded"] is True and "Offline mode" in events[-1][1]["reply"]


def test_hand_off_pauses_the_bot_until_staff_resolve(api: Api, fake: FakeAnthropic) -> None:
    conversation = api.start("backend", customer_email=IVAN["email"])
    messages = f"/v1/conversations/{conversation['id']}/messages"
    fake.enqueue(tool_use("escalate_to_human", {"reason": "refund dispute", "summary": "wants refund"}),
                 text("A colleague will reply here."))  # fmt: skip
    first = api.client.post(
        messages, json={"text": "get me a person"}, headers=api.auth("backend")
    ).json()
    assert first["outcome"] == "handed_off" and first["state"] == "human"

    (ticket,) = api.client.get("/v1/tickets?status=open", headers=api.auth("admin")).json()
    assert ticket["reason"] == "refund dispute" and ticket["customer"] == {"name": "Ivan Santos"}
    queued = api.client.post(messages, json={"text": "hello?"}, headers=api.auth("backend")).json()
    assert queued["outcome"] == "queued_for_human" and len(fake.bodies) == 2  # bot stayed silent

    base = f"/v1/tickets/{ticket['id']}"
    claimed = api.client.post(base + "/claim", headers=api.auth("admin")).json()
    assert claimed["status"] == "claimed" and claimed["claimed_by"] == "admin-test"
    reply = api.client.post(base + "/reply", json={"text": "Hi Ivan, refund approved."},
                            headers=api.auth("admin"))  # fmt: skip
    assert reply.status_code == 200 and reply.json()["role"] == "staff"
    transcript = api.client.get(
        f"/v1/conversations/{conversation['id']}", headers=api.auth("backend")
    ).json()
    assert [m["role"] for m in transcript["messages"]] == [
        "customer",
        "assistant",
        "customer",
        "staff",
    ]
    assert transcript["messages"][1]["tool_calls"][0]["label"] == "Handing over to a person"

    resolved = api.client.post(base + "/resolve", headers=api.auth("admin")).json()
    assert resolved["status"] == "resolved" and resolved["resolved_at"]
    fake.enqueue(text("Glad that's sorted."))
    back = api.client.post(messages, json={"text": "thanks!"}, headers=api.auth("backend")).json()
    assert back["reply"] == "Glad that's sorted." and back["state"] == "bot"
    history = fake.bodies[-1]["messages"]
    validate(history)
    assert "refund approved" in json.dumps(history[-2])  # the staff reply is part of the context
    again = api.client.post(base + "/reply", json={"text": "x"}, headers=api.auth("admin"))
    assert again.status_code == 409


def test_limits_and_validation_errors_are_clear(api: Api, make_settings: SettingsFactory) -> None:
    conversation = api.start("backend")
    url = f"/v1/conversations/{conversation['id']}/messages"
    too_long = api.client.post(url, json={"text": "x" * 4001}, headers=api.auth("backend"))
    assert too_long.status_code == 422 and "too long" in too_long.json()["error"]["message"]
    missing = api.client.post(url, json={}, headers=api.auth("backend"))
    assert (
        missing.status_code == 422 and missing.json()["error"]["message"] == "The message is empty."
    )
    wrong_type = api.client.post(url, json={"text": 5}, headers=api.auth("backend"))
    assert wrong_type.status_code == 422 and wrong_type.json()["error"]["message"].startswith(
        "body.text"
    )
    # An unknown key is a 401 before anything about the request body or query is judged.
    stranger = {"Authorization": "Bearer x"}
    for refused in (
        api.client.post(url, json={"text": 5}, headers=stranger),
        api.client.post(url + "?stream=maybe", json={"text": "hi"}, headers=stranger),
        api.client.post(
            url,
            content=b"--x\r\nbroken",
            headers={**stranger, "Content-Type": "multipart/form-data; boundary=x"},
        ),
        api.client.post("/v1/conversations", json={"customer_id": 5}, headers=stranger),
    ):
        assert refused.status_code == 401, refused.text
    huge = api.client.post("/v1/conversations", content=b'{"customer_id": "' + b"x" * 70_000 + b'"}',
                           headers=api.auth("backend", **{"Content-Type": "application/json"}))  # fmt: skip
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "request_too_large"
    assert "Traceback" not in too_long.text + missing.text + huge.text


def test_rate_limits_answer_429_with_retry_after(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    runtime, keys = _runtime(make_settings, rate_limit_per_conversation=2, rate_limit_per_key=6)
    with TestClient(create_app(runtime.settings, runtime)) as client:
        headers = {"Authorization": f"Bearer {keys['backend']}"}
        if time.time() % 60 > 40:  # limits count per minute: keep the requests in one window
            time.sleep(60 - time.time() % 60 + 0.5)
        cid = client.post("/v1/conversations", json={}, headers=headers).json()["id"]
        fake.enqueue(text("one"), text("two"))
        codes = [client.post(f"/v1/conversations/{cid}/messages", json={"text": "hi"},
                             headers=headers).status_code for _ in range(3)]  # fmt: skip
        assert codes == [200, 200, 429]
        statuses = [client.get(f"/v1/conversations/{cid}", headers=headers) for _ in range(3)]
        limited = statuses[-1]
        assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 60
        # The refused message was not stored (the client retries it later), the others were.
        roles = [m["role"] for m in statuses[0].json()["messages"]]
        assert roles == ["customer", "assistant", "customer", "assistant"]
        assert limited.json()["error"]["code"] == "rate_limited"


def test_a_keys_limit_holds_on_every_database(
    make_settings: SettingsFactory, fake: FakeAnthropic, any_db_url: str
) -> None:
    """On PostgreSQL a key is counted in a statement of its own before the turn (its counter
    row is shared by every conversation of the key); the limit is the same."""
    runtime, keys = _runtime(make_settings, database_url=any_db_url, rate_limit_per_key=4)
    with TestClient(create_app(runtime.settings, runtime)) as client:
        headers = {"Authorization": f"Bearer {keys['backend']}"}
        if time.time() % 60 > 40:  # limits count per minute: keep the requests in one window
            time.sleep(60 - time.time() % 60 + 0.5)
        cid = client.post("/v1/conversations", json={}, headers=headers).json()["id"]
        fake.enqueue(text("one"), text("two"), text("three"))
        codes = [client.post(f"/v1/conversations/{cid}/messages", json={"text": "hi"},
                             headers=headers).status_code for _ in range(4)]  # fmt: skip
        assert codes == [200, 200, 200, 429]
        assert client.post("/v1/conversations", json={}, headers=headers).status_code == 429
    runtime.engine.dispose()


def test_kb_management_endpoints(api: Api) -> None:
    admin = api.auth("admin")
    md = b"---\ntitle: Gift cards\nurl: https://help.example/gift\n---\n## Balance\nGift card balances never expire.\n"
    uploaded = api.client.post("/v1/kb/documents", files=[("files", ("gift-cards.md", md, "text/markdown"))],
                               headers=admin)  # fmt: skip
    assert uploaded.status_code == 201 and len(uploaded.json()["added"]) == 1
    (doc,) = api.client.get("/v1/kb/documents", headers=admin).json()
    assert doc["title"] == "Gift cards" and doc["chunks"] == 1
    hits = api.client.get(
        "/v1/kb/search", params={"q": "do gift card balances expire"}, headers=admin
    ).json()
    assert hits[0]["url"] == "https://help.example/gift"
    bad_pdf = api.client.post("/v1/kb/documents", files=[("files", ("manual.pdf", b"not a pdf", "application/pdf"))],
                              headers=admin)  # fmt: skip
    assert (
        bad_pdf.status_code == 422
        and "manual.pdf: corrupt or unreadable PDF" in bad_pdf.json()["error"]["message"]
    )
    exe = api.client.post("/v1/kb/documents", files=[("files", ("tool.exe", b"MZ", "application/octet-stream"))],
                          headers=admin)  # fmt: skip
    assert exe.status_code == 422 and "unsupported file type" in exe.json()["error"]["message"]
    assert api.client.delete(f"/v1/kb/documents/{doc['id']}", headers=admin).status_code == 204
    assert api.client.get("/v1/kb/documents", headers=admin).json() == []
    assert api.client.delete(f"/v1/kb/documents/{doc['id']}", headers=admin).status_code == 404


def test_health_readiness_and_docs(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"]["ok"]
    assert ready.json()["checks"]["model"]["name"] == api.runtime.settings.model
    paths = api.client.get("/openapi.json").json()["paths"]
    assert {"/v1/conversations", "/v1/conversations/{conversation_id}/messages", "/v1/tickets",
            "/v1/tickets/{ticket_id}/reply", "/v1/kb/documents", "/v1/kb/search"} <= set(paths)  # fmt: skip
    page = api.client.get("/")
    assert page.status_code == 200 and "sb_widget_" in page.text


def test_client_disconnect_mid_stream_leaves_a_valid_turn(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    runtime, keys = _runtime(make_settings)
    headers = {"Authorization": f"Bearer {keys['backend']}"}
    fake.enqueue(tool_use("list_orders", {}))
    # After the tool round the model answers slowly; the next turn's question gets an answer.
    fake.default = lambda body: (
        text("Here you go.") if "still there?" in json.dumps(body) else text("slow", delay=1.5)
    )
    with serve(create_app(runtime.settings, runtime)) as base:
        cid = httpx.post(
            f"{base}/v1/conversations", json={"customer_email": IVAN["email"]}, headers=headers
        ).json()["id"]
        with httpx.stream("POST", f"{base}/v1/conversations/{cid}/messages?stream=true",
                          json={"text": "my orders?"}, headers=headers, timeout=10) as response:  # fmt: skip
            for line in response.iter_lines():
                if line.startswith("event: tool_finish"):
                    break  # the customer closes the tab before the answer comes
        time.sleep(2.0)  # an abandoned model call, if one was made, has ended
        turn = httpx.post(f"{base}/v1/conversations/{cid}/messages", json={"text": "still there?"},
                          headers=headers, timeout=10).json()  # fmt: skip
    assert turn["reply"] == "Here you go."
    validate(fake.bodies[-1]["messages"])
    with transaction(runtime.engine) as session:
        stored = to_api_messages(load_messages(session=session, conversation_id=cid))
    assert stored[0]["content"][0]["text"] == "my orders?"  # the customer's message was kept
    assert "slow" not in json.dumps(stored)  # no answer the customer never saw


@pytest.mark.slow
def test_concurrent_turns_never_hold_more_than_one_pooled_connection(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    """With a pool of one connection (plus one overflow), concurrent conversations still work:
    no request holds a connection while it waits for another, or across a model call."""
    from concurrent.futures import ThreadPoolExecutor

    runtime, keys = _runtime(make_settings, db_pool_size=1)
    fake.default = lambda body: text("ok", delay=0.2)
    headers = {"Authorization": f"Bearer {keys['backend']}"}
    with serve(create_app(runtime.settings, runtime)) as base:

        def one(_: int) -> int:
            with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
                cid = client.post(
                    "/v1/conversations", json={"customer_email": IVAN["email"]}
                ).json()["id"]
                return client.post(
                    f"/v1/conversations/{cid}/messages", json={"text": "hi"}
                ).status_code

        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(one, range(8))) == [200] * 8


def test_a_server_freezes_its_heap_once_started(make_settings: SettingsFactory) -> None:
    """`supportbot serve`'s app (agent.api.main) collects and freezes what start-up loaded, so
    that a full garbage collection during requests walks only what requests made."""
    runtime, _ = _runtime(make_settings)
    gc.unfreeze()
    try:
        with TestClient(create_app(runtime.settings, runtime, settle=True)) as client:
            assert client.get("/readyz").status_code == 200
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        runtime.engine.dispose()
