"""The offline model and the `supportbot` command, as a user runs them."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import selectors
import struct
import subprocess
import sys
import termios
import time
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
            "waits": False,
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


PENDING = IVAN["orders"][1]  # Ivan's pending order, paid $544.29 with PayPal
SUMMARY = (
    f"Cancel order {PENDING} (reason: ordered by mistake). Refund: $544.29 back to your PayPal."
)


def test_cli_ask_json_lists_the_proposed_change_among_the_turns_calls(cli_env: dict) -> None:
    """The turn that proposed a change listed `"tool_calls": []`: the proposed call was left
    out of the turn's calls. It is one of them, with the input the model gave it."""
    asked = runner.invoke(app, ["ask", "--customer", IVAN["email"], "--json",
                                f"cancel order {PENDING}, I ordered it by mistake"])  # fmt: skip
    assert asked.exit_code == 0, asked.output
    proposed = json.loads(asked.stdout)
    assert proposed["outcome"] == "awaiting_confirmation"
    assert proposed["pending_action"]["tool"] == "cancel_pending_order"
    change = {"name": "cancel_pending_order",
              "input": {"order_id": PENDING, "reason": "ordered by mistake"},
              "is_error": False, "needs_verification": False, "waits": False}  # fmt: skip
    assert proposed["tool_calls"][-1] == change
    # The turn that settles it lists it again, with how it went.
    done = runner.invoke(app, ["ask", "--conversation", proposed["conversation_id"], "--json",
                               "yes"])  # fmt: skip
    settled = json.loads(done.stdout)
    assert settled["action"]["status"] == "executed"
    assert [c["name"] for c in settled["tool_calls"]] == ["cancel_pending_order"]
    assert settled["tool_calls"][0]["is_error"] is False


def _on_a_terminal(args: list[str], steps: list[tuple[str, bytes]], timeout: float = 120) -> str:
    """`supportbot ARGS` run on a pseudo-terminal as a person would: for each step, wait until
    the screen shows its text, then type its keys. What the screen showed, without colours,
    once the command has exited."""
    main, side = pty.openpty()
    fcntl.ioctl(side, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 400, 0, 0))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ANTHROPIC_") and k not in ("COLUMNS", "LINES")}  # fmt: skip
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "supportbot"), *args],
        stdin=side, stdout=side, stderr=side, env=env, start_new_session=True,
    )  # fmt: skip
    os.close(side)
    raw, seen, deadline = b"", 0, time.monotonic() + timeout

    def screen() -> str:
        text = raw.decode(errors="replace").replace("\r\n", "\n")
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)

    def read() -> bool:
        nonlocal raw
        # A selector, not select.select: late in a long test session the terminal's descriptor
        # can be numbered past select()'s limit of 1024.
        with selectors.DefaultSelector() as selector:
            selector.register(main, selectors.EVENT_READ)
            ready = selector.select(max(0.0, deadline - time.monotonic()))
        try:
            chunk = os.read(main, 65536) if ready else b""
        except OSError:  # the command exited and closed the terminal
            chunk = b""
        raw += chunk
        return bool(chunk)

    try:
        for wanted, keys in steps:
            while (found := screen().find(wanted, seen)) < 0:
                assert time.monotonic() < deadline and read(), f"no {wanted!r}:\n{screen()}"
            seen = found + len(wanted)
            os.write(main, keys)
        while read():
            pass
        assert process.wait(timeout=max(1.0, deadline - time.monotonic())) == 0, screen()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(main)
    return screen()


def test_terminal_chat_on_a_terminal_shows_a_change_once(cli_env: dict) -> None:
    """The new user's session (issue 24), on a real terminal: the summary was printed twice
    ("Proposed: …", then again in the prompt), and the outcome ran on to the reply
    ("…business days).(change executed)")."""
    shown = _on_a_terminal(["chat"], [
        ("you>", f"I am {IVAN['email']} zip {IVAN['zip']}\n".encode()),
        ("you>", f"cancel order {PENDING}, I ordered it by mistake\n".encode()),
        ("[y/N] ", b"y\n"),
        ("you>", b"\x04"),  # Ctrl-D: done
    ])  # fmt: skip
    assert "you're verified" in shown
    assert shown.count(SUMMARY) == 1
    assert f"\nConfirm: {SUMMARY} [y/N] y\n" in shown
    assert "Done: order" in shown
    assert re.search(r"business days\)\.\n\(change executed\)\n", shown), shown


def test_terminal_chat_from_a_pipe_reads_as_a_transcript(cli_env: dict) -> None:
    """The same session piped: the `[y/N]` prompt was not shown at all."""
    lines = (f"I am {IVAN['email']} zip {IVAN['zip']}\n"
             f"cancel order {PENDING}, I ordered it by mistake\ny\n")  # fmt: skip
    result = runner.invoke(app, ["chat"], input=lines)
    assert result.exit_code == 0, result.output
    assert f"\nConfirm: {SUMMARY} [y/N] y\n" in result.stdout
    assert result.stdout.count(SUMMARY) == 1
    assert re.search(r"business days\)\.\n\(change executed\)\n", result.stdout)


def test_terminal_chat_shows_a_paused_identity_check_as_waiting(
    cli_env: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Identity checks paused after failed attempts: the check waits, it did not fail."""
    monkeypatch.setenv("SUPPORTBOT_VERIFY_BACKOFF_SECONDS", "60")
    lines = "".join(f"I am {IVAN['email']} zip {z}\n" for z in ("10000", "10001", IVAN["zip"]))
    result = runner.invoke(app, ["chat"], input=lines)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("✗ verify_customer") == 2  # the wrong zip codes
    assert result.stdout.count("… verify_customer (waiting)") == 1  # the right one, paused
    assert "you're verified" not in result.stdout
