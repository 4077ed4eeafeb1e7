"""A slow shop system holds up no other conversation, and a confirmed change is sent once.

On SQLite write transactions take turns under one writer per database (agent/store/db.py): a
call to the shop's own order system made while a turn held it would hold up every other
conversation's writes for as long as the shop takes. These tests hold a call of the example
shop's REST face in flight (its `TAU2_SHOP_HOLD_DIR` switch: the call leaves a marker file as
it arrives and answers only once the test writes `release`), and check by the order of events,
not by timings, what the other requests do meanwhile: they are answered while the shop's call
is provably still in flight. Then a confirmed change: sent once, whatever is repeated or
concurrent, and a round whose conversation changed identity or lost its turn meanwhile is
not recorded on what it read."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import text as sql
from sqlmodel import Session

from agent.adapters.sql_turns import SENDING_LOST
from agent.api.app import create_app
from agent.domain import utcnow
from agent.features.lost_sends import grace_seconds, sweep
from agent.runtime import build_runtime
from agent.store.conversations import load_messages
from agent.store.db import transaction
from agent.store.keys import create_key
from agent.store.tables import KeyScope
from tests.conftest import IVAN, YARA, SettingsFactory
from tests.fake_anthropic import FakeAnthropic, Reply, text, tool_use, tool_uses
from tests.shop_server import ROOT, Served, fixture_store

pytestmark = pytest.mark.slow

PENDING = "#W8770097"  # Ivan's, pending, $544.29 paid with paypal_6151711
CANCEL = {"order_id": PENDING, "reason": "ordered by mistake"}
WAIT = 60.0  # seconds: only ever reached when something is wrong


@dataclass
class Held:
    """The example shop's REST face with the calls of some tools held in flight."""

    folder: Path
    db: Path

    def arrived(self, tool: str) -> int:
        return len(list(self.folder.glob(f"{tool}.*.arrived")))

    def wait_for(self, tool: str, count: int = 1) -> None:
        deadline = time.monotonic() + WAIT
        while self.arrived(tool) < count:
            assert time.monotonic() < deadline, f"{tool} never reached the shop"
            time.sleep(0.02)

    def release(self) -> None:
        (self.folder / "release").touch()

    @property
    def released(self) -> bool:
        return (self.folder / "release").exists()

    def order(self, order_id: str) -> dict[str, Any]:
        return dict(json.loads(self.db.read_text())["orders"][order_id])


@dataclass
class App:
    client: TestClient
    auth: dict[str, str]
    runtime: Any
    admin: dict[str, str] = field(default_factory=dict)
    connector: Path | None = None
    failures: list[BaseException] = field(default_factory=list)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.client.request(method, path, json=body, headers=self.auth)

    def start(self, **body: Any) -> str:
        made = self.call("POST", "/v1/conversations", body)
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    def say(self, conversation: str, words: str) -> Any:
        return self.call("POST", f"/v1/conversations/{conversation}/messages", {"text": words})

    def confirm(self, conversation: str, action_id: str) -> Any:
        return self.call("POST", f"/v1/conversations/{conversation}/actions/{action_id}/confirm")

    def results(self, conversation: str) -> list[dict[str, Any]]:
        """The tool results stored in the conversation, oldest first."""
        with Session(self.runtime.engine) as session:
            rows = load_messages(session=session, conversation_id=conversation)
        return [b for row in rows for b in row.content if b.get("type") == "tool_result"]

    def in_thread(self, run: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
        """`run` in a thread of its own: (the thread, where its answer lands)."""
        answers: list[Any] = []

        def go() -> None:
            try:
                answers.append(run())
            except BaseException as exc:  # reported by the test
                self.failures.append(exc)

        thread = threading.Thread(target=go, daemon=True)
        thread.start()
        return thread, answers


@pytest.fixture
def held(tmp_path: Path) -> Held:
    folder = tmp_path / "hold"
    folder.mkdir()
    db = tmp_path / "shop.json"
    shutil.copy(fixture_store(tmp_path), db)
    return Held(folder, db)


@pytest.fixture
def open_app(
    make_settings: SettingsFactory, tmp_path: Path, serve: Callable[..., Served], held: Held
) -> Iterator[Callable[[str], App]]:
    """supportbot on SQLite, connected through the HTTP connector to the shop, whose calls of
    `tools` (a comma list of τ² tool names) are held."""
    opened: list[App] = []

    def start(tools: str) -> App:
        env = {"TAU2_SHOP_HOLD_DIR": str(held.folder), "TAU2_SHOP_DELAY_TOOLS": tools}
        served = serve("rest", held.db, env=env)
        spec = yaml.safe_load((ROOT / "examples/tau2_shop/rest-connector.yaml").read_text())
        spec["http"] = {"base_url": served.url}
        server = {k: v for k, v in spec.items() if k not in ("name", "extends")}
        path = tmp_path / "connector.yaml"
        # Held calls must not time out: the test decides when they answer.
        path.write_text(yaml.safe_dump({"name": "test-shop", "extends": "tau2", **server,
                                        "connect_timeout": WAIT, "call_timeout": WAIT * 2}))  # fmt: skip
        runtime = build_runtime(make_settings(connector_file=path, turn_wait_seconds=1))
        assert runtime.engine.url.get_backend_name() == "sqlite"
        with transaction(runtime.engine) as session:
            secret = create_key(session=session, name="backend-t", scope=KeyScope.BACKEND)[1]
            admin = create_key(session=session, name="admin-t", scope=KeyScope.ADMIN)[1]
        client = TestClient(create_app(runtime.settings, runtime)).__enter__()
        app = App(client, {"Authorization": f"Bearer {secret}"}, runtime,
                  {"Authorization": f"Bearer {admin}"}, connector=path)  # fmt: skip
        opened.append(app)
        return app

    yield start
    held.release()  # whatever happened, nothing stays held
    for app in opened:
        app.client.__exit__(None, None, None)
        if app.runtime.connector is not None:
            app.runtime.connector.close()


def _said(body: dict[str, Any]) -> tuple[str, bool]:
    """The text of the request's last message, and whether it carries tool results."""
    content = body["messages"][-1]["content"]
    blocks = content if isinstance(content, list) else [{"type": "text", "text": content}]
    words = " ".join(str(b.get("text", "")) for b in blocks if b.get("type") == "text")
    return words, any(b.get("type") == "tool_result" for b in blocks)


def model(body: dict[str, Any]) -> Reply:
    """The fake model, by what each request says (conversations run at once)."""
    words, results = _said(body)
    if results:
        return text("Here is what I found.")
    if "zip" in words and "where is" in words.lower():
        verify = {"email": IVAN["email"], "zip_code": IVAN["zip"]}
        return tool_uses(("verify_customer", verify), ("order_status", {"order_id": PENDING}))
    if "where is" in words.lower():
        return tool_use("order_status", {"order_id": PENDING})
    if "cancel" in words.lower():
        return tool_use("cancel_pending_order", CANCEL)
    return text("Glad to help.")


def _finish(thread: threading.Thread, app: App) -> None:
    thread.join(WAIT)
    assert not thread.is_alive(), "the request never finished"
    if app.failures:
        raise app.failures[0]


def _answered_while_held(
    app: App, held: Held, slow: threading.Thread, run: Callable[[], Any]
) -> Any:
    """What `run` answered, asserting it answered while the shop's held call (the one `slow`
    waits on) was still unanswered; then the call is let go and `slow` finishes."""
    other, answered = app.in_thread(run)
    other.join(WAIT)
    done_while_held = not other.is_alive() and not held.released
    held.release()
    _finish(other, app)
    _finish(slow, app)
    assert done_while_held, "the other requests waited for the shop's call to answer"
    return answered[0]


def test_a_slow_shop_call_holds_up_no_other_conversation(
    open_app: Callable[[str], App], held: Held, fake: FakeAnthropic
) -> None:
    app = open_app("get_order_details")
    fake.default = model
    a = app.start(customer_email=IVAN["email"])
    b = app.start()
    slow, answers = app.in_thread(lambda: app.say(a, f"Where is my order {PENDING}?"))
    held.wait_for("get_order_details")  # A's tool round is waiting on the shop

    # Meanwhile another conversation's message is answered, a conversation is started and
    # one is read: each needs a write transaction (the message, the row, the request counted).
    reply, _started, read = _answered_while_held(
        app, held, slow, lambda: [app.say(b, "Thanks, that's all."), app.start(),
                                  app.call("GET", f"/v1/conversations/{b}")])  # fmt: skip
    assert reply.status_code == 200 and reply.json()["reply"] == "Glad to help."
    assert read.status_code == 200
    (turn,) = answers
    assert turn.status_code == 200, turn.text
    assert [(c["name"], c["is_error"]) for c in turn.json()["tool_calls"]] == [("order_status",
                                                                              False)]  # fmt: skip
    assert held.arrived("get_order_details") == 1


def test_a_round_that_verifies_reads_the_shop_before_the_writer_and_once(
    open_app: Callable[[str], App], held: Held, fake: FakeAnthropic
) -> None:
    """verify_customer records in the store, so it runs in the round's write transaction; what
    it and the call after it read from the shop is read before it, once."""
    app = open_app("get_order_details,get_user_details,find_user_id_by_email")
    fake.default = model
    a, b = app.start(), app.start()
    slow, answers = app.in_thread(
        lambda: app.say(a, f"I'm {IVAN['email']}, zip {IVAN['zip']}. Where is {PENDING}?")
    )
    held.wait_for("find_user_id_by_email")
    other = _answered_while_held(app, held, slow, lambda: app.say(b, "Thanks, that's all."))
    assert other.status_code == 200
    (turn,) = answers
    assert turn.status_code == 200, turn.text
    assert [(c["name"], c["is_error"]) for c in turn.json()["tool_calls"]] == [
        ("verify_customer", False), ("order_status", False)]  # fmt: skip
    status = json.loads(_results(fake)[-1]["content"])
    assert status["order_id"] == PENDING and status["status"] == "pending"
    # Read ahead for the customer the facts name, then used inside the transaction.
    assert [held.arrived(t) for t in ("find_user_id_by_email", "get_user_details",
                                      "get_order_details")] == [1, 1, 1]  # fmt: skip


def _results(fake: FakeAnthropic) -> list[dict[str, Any]]:
    return [
        block
        for message in fake.bodies[-1]["messages"]
        if message["role"] == "user" and isinstance(message["content"], list)
        for block in message["content"]
        if block["type"] == "tool_result"
    ]


def test_a_confirmed_change_is_sent_once_however_often_it_is_confirmed(
    open_app: Callable[[str], App], held: Held, fake: FakeAnthropic
) -> None:
    app = open_app("cancel_pending_order")
    fake.default = model
    a, b = app.start(customer_email=IVAN["email"]), app.start()
    proposed = app.say(a, f"Please cancel {PENDING}, I ordered it by mistake.").json()
    action = proposed["pending_action"]["id"]
    first, answers = app.in_thread(lambda: app.confirm(a, action))
    held.wait_for("cancel_pending_order")  # sent, and held in flight

    # While it is in flight: the confirmation again, the customer's "yes", another
    # conversation's message. None sends it again, and none waits for the shop.
    again = app.confirm(a, action)
    yes = app.say(a, "yes")
    other = app.say(b, "Thanks, that's all.")
    assert not held.released
    assert again.status_code == 200 and again.json()["action"]["status"] == "unknown"
    assert yes.status_code == 409 and yes.json()["error"]["code"] == "turn_in_progress"
    assert other.status_code == 200 and other.json()["reply"] == "Glad to help."
    assert held.arrived("cancel_pending_order") == 1

    held.release()
    _finish(first, app)
    (done,) = answers
    assert done.status_code == 200, done.text
    assert done.json()["action"]["status"] == "executed"
    result = _results(fake)[-1]
    assert not result.get("is_error") and json.loads(result["content"])["status"] == "cancelled"
    # Confirmed once more afterwards: the first outcome, nothing sent.
    late = app.confirm(a, action)
    assert late.status_code == 200 and late.json()["action"]["status"] == "executed"
    assert held.arrived("cancel_pending_order") == 1
    order = held.order(PENDING)
    refunds = [p for p in order["payment_history"] if p["transaction_type"] == "refund"]
    assert order["status"] == "cancelled" and len(refunds) == 1
    # The stored history carries the outcome, not the "being sent" placeholder; no ticket.
    stored = app.results(a)
    assert json.loads(stored[-1]["content"])["status"] == "cancelled"
    assert not stored[-1].get("is_error")
    with Session(app.runtime.engine) as session:
        tickets = session.execute(sql("SELECT count(*) FROM ticket WHERE conversation_id = :a"),
                                  {"a": a}).scalar_one()  # fmt: skip
    assert tickets == 0


@pytest.mark.parametrize("meanwhile", ["identity changed", "turn lost"])
def test_a_round_is_not_recorded_on_what_another_identity_or_turn_read(
    open_app: Callable[[str], App], held: Held, fake: FakeAnthropic, meanwhile: str
) -> None:
    app = open_app("get_order_details")
    fake.default = model
    app.start(customer_email=YARA["email"])  # she is known here too
    a = app.start(customer_email=IVAN["email"])
    slow, answers = app.in_thread(lambda: app.say(a, f"Where is my order {PENDING}?"))
    held.wait_for("get_order_details")
    # What another worker (a staff action, a turn that took over) would have written.
    with transaction(app.runtime.engine) as session:
        if meanwhile == "identity changed":
            yara = session.execute(sql("SELECT id FROM customer WHERE email = :e"),
                                   {"e": YARA["email"]}).scalar_one()  # fmt: skip
            session.execute(sql("UPDATE conversation SET customer_id = :c WHERE id = :i"),
                            {"c": yara, "i": a})  # fmt: skip
        else:
            session.execute(sql("UPDATE turn_lease SET owner = 'elsewhere:1:other', "
                                "expires_at = :t WHERE conversation_id = :i"),
                            {"t": time.time() + 600, "i": a})  # fmt: skip
    held.release()
    _finish(slow, app)
    (turn,) = answers
    results = app.results(a)
    if meanwhile == "turn lost":
        assert turn.status_code == 409, turn.text
        assert results == []  # the round is not recorded
    else:
        # Run again for the conversation's customer now: Ivan's order is not Yara's.
        assert turn.status_code == 200, turn.text
        (result,) = results
        assert result.get("is_error") and "not found" in result["content"]
        assert "544.29" not in json.dumps(results)


def test_binding_a_new_conversation_asks_the_shop_before_the_writer(
    open_app: Callable[[str], App], held: Held, fake: FakeAnthropic
) -> None:
    app = open_app("find_user_id_by_email")
    fake.default = model
    b = app.start()
    binding, made = app.in_thread(lambda: app.call("POST", "/v1/conversations",
                                                   {"customer_email": IVAN["email"]}))  # fmt: skip
    held.wait_for("find_user_id_by_email")
    other = _answered_while_held(app, held, binding, lambda: app.say(b, "Thanks, that's all."))
    assert other.status_code == 200
    (bound,) = made
    assert bound.status_code == 201, bound.text
    assert bound.json()["customer"]["name"].startswith("Ivan")


def test_a_change_staff_run_is_sent_with_no_writer_held_and_recorded(
    open_app: Callable[[str], App], held: Held, fake: FakeAnthropic
) -> None:
    app = open_app("cancel_pending_order")
    fake.default = model
    a, b = app.start(customer_email=IVAN["email"]), app.start()
    ivan = _customer_of(app, a)
    body = {"tool": "cancel_pending_order", "arguments": CANCEL, "conversation_id": a}
    staff, ran = app.in_thread(lambda: app.client.post(f"/v1/customers/{ivan}/actions",
                                                       json=body, headers=app.admin))  # fmt: skip
    held.wait_for("cancel_pending_order")
    other = app.say(b, "Thanks, that's all.")
    actions = app.client.get("/v1/actions", headers=app.admin).json()
    assert not held.released
    assert other.status_code == 200
    assert [a["status"] for a in actions] == ["unknown"]  # recorded as being sent
    held.release()
    _finish(staff, app)
    (done,) = ran
    assert done.status_code == 201 and done.json()["status"] == "executed", done.text
    assert [a["status"] for a in app.client.get("/v1/actions", headers=app.admin).json()] == [
        "executed"]  # fmt: skip
    order = held.order(PENDING)
    refunds = [p for p in order["payment_history"] if p["transaction_type"] == "refund"]
    assert order["status"] == "cancelled" and len(refunds) == 1
    assert held.arrived("cancel_pending_order") == 1


def _env(app: App, fake: FakeAnthropic) -> dict[str, str]:
    """The environment of a process of its own on the app's database, shop and model."""
    settings = app.runtime.settings
    return {**os.environ, "SUPPORTBOT_DATABASE_URL": settings.resolved_database_url(),
            "SUPPORTBOT_DATA_DIR": str(settings.data_dir), "ANTHROPIC_BASE_URL": fake.url,
            "ANTHROPIC_API_KEY": "sk-ant-test", "SUPPORTBOT_CONNECTOR_FILE": str(app.connector),
            "SUPPORTBOT_THINKING": settings.thinking}  # fmt: skip


def _killed_mid_call(app: App, held: Held, fake: FakeAnthropic, code: list[str]) -> None:
    """Run `code` (a command line) in a process of its own, killed while the shop holds the
    change it sent."""
    process = subprocess.Popen(code, cwd=ROOT, env=_env(app, fake), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        held.wait_for("cancel_pending_order")
    finally:
        process.kill()
        process.wait()


def _yes_killed_mid_call(app: App, held: Held, fake: FakeAnthropic) -> str:
    """A conversation whose customer's "yes" is run by a process of its own (the terminal's
    `ask`), killed while the shop holds the change it sent: its id."""
    a = app.start(customer_email=IVAN["email"])
    proposed = app.say(a, f"Please cancel {PENDING}, I ordered it by mistake.").json()
    assert proposed["outcome"] == "awaiting_confirmation"
    _killed_mid_call(app, held, fake, [sys.executable, "-c", "from agent.cli import app; app()",
                                       "ask", "--conversation", a, "yes"])  # fmt: skip
    return a


def _tickets(app: App) -> list[tuple[str, str, str]]:
    """Every ticket: (its conversation, reason, summary)."""
    with Session(app.runtime.engine) as session:
        rows = session.execute(sql("SELECT conversation_id, reason, summary FROM ticket "
                                   "ORDER BY id")).all()  # fmt: skip
    return [tuple(row) for row in rows]


def _customer_of(app: App, conversation: str) -> str:
    with Session(app.runtime.engine) as session:
        return str(session.execute(sql("SELECT customer_id FROM conversation WHERE id = :c"),
                                   {"c": conversation}).scalar_one())  # fmt: skip


def _racing_sweeps(app: App) -> list[str]:
    """Two sweeps started at once: the actions they told staff of, together."""
    start = threading.Barrier(2)

    def swept() -> list[str]:
        start.wait(WAIT)
        return sweep(app.runtime.engine, grace=0)

    runs = [app.in_thread(swept) for _ in range(2)]
    for thread, _ in runs:
        _finish(thread, app)
    return [x for _, answers in runs for x in answers[0]]


def _actions(app: App) -> list[tuple[str, str]]:
    with Session(app.runtime.engine) as session:
        rows = session.execute(sql("SELECT status, result FROM proposed_action")).all()
    return [(str(status).lower(), result) for status, result in rows]


def test_a_change_whose_process_died_mid_call_stays_unknown_and_goes_to_staff(
    open_app: Callable[[str], App], held: Held, fake: FakeAnthropic
) -> None:
    app = open_app("cancel_pending_order")
    fake.default = model
    a = _yes_killed_mid_call(app, held, fake)
    # Recorded as sent before it was sent: unknown, and the model was told so.
    (result,) = [r for r in app.results(a) if "order system" in str(r["content"])]
    assert result.get("is_error") and "unknown" in result["content"]
    # The customer writes again: the turn taken over tells staff, once, and sends nothing.
    again = app.say(a, "Did that go through?")
    assert again.status_code == 200, again.text
    app.say(a, "Hello?")
    ((conversation, reason, _),) = _tickets(app)
    assert conversation == a and "never confirmed" in reason
    assert [status for status, _ in _actions(app)] == ["unknown"]
    # Nor does the sweep (the turn that took over told staff already).
    assert sweep(app.runtime.engine, grace=0) == []
    assert len(_tickets(app)) == 1
    held.release()
    assert held.arrived("cancel_pending_order") == 1


def test_the_sweep_tells_staff_of_a_change_whose_process_died_when_the_customer_is_silent(
    open_app: Callable[[str], App], held: Held, fake: FakeAnthropic
) -> None:
    app = open_app("cancel_pending_order")
    fake.default = model
    a = _yes_killed_mid_call(app, held, fake)
    held.release()  # the shop answers the call nobody waits for any more
    before = len(app.results(a)), len(fake.bodies)
    # Within the grace period (longer than any call the connector allows) nothing is swept.
    spec = app.runtime.connector.spec if app.runtime.connector is not None else None
    assert grace_seconds(spec, app.runtime.settings.turn_lease_seconds) > WAIT * 3
    assert sweep(app.runtime.engine, grace=grace_seconds(spec, 15)) == []
    assert _tickets(app) == []
    # Past it, with no turn running: one ticket, the action stays unknown, nothing is sent.
    (told,) = sweep(app.runtime.engine, grace=0)
    ((conversation, reason, summary),) = _tickets(app)
    assert conversation == a and "never confirmed" in reason
    assert told in summary and "cancel_pending_order" in summary
    assert _actions(app) == [("unknown", SENDING_LOST)]
    actions = app.client.get("/v1/actions", headers=app.admin).json()
    assert [(x["id"], x["status"]) for x in actions] == [(told, "unknown")]
    # Swept again: nothing more. The customer hears nothing from it, the model is not asked.
    assert sweep(app.runtime.engine, grace=0) == []
    assert len(_tickets(app)) == 1
    assert (len(app.results(a)), len(fake.bodies)) == before
    # The customer writes after all: no second ticket, nothing sent again.
    again = app.say(a, "Did that go through?")
    assert again.status_code == 200, again.text
    assert len(_tickets(app)) == 1
    assert held.arrived("cancel_pending_order") == 1
    order = held.order(PENDING)
    assert len([p for p in order["payment_history"] if p["transaction_type"] == "refund"]) == 1


def test_the_sweep_leaves_a_change_whose_turn_is_still_running(
    open_app: Callable[[str], App], held: Held, fake: FakeAnthropic
) -> None:
    app = open_app("cancel_pending_order")
    fake.default = model
    a = app.start(customer_email=IVAN["email"])
    action = app.say(a, f"Please cancel {PENDING}, I ordered it by mistake.").json()
    first, answers = app.in_thread(lambda: app.confirm(a, action["pending_action"]["id"]))
    held.wait_for("cancel_pending_order")  # in flight: its turn holds the lease
    swept = sweep(app.runtime.engine, grace=0)
    assert not held.released
    assert swept == [] and _tickets(app) == []
    assert [status for status, _ in _actions(app)] == ["unknown"]
    held.release()
    _finish(first, app)
    (done,) = answers
    assert done.status_code == 200 and done.json()["action"]["status"] == "executed", done.text
    assert sweep(app.runtime.engine, grace=0) == [] and _tickets(app) == []


def test_two_sweeps_at_once_open_one_ticket(
    open_app: Callable[[str], App], held: Held, fake: FakeAnthropic
) -> None:
    app = open_app("cancel_pending_order")
    fake.default = model
    a = _yes_killed_mid_call(app, held, fake)
    assert len(_racing_sweeps(app)) == 1
    assert [t[0] for t in _tickets(app)] == [a]


def test_the_sweep_tells_staff_of_a_change_staff_ran_whose_process_died(
    open_app: Callable[[str], App], held: Held, fake: FakeAnthropic
) -> None:
    """A change run from the desk for no conversation: the sweep opens one of the customer's
    own to carry the ticket."""
    app = open_app("cancel_pending_order")
    fake.default = model
    a = app.start(customer_email=IVAN["email"])  # the customer, as the shop knows him
    ivan = _customer_of(app, a)
    code = ("from agent.config import Settings; from agent.runtime import build_runtime; "
            "from agent.features.staff_actions import run_for_customer; "
            "rt = build_runtime(Settings()); "
            f"run_for_customer(rt.engine, rt.agent.tools, rt.settings, customer_id={ivan!r}, "
            f"tool='cancel_pending_order', arguments={CANCEL!r}, staff='anna', "
            "orders=rt.orders)")  # fmt: skip
    _killed_mid_call(app, held, fake, [sys.executable, "-c", code])
    held.release()
    assert [status for status, _ in _actions(app)] == ["unknown"]
    assert sweep(app.runtime.engine, grace=grace_seconds(None, 15)) == []  # too recent
    assert len(_racing_sweeps(app)) == 1
    ((conversation, reason, summary),) = _tickets(app)
    assert "never confirmed" in reason and "Run by staff:anna" in summary
    assert _actions(app) == [("unknown", SENDING_LOST)]
    with Session(app.runtime.engine) as session:
        row = session.execute(sql("SELECT customer_id, channel FROM conversation WHERE id = :c"),
                              {"c": conversation}).one()  # fmt: skip
    assert tuple(row) == (ivan, "desk")
    actions = app.client.get(f"/v1/actions?conversation_id={conversation}",
                             headers=app.admin).json()  # fmt: skip
    assert [x["status"] for x in actions] == ["unknown"]
    assert sweep(app.runtime.engine, grace=0) == []
    assert held.arrived("cancel_pending_order") == 1


def test_a_server_that_starts_after_the_crash_tells_staff(
    open_app: Callable[[str], App], held: Held, fake: FakeAnthropic
) -> None:
    app = open_app("cancel_pending_order")
    fake.default = model
    a = _yes_killed_mid_call(app, held, fake)
    held.release()
    with transaction(app.runtime.engine) as session:  # the grace period has long passed
        session.execute(sql("UPDATE proposed_action SET decided_at = :t"),
                        {"t": utcnow() - timedelta(days=1)})  # fmt: skip
    with TestClient(create_app(app.runtime.settings, app.runtime)):  # `serve` starting again
        deadline = time.monotonic() + WAIT
        while not _tickets(app):
            assert time.monotonic() < deadline, "the server's sweep told nobody"
            time.sleep(0.05)
    ((conversation, reason, _),) = _tickets(app)
    assert conversation == a and "never confirmed" in reason
    assert _actions(app) == [("unknown", SENDING_LOST)]
    assert held.arrived("cancel_pending_order") == 1
