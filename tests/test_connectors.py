"""supportbot on the shop's own order system: the whole flow (verify, read, propose, confirm,
execute, report) through the HTTP API with the wire-level fake model scripted to call the
tools, against the example τ²-retail shop system as a real process: its MCP server over stdio
and over Streamable HTTP, and its REST API through the HTTP connector. The shop's system
checks nobody; every guarantee holds above the port. Then the faults: a slow server, a server
killed mid-change, malformed, huge and error answers, a dead server."""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from agent.adapters.connectors import connect
from agent.adapters.connectors.spec import ConnectorError, load
from agent.api.app import create_app
from agent.cli import app as cli
from agent.runtime import build_runtime
from agent.store.db import transaction
from agent.store.keys import create_key
from agent.store.tables import KeyScope
from tests.conftest import IVAN, SettingsFactory
from tests.fake_anthropic import FakeAnthropic, text, tool_use
from tests.shop_server import ROOT, Served, fixture_store

pytestmark = pytest.mark.slow

PENDING = "#W8770097"  # Ivan's, pending, $544.29 paid with paypal_6151711
DELIVERED = "#W6893533"  # Ivan's, delivered
THEIRS = "#W2497857"  # Yara Li's, delivered
VERIFY = {"email": IVAN["email"], "zip_code": IVAN["zip"]}
CANCEL = {"order_id": PENDING, "reason": "ordered by mistake"}
TAU2_MCP = [sys.executable, "-m", "examples.tau2_shop", "mcp"]


@dataclass
class Shop:
    """The shop's system (its own JSON database file) and supportbot connected to it."""

    db: Path
    client: TestClient
    keys: dict[str, str]
    runtime: Any

    def record(self, kind: str, key: str) -> dict[str, Any]:
        return dict(json.loads(self.db.read_text())[kind][key])

    def auth(self, scope: str = "backend") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}"}

    def start(self) -> str:
        made = self.client.post("/v1/conversations", json={}, headers=self.auth())
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    def say(self, conversation: str, words: str) -> dict[str, Any]:
        reply = self.client.post(f"/v1/conversations/{conversation}/messages",
                                 json={"text": words}, headers=self.auth())  # fmt: skip
        assert reply.status_code == 200, reply.text
        return dict(reply.json())

    def confirm(self, conversation: str, action_id: str) -> dict[str, Any]:
        done = self.client.post(f"/v1/conversations/{conversation}/actions/{action_id}/confirm",
                                headers=self.auth())  # fmt: skip
        assert done.status_code == 200, done.text
        return dict(done.json())


def _connector(tmp_path: Path, server: dict[str, Any], **extra: Any) -> Path:
    # A server process may take seconds to start on a busy CI machine: not what is tested.
    settings = {"connect_timeout": 60, **extra}
    path = tmp_path / "connector.yaml"
    path.write_text(yaml.safe_dump({"name": "test-shop", "extends": "tau2", **server, **settings}))
    return path


def _stdio(db: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    return {"mcp": {"command": [*TAU2_MCP, "--db", str(db), "--seed", str(db)],
                    "cwd": str(ROOT), "env": env or {}}}  # fmt: skip


def _rest(served: Served) -> dict[str, Any]:
    spec = yaml.safe_load((ROOT / "examples/tau2_shop/rest-connector.yaml").read_text())
    spec["http"] = {"base_url": served.url}
    return {k: v for k, v in spec.items() if k not in ("name", "extends")}


@pytest.fixture
def open_shop(make_settings: SettingsFactory, tmp_path: Path) -> Iterator[Callable[[Path], Shop]]:
    opened: list[Shop] = []

    def start(connector: Path) -> Shop:
        runtime = build_runtime(make_settings(connector_file=connector))
        keys = {}
        with transaction(runtime.engine) as session:
            for scope in KeyScope:
                keys[scope.value] = create_key(session=session, name=f"{scope.value}-t",
                                               scope=scope)[1]  # fmt: skip
        client = TestClient(create_app(runtime.settings, runtime)).__enter__()
        shop = Shop(tmp_path / "shop.json", client, keys, runtime)
        opened.append(shop)
        return shop

    yield start
    for shop in opened:
        shop.client.__exit__(None, None, None)
        if shop.runtime.connector is not None:
            shop.runtime.connector.close()


@pytest.fixture(params=["mcp-stdio", "mcp-http", "http"])
def shop(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    serve: Callable[..., Served],
    open_shop: Callable[[Path], Shop],
) -> Shop:
    db = tmp_path / "shop.json"
    shutil.copy(fixture_store(tmp_path), db)
    if request.param == "mcp-stdio":
        server = _stdio(db)
    elif request.param == "mcp-http":
        server = {"mcp": {"url": serve("mcp", db, "--transport", "http").url + "/mcp"}}
    else:
        server = _rest(serve("rest", db))
    return open_shop(_connector(tmp_path, server))


def _results(fake: FakeAnthropic) -> list[dict[str, Any]]:
    """Every tool result the model has been given in the conversation, oldest first."""
    return [
        block
        for message in fake.bodies[-1]["messages"]
        if message["role"] == "user" and isinstance(message["content"], list)
        for block in message["content"]
        if block["type"] == "tool_result"
    ]


def test_the_whole_flow_runs_in_the_shops_own_system(shop: Shop, fake: FakeAnthropic) -> None:
    conversation = shop.start()
    fake.enqueue(tool_use("verify_customer", VERIFY), tool_use("order_status", {"order_id": PENDING}),
                 text("You're verified; the order is pending."))  # fmt: skip
    shop.say(conversation, f"I'm {IVAN['email']}, zip {IVAN['zip']}. Where is {PENDING}?")
    status = json.loads(_results(fake)[-1]["content"])
    assert status["status"] == "pending" and status["total"] == "$544.29"

    # Another customer's order reads as missing, though the shop's system checks nobody.
    fake.enqueue(tool_use("order_status", {"order_id": THEIRS}),
                 tool_use("cancel_pending_order", {**CANCEL, "order_id": THEIRS}),
                 text("I can't find that order on your account."))  # fmt: skip
    turn = shop.say(conversation, f"And cancel {THEIRS}.")
    assert turn["outcome"] != "awaiting_confirmation"
    assert all(r.get("is_error") and "not found" in r["content"] for r in _results(fake)[-2:])
    assert shop.record("orders", THEIRS)["status"] == "delivered"

    # The change is checked and held: the shop's system hears nothing until confirmed.
    fake.enqueue(tool_use("cancel_pending_order", CANCEL))
    turn = shop.say(conversation, f"Please cancel {PENDING}, I ordered it by mistake.")
    pending = turn["pending_action"]
    assert turn["outcome"] == "awaiting_confirmation"
    assert pending["summary"] == (f"Cancel order {PENDING} (reason: ordered by mistake). "
                                  "Refund: $544.29 back to your PayPal.")  # fmt: skip
    assert shop.record("orders", PENDING)["status"] == "pending"

    fake.enqueue(text("Done: cancelled, and $544.29 goes back to your PayPal."))
    done = shop.confirm(conversation, pending["id"])
    assert done["outcome"] == "answered"
    result = _results(fake)[-1]
    assert not result.get("is_error") and json.loads(result["content"])["status"] == "cancelled"
    order = shop.record("orders", PENDING)
    assert order["status"] == "cancelled" and order["cancel_reason"] == "ordered by mistake"
    assert order["payment_history"][-1] == {"transaction_type": "refund", "amount": 544.29,
                                            "payment_method_id": "paypal_6151711"}  # fmt: skip

    # Staff see what the shop's system answered beside the action.
    actions = shop.client.get("/v1/actions", headers=shop.auth("admin")).json()
    (executed,) = [a for a in actions if a["id"] == pending["id"]]
    assert executed["status"] == "executed" and executed["discrepancy"] is None
    assert json.loads(executed["system_reply"])["status"] == "cancelled"
    # The desk's panel reads the customer's orders from the shop's system too.
    panel = shop.client.get("/v1/customers/ivan_santos_6635", headers=shop.auth("admin")).json()
    assert panel["order_system"].endswith(":test-shop") and panel["orders_error"] is None
    assert {o["order_id"]: o["status"] for o in panel["orders"]}[PENDING] == "cancelled"


def test_a_slow_system_is_unreachable_and_nothing_fails(
    tmp_path: Path, open_shop: Callable[[Path], Shop], fake: FakeAnthropic
) -> None:
    db = tmp_path / "shop.json"
    shutil.copy(fixture_store(tmp_path), db)
    env = {"TAU2_SHOP_DELAY_SECONDS": "3", "TAU2_SHOP_DELAY_TOOLS": "get_order_details"}
    shop = open_shop(_connector(tmp_path, _stdio(db, env), call_timeout=0.5, read_retries=1,
                                retry_backoff=0))  # fmt: skip
    conversation = shop.start()
    fake.enqueue(tool_use("verify_customer", VERIFY), tool_use("order_status", {"order_id": PENDING}),
                 text("I can't reach the order system right now; shall I get a person?"))  # fmt: skip
    turn = shop.say(conversation, f"I'm {IVAN['email']}, zip {IVAN['zip']}. Where is {PENDING}?")
    verified, status = _results(fake)[-2:]
    assert not verified.get("is_error")
    assert status.get("is_error") and "cannot be reached" in status["content"]
    assert "person" in turn["reply"]
    metrics = shop.client.get("/metrics", headers=shop.auth("admin")).text
    assert 'operation="order",outcome="no_answer",system="mcp:test-shop"} 2.0' in metrics


@pytest.mark.parametrize("fault", ["crash", "slow", "rest-crash"])
def test_a_change_the_system_never_confirms_is_unknown_and_goes_to_staff(
    tmp_path: Path,
    open_shop: Callable[[Path], Shop],
    serve: Callable[..., Served],
    fake: FakeAnthropic,
    fault: str,
) -> None:
    db = tmp_path / "shop.json"
    shutil.copy(fixture_store(tmp_path), db)
    # The server carries the cancellation out, then dies before it answers; or answers too late.
    crash = {"TAU2_SHOP_CRASH_ON": "cancel_pending_order"}
    slow = {"TAU2_SHOP_DELAY_SECONDS": "2", "TAU2_SHOP_DELAY_TOOLS": "cancel_pending_order"}
    if fault == "rest-crash":
        shop = open_shop(_connector(tmp_path, _rest(serve("rest", db, env=crash))))
    else:
        env = crash if fault == "crash" else slow
        shop = open_shop(_connector(tmp_path, _stdio(db, env), call_timeout=0.5))
    conversation = shop.start()
    fake.enqueue(tool_use("verify_customer", VERIFY), tool_use("cancel_pending_order", CANCEL))
    turn = shop.say(conversation, f"I'm {IVAN['email']}, zip {IVAN['zip']}. Cancel {PENDING}.")
    fake.enqueue(text("I couldn't confirm it went through; a colleague will check and get back."))
    shop.confirm(conversation, turn["pending_action"]["id"])
    result = _results(fake)[-1]
    assert result.get("is_error") and "unknown" in result["content"]
    assert "Do not try it again" in result["content"]
    actions = shop.client.get("/v1/actions", headers=shop.auth("admin")).json()
    assert [a["status"] for a in actions] == ["unknown"]
    tickets = shop.client.get("/v1/tickets", headers=shop.auth("admin")).json()
    (ticket,) = [t for t in tickets if t["conversation_id"] == conversation]
    assert "never confirmed" in ticket["reason"]
    # Nothing retried it. A crash came after the change: it happened, once. A slow call may or
    # may not finish once abandoned (the stdio server is stopped with its session): at most once.
    if fault == "slow":
        time.sleep(2.5)
    order = shop.record("orders", PENDING)
    refunds = sum(p["transaction_type"] == "refund" for p in order["payment_history"])
    if fault == "slow":
        assert (order["status"], refunds) in (("pending", 0), ("cancelled", 1))
    else:
        assert (order["status"], refunds) == ("cancelled", 1)


def test_a_system_that_does_something_else_is_executed_and_flagged_for_staff(
    tmp_path: Path, open_shop: Callable[[Path], Shop], fake: FakeAnthropic
) -> None:
    db = tmp_path / "shop.json"
    shutil.copy(fixture_store(tmp_path), db)
    # A wrong mapping: "cancel" reads the order, so the system answers it still pending.
    wrong = {"cancel_pending_order": {"tool": "get_order_details",
                                      "arguments": {"order_id": "{order_id}"}}}  # fmt: skip
    shop = open_shop(_connector(tmp_path, _stdio(db), operations=wrong))
    conversation = shop.start()
    fake.enqueue(tool_use("verify_customer", VERIFY), tool_use("cancel_pending_order", CANCEL))
    turn = shop.say(conversation, f"I'm {IVAN['email']}, zip {IVAN['zip']}. Cancel {PENDING}.")
    fake.enqueue(text("Done."))
    shop.confirm(conversation, turn["pending_action"]["id"])
    (action,) = shop.client.get("/v1/actions", headers=shop.auth("admin")).json()
    assert action["status"] == "executed"  # the system answered without an error
    assert "status 'pending', expected 'cancelled'" in action["discrepancy"]
    assert "payments net paypal_6151711 $544.29, expected nothing" in action["discrepancy"]
    tickets = shop.client.get("/v1/tickets", headers=shop.auth("admin")).json()
    assert any("something other than what was confirmed" in t["reason"] for t in tickets)


@pytest.mark.parametrize(
    ("fault", "reads"),
    [("TAU2_SHOP_MALFORMED", "could not be used"), ("TAU2_SHOP_HUGE", "could not be used")],
)
def test_malformed_and_huge_answers_are_clear_tool_errors(
    tmp_path: Path, open_shop: Callable[[Path], Shop], fake: FakeAnthropic, fault: str,
    reads: str,
) -> None:  # fmt: skip
    db = tmp_path / "shop.json"
    shutil.copy(fixture_store(tmp_path), db)
    shop = open_shop(_connector(tmp_path, _stdio(db, {fault: "get_order_details"}),
                                max_answer_bytes=200_000))  # fmt: skip
    conversation = shop.start()
    fake.enqueue(tool_use("verify_customer", VERIFY), tool_use("order_status", {"order_id": PENDING}),
                 tool_use("cancel_pending_order", CANCEL), text("Something is wrong on our side."))  # fmt: skip
    turn = shop.say(conversation, f"I'm {IVAN['email']}, zip {IVAN['zip']}. Cancel {PENDING}.")
    verified, status, cancel = _results(fake)[-3:]
    assert not verified.get("is_error")  # by zip code: no order read
    assert status.get("is_error") and reads in status["content"]
    assert cancel.get("is_error") and turn["outcome"] != "awaiting_confirmation"
    assert shop.record("orders", PENDING)["status"] == "pending"


def test_a_dead_system_opens_the_breaker_and_readyz_says_so(
    tmp_path: Path, open_shop: Callable[[Path], Shop], fake: FakeAnthropic
) -> None:
    dead = {"mcp": {"command": [sys.executable, "-c", "import sys; sys.exit(3)"]}}
    shop = open_shop(_connector(tmp_path, dead, read_retries=0, breaker_failures=2))
    conversation = shop.start()
    for _ in range(3):
        fake.enqueue(tool_use("verify_customer", VERIFY), text("I can't reach our systems."))
        turn = shop.say(conversation, f"I'm {IVAN['email']}, zip {IVAN['zip']}.")
        result = _results(fake)[-1]
        assert result.get("is_error") and "cannot be reached" in result["content"]
        assert turn["outcome"] == "answered"
    ready = shop.client.get("/readyz").json()["checks"]["order_system"]
    assert ready["state"] == "open" and ready["last_error"].startswith("customer_by_email")
    # An unreachable system is no failed verification: the customer is not locked out.
    with transaction(shop.runtime.engine) as session:
        from agent.store.tables import Conversation

        assert session.get(Conversation, conversation).failed_verifications == 0  # type: ignore[union-attr]
    # A backend that vouches for a customer while the system is down gets a clear 409.
    refused = shop.client.post("/v1/conversations", json={"customer_email": IVAN["email"]},
                               headers=shop.auth())  # fmt: skip
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "order_system_unavailable"


def test_the_systems_refusal_is_its_own_message_and_changes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "shop.json"
    shutil.copy(fixture_store(tmp_path), db)
    system = connect(load(_connector(tmp_path, _stdio(db))))
    try:
        from tools.order_system import SystemRefused

        # Past our own rules (which would refuse it first), the system refuses in its words.
        with pytest.raises(SystemRefused, match="Non-pending order cannot be cancelled"):
            system.change("cancel_pending_order", {"order_id": DELIVERED,
                                                   "reason": "no longer needed"})  # fmt: skip
    finally:
        system.close()
    assert json.loads(db.read_text())["orders"][DELIVERED]["status"] == "delivered"


def test_connectors_check_says_what_is_wrong_in_one_line_each(tmp_path: Path) -> None:
    db = tmp_path / "shop.json"
    shutil.copy(fixture_store(tmp_path), db)
    runner = CliRunner()
    good = _connector(tmp_path, _stdio(db))
    ok = runner.invoke(cli, ["connectors", "check", "--file", str(good), "--email", IVAN["email"]])
    assert ok.exit_code == 0, ok.output
    assert "ivan_santos_6635" in ok.output and "is ready" in ok.output
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml.safe_dump({
        "extends": "tau2", **_stdio(db),
        "operations": {"order": {"tool": "get_order"},
                       "cancel_pending_order": {"arguments": {"order": "{order_id}"}},
                       "modify_pending_order_items": {"arguments": {
                           "order_id": "{order_id}", "item_ids": "{order_id}",
                           "new_item_ids": "{new_item_ids}",
                           "payment_method_id": "{payment_method_id}"}}},
    }))  # fmt: skip
    bad = runner.invoke(cli, ["connectors", "check", "--file", str(wrong)])
    assert bad.exit_code == 1
    problems = [line for line in bad.output.splitlines() if line.startswith("problem")]
    assert any("tool 'get_order' is not on the server" in p for p in problems)
    assert any("cancel_pending_order" in p and "schema" in p for p in problems)
    assert any("modify_pending_order_items" in p and "is not of type 'array'" in p
               for p in problems)  # fmt: skip


def test_a_connector_file_with_a_secret_missing_or_a_hole_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"extends": "tau2", "mcp": {
        "url": "http://127.0.0.1:1/mcp", "headers": {"Authorization": "Bearer ${NO_SUCH_VAR}"}}}))  # fmt: skip
    with pytest.raises(ConnectorError, match="NO_SUCH_VAR is not set"):
        load(path)
    path.write_text(yaml.safe_dump({"mcp": {"url": "http://127.0.0.1:1/mcp"},
                                    "operations": {}}))  # fmt: skip
    with pytest.raises(ConnectorError, match="operations not mapped: customer_by_email"):
        load(path)


def test_extra_tools_of_the_server_are_offered_and_a_change_among_them_waits_for_yes(
    tmp_path: Path, open_shop: Callable[[Path], Shop], fake: FakeAnthropic
) -> None:
    db = tmp_path / "shop.json"
    shutil.copy(fixture_store(tmp_path), db)
    extras = [
        {"tool": "calculate"},
        {"tool": "request_callback", "customer_arguments": ["user_id"]},
    ]
    shop = open_shop(_connector(tmp_path, _stdio(db), extra_tools=extras))
    conversation = shop.start()
    callback = {"phone": "+1 555 0100", "user_id": "yara_li_8961"}  # the model names another
    fake.enqueue(tool_use("calculate", {"expression": "(12.5 + 3) * 2"}),
                 tool_use("request_callback", callback), text("First I need to verify you."))  # fmt: skip
    shop.say(conversation, "What is (12.5 + 3) * 2? And call me back.")
    schemas = {t["name"]: t for t in fake.bodies[-1]["tools"]}
    assert "user_id" not in schemas["request_callback"]["input_schema"]["properties"]
    calculated, refused = _results(fake)[-2:]
    assert calculated["content"] == '"31.0"' and not calculated.get("is_error")
    assert refused.get("is_error") and "not verified" in refused["content"]

    fake.enqueue(tool_use("verify_customer", VERIFY), tool_use("request_callback", callback))
    turn = shop.say(conversation, f"I'm {IVAN['email']}, zip {IVAN['zip']}. Call +1 555 0100.")
    assert turn["outcome"] == "awaiting_confirmation"  # not read-only on the server: a change
    assert "request_callback" in turn["pending_action"]["summary"]
    assert "callback_requests" not in shop.record("users", "ivan_santos_6635")
    fake.enqueue(text("Done: we'll call you back."))
    shop.confirm(conversation, turn["pending_action"]["id"])
    # The customer's own id, whatever the model said.
    assert shop.record("users", "ivan_santos_6635")["callback_requests"] == [
        {"phone": "+1 555 0100"}
    ]
    assert "callback_requests" not in shop.record("users", "yara_li_8961")
