"""The offline model and the `supportbot` command, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.engine.events import Outcome
from agent.runtime import Runtime
from tests.conftest import IVAN, RETAIL_SLICE, YARA, customer_id
from tests.fake_anthropic import FakeAnthropic, text

runner = CliRunner()


def test_offline_model_answers_an_order_question_end_to_end(offline_runtime: Runtime) -> None:
    order = IVAN["orders"][1]
    conversation = offline_runtime.agent.start_conversation()
    first = offline_runtime.agent.ask(conversation, f"Where is my order {order}?")
    assert "verify your identity" in first.reply and "pending" not in first.reply

    second = offline_runtime.agent.ask(conversation, f"It's {IVAN['email']}, order {order}")
    assert [c.name for c in second.tool_calls] == ["verify_customer", "order_status"]
    assert "Offline mode" in second.reply
    assert f"Order {order} is **pending**" in second.reply
    assert "not shipped yet" in second.reply and not second.degraded


def test_offline_model_lists_orders_and_hands_off(offline_runtime: Runtime) -> None:
    conversation = offline_runtime.agent.start_conversation(
        customer_id=customer_id(offline_runtime, YARA["email"])
    )
    listed = offline_runtime.agent.ask(conversation, "what are my recent orders?")
    assert all(o in listed.reply for o in YARA["orders"])
    handed = offline_runtime.agent.ask(conversation, "I want to talk to a human please")
    assert handed.outcome == Outcome.HANDED_OFF and "ticket #" in handed.reply


def test_offline_model_offers_help_for_unknown_questions(offline_runtime: Runtime) -> None:
    result = offline_runtime.agent.ask(offline_runtime.agent.start_conversation(), "hello there")
    assert "Offline mode" in result.reply and "order number" in result.reply
    # It looked in the (empty) help centre first, and says it found nothing.
    assert [c.name for c in result.tool_calls] == ["search_knowledge_base"]
    assert "couldn't find anything" in result.reply


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("SUPPORTBOT_DATA_DIR", str(tmp_path / "data"))
    result = runner.invoke(app, ["orders", "import", str(RETAIL_SLICE)])
    assert result.exit_code == 0, result.output
    assert "orders: 14 created" in result.output
    return {}


def test_cli_ask_offline_with_a_bound_customer(cli_env: dict) -> None:
    order = IVAN["orders"][0]
    result = runner.invoke(
        app, ["ask", "--customer", IVAN["email"], "--json", f"Where is my order {order}?"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["tool_calls"] == [
        {
            "name": "order_status",
            "input": {"order_id": order},
            "is_error": False,
            "needs_verification": False,
        }
    ]
    assert "delivered" in payload["reply"] and payload["model"] == "offline"
    assert set(payload) >= {"conversation_id", "reply", "tool_calls", "degraded", "usage"}

    follow_up = runner.invoke(
        app, ["ask", "--conversation", payload["conversation_id"], "--json", "and my orders?"]
    )
    assert json.loads(follow_up.stdout)["tool_calls"][0]["name"] == "list_orders"


def test_cli_reports_bad_input_clearly(cli_env: dict) -> None:
    unknown = runner.invoke(app, ["ask", "--customer", "nobody@example.com", "hi"])
    assert unknown.exit_code == 1 and "No customer with email" in unknown.output
    empty = runner.invoke(app, ["ask", "   "])
    assert empty.exit_code == 1 and "empty" in empty.output
    missing = runner.invoke(app, ["ask", "--conversation", "nope", "hi"])
    assert missing.exit_code == 1 and "not found" in missing.output


def test_cli_import_reports_skipped_rows(tmp_path: Path, cli_env: dict) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "order_id,customer_id,email,first_name,last_name,zip,status,item_id,item_name,price\n"
        "#W1000001,c1,ann@example.com,Ann,Lee,02139,pending,i1,Kettle,oops\n"
    )
    result = runner.invoke(app, ["orders", "import", str(bad)])
    assert result.exit_code == 2
    assert "line 2: price 'oops' is not a number" in result.output


def test_cli_chat_reads_stdin_lines(cli_env: dict) -> None:
    order = IVAN["orders"][0]
    result = runner.invoke(
        app,
        ["chat", "--customer", IVAN["email"]],
        input=f"where is {order}?\n\nthanks\n",
    )
    assert result.exit_code == 0, result.output
    assert "order_status" in result.output and "delivered" in result.output


def test_cli_ask_runs_the_claude_loop_with_a_base_url(
    cli_env: dict, fake: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
    fake.enqueue(text("Hi from Claude."))
    result = runner.invoke(app, ["ask", "--json", "hello"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["reply"] == "Hi from Claude."
    assert fake.bodies[0]["messages"][0]["content"][0]["text"] == "hello"
