"""Order changes without Claude: the offline model verifies, proposes and reports the outcome
for clear requests, and the terminal chat asks the customer y/N."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from agent.cli import app
from agent.engine.events import Outcome
from agent.engine.port import Decision
from agent.runtime import Runtime, build_runtime
from agent.store.tables import Order
from tests.conftest import IVAN, RETAIL_SLICE, customer_id

PENDING = "#W8770097"
runner = CliRunner()


def _status(runtime: Runtime, order_id: str = PENDING) -> str:
    with Session(runtime.engine) as session:
        order = session.get(Order, order_id)
        assert order is not None
        return order.status


def test_offline_verifies_proposes_and_after_a_yes_reports_the_cancellation(
    offline_runtime: Runtime,
) -> None:
    agent = offline_runtime.agent
    conversation = agent.start_conversation()
    proposed = agent.ask(conversation, f"I'm {IVAN['email']}. Please cancel order {PENDING} "
                                       "because I ordered it by mistake.")  # fmt: skip
    # Verified, the order read, the change proposed (held: it runs once the customer says yes).
    assert [c.name for c in proposed.tool_calls] == [
        "verify_customer",
        "order_status",
        "cancel_pending_order",
    ]
    assert proposed.outcome == Outcome.AWAITING_CONFIRMATION
    assert proposed.pending_action is not None
    assert proposed.reply.startswith(f"Please confirm: Cancel order {PENDING} (reason: ordered "
                                     "by mistake). Refund: $544.29 back to your PayPal.")  # fmt: skip
    assert _status(offline_runtime) == "pending"

    done = agent.ask(conversation, "yes")
    assert done.settled is not None and done.settled[1].status == "executed"
    assert "Offline mode" in done.reply
    assert f"Done: order {PENDING} is cancelled. Refund: $544.29 to your PayPal" in done.reply
    assert _status(offline_runtime) == "cancelled"


def test_offline_reads_another_message_as_not_confirmed(offline_runtime: Runtime) -> None:
    agent = offline_runtime.agent
    conversation = agent.start_conversation(customer_id=customer_id(offline_runtime,
                                                                    IVAN["email"]))  # fmt: skip
    agent.ask(conversation, f"cancel {PENDING}, I no longer need it")
    other = agent.ask(conversation, "what are my recent orders?")
    assert other.settled is not None and other.settled[1].status == "superseded"
    assert PENDING in other.reply and _status(offline_runtime) == "pending"

    pending = agent.ask(conversation, f"cancel {PENDING}, I no longer need it").pending_action
    assert pending is not None
    declined = agent.turn(conversation, Decision(pending.id, False, "customer")).result()
    assert "haven't changed anything" in declined.reply and _status(offline_runtime) == "pending"


def test_offline_does_not_guess_a_reason(offline_runtime: Runtime) -> None:
    agent = offline_runtime.agent
    conversation = agent.start_conversation(customer_id=customer_id(offline_runtime,
                                                                    IVAN["email"]))  # fmt: skip
    result = agent.ask(conversation, f"cancel {PENDING}")
    assert result.pending_action is None and _status(offline_runtime) == "pending"


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(tmp_path / "data"))
    assert runner.invoke(app, ["orders", "import", str(RETAIL_SLICE)]).exit_code == 0
    return tmp_path / "data"


@pytest.mark.parametrize(("answer", "status"), [("y", "cancelled"), ("n", "pending")])
def test_the_terminal_chat_asks_y_or_n(cli_env: Path, answer: str, status: str) -> None:
    lines = f"cancel order {PENDING} please, I ordered it by mistake\n{answer}\n"
    result = runner.invoke(app, ["chat", "--customer", IVAN["email"]], input=lines)
    assert result.exit_code == 0, result.output
    # Read from a pipe too, the change is shown as its prompt, with the answer read after it
    # (as a terminal echoes it), and only there.
    summary = (f"Cancel order {PENDING} (reason: ordered by mistake). Refund: $544.29 back to "
               "your PayPal.")  # fmt: skip
    assert f"\nConfirm: {summary} [y/N] {answer}\n" in result.output
    assert result.output.count(summary) == 1
    assert ("Done: order" in result.output) is (answer == "y")
    # How it ended, on a line of its own (it ran on: "…business days).(change executed)").
    ended = "executed" if answer == "y" else "declined"
    assert re.search(rf"[.!?]\n\(change {ended}\)\n", result.output), result.output
    from agent.config import Settings

    runtime = build_runtime(Settings(data_dir=cli_env))
    assert _status(runtime) == status
