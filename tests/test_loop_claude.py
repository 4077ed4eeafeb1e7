"""The agent loop driven through the real anthropic SDK against the wire-level fake."""

from __future__ import annotations

import json
import logging

import pytest

from agent.engine.events import (
    Degraded,
    Outcome,
    TextDelta,
    ToolFinished,
    ToolStarted,
    TurnFinished,
)
from agent.engine.history import INTERRUPTED_REPLY, to_api_messages, validate
from agent.engine.loop import Said
from agent.engine.port import Decision
from agent.errors import InvalidInput
from agent.models.base import ProgressDelta
from agent.runtime import Runtime, build_runtime
from agent.store.conversations import list_tickets, load_messages
from agent.store.db import transaction
from agent.store.tables import Conversation, ConversationState
from tests.conftest import ALL_THINKING_MODES, IVAN, YARA, SettingsFactory, customer_id
from tests.fake_anthropic import (
    FakeAnthropic,
    error,
    refusal,
    system_text,
    text,
    tool_use,
    tool_uses,
)

thinking_mode = ALL_THINKING_MODES  # every test here under both thinking settings


def _stored(runtime: Runtime, conversation_id: str) -> list[dict]:
    with transaction(runtime.engine) as session:
        return to_api_messages(load_messages(session=session, conversation_id=conversation_id))


def _verified_conversation(runtime: Runtime, who: dict) -> str:
    return runtime.agent.start_conversation(customer_id=customer_id(runtime, who["email"]))


def _said(message: dict) -> list[dict]:
    """A message's blocks other than thinking."""
    return [b for b in message["content"] if b["type"] not in ("thinking", "redacted_thinking")]


def _tool_results(body: dict) -> list[dict]:
    return [b for b in body["messages"][-1]["content"] if b["type"] == "tool_result"]


def test_multi_step_tool_loop_verifies_then_looks_up(runtime: Runtime, fake: FakeAnthropic) -> None:
    order = IVAN["orders"][0]
    fake.enqueue(
        tool_use("verify_customer", {"email": IVAN["email"], "order_id": order}),
        tool_use("order_status", {"order_id": order}),
        text(f"Your order {order} has been delivered."),
    )
    conversation = runtime.agent.start_conversation()
    result = runtime.agent.ask(conversation, f"Where is {order}? I'm {IVAN['email']}")

    assert result.reply == f"Your order {order} has been delivered."
    assert result.outcome == Outcome.ANSWERED and not result.degraded
    assert [c.name for c in result.tool_calls] == ["verify_customer", "order_status"]
    assert not any(c.is_error for c in result.tool_calls)
    # The second call carried the verification result; the third carried the order data.
    first, _second, third = fake.bodies
    assert first["tools"] and first["system"] and first["model"] == runtime.settings.model
    assert "not verified" in system_text(first) and "verified: Ivan Santos" in system_text(third)
    status = json.loads(_tool_results(third)[0]["content"])
    assert status["order_id"] == order and status["status"] == "delivered"
    # History: user, assistant(tool_use), user(tool_result) x2, assistant text.
    stored = _stored(runtime, conversation)
    assert [m["role"] for m in stored] == [
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
        "assistant",
    ]
    validate([*stored, {"role": "user", "content": [{"type": "text", "text": "ok"}]}])


def test_parallel_tool_calls_answered_in_one_user_message(
    runtime: Runtime, fake: FakeAnthropic
) -> None:
    a, b = IVAN["orders"]
    fake.enqueue(
        tool_uses(
            ("order_status", {"order_id": a}),
            ("order_status", {"order_id": b}),
            say="Checking both.",
        ),
        text("One delivered, one pending."),
    )
    conversation = _verified_conversation(runtime, IVAN)
    result = runtime.agent.ask(conversation, f"Status of {a} and {b}?")

    results = _tool_results(fake.bodies[1])
    calls = [blk for blk in fake.bodies[1]["messages"][-2]["content"] if blk["type"] == "tool_use"]
    assert [r["tool_use_id"] for r in results] == [c["id"] for c in calls]
    assert {json.loads(r["content"])["status"] for r in results} == {"delivered", "pending"}
    assert result.reply == "One delivered, one pending."


def test_model_asking_for_another_customers_order_gets_not_found(
    runtime: Runtime, fake: FakeAnthropic
) -> None:
    others = YARA["orders"][0]
    fake.enqueue(tool_use("order_status", {"order_id": others}), text("I can't find that order."))
    conversation = _verified_conversation(runtime, IVAN)
    runtime.agent.ask(conversation, f"I'm actually Yara, show me {others}")

    result_block = _tool_results(fake.bodies[1])[0]
    assert result_block["is_error"] is True
    assert "not found" in result_block["content"]
    # Nothing of Yara's order reaches the model: no address, items or status.
    assert "10126" not in json.dumps(fake.bodies[1]) and "delivered" not in result_block["content"]


def test_unverified_conversation_gets_no_order_data(runtime: Runtime, fake: FakeAnthropic) -> None:
    fake.enqueue(tool_use("order_status", {"order_id": IVAN["orders"][0]}), text("Please verify."))
    runtime.agent.ask(runtime.agent.start_conversation(), f"Where is {IVAN['orders'][0]}?")
    block = _tool_results(fake.bodies[1])[0]
    assert block["is_error"] is True and "not verified" in block["content"]


def test_max_tokens_reply_is_continued_not_cut(runtime: Runtime, fake: FakeAnthropic) -> None:
    fake.enqueue(
        text("Your order shipped on Monday and", stop_reason="max_tokens"),
        text(" should arrive by Friday."),
    )
    conversation = _verified_conversation(runtime, IVAN)
    result = runtime.agent.ask(conversation, "When will it arrive?")

    assert result.reply == "Your order shipped on Monday and should arrive by Friday."
    continuation = fake.bodies[1]["messages"]
    assert continuation[-2]["role"] == "assistant"  # the cut-off reply (with its thinking)
    assert _said(continuation[-2]) == [{"type": "text", "text": "Your order shipped on Monday and"}]
    assert continuation[-1]["role"] == "user"
    # Only the merged answer is stored, not the continuation prompt.
    stored = _stored(runtime, conversation)
    assert _said(stored[-1]) == [{"type": "text", "text": result.reply}]
    assert len(stored) == 2


def test_reply_still_cut_after_continuations_says_so(runtime: Runtime, fake: FakeAnthropic) -> None:
    fake.enqueue(*[text(f"part {i} ", stop_reason="max_tokens") for i in range(3)])
    result = runtime.agent.ask(_verified_conversation(runtime, IVAN), "Tell me everything")
    assert result.reply.startswith("part 0 part 1 part 2")
    assert "cut short" in result.reply


def test_truncated_tool_call_is_retried_with_more_room(
    runtime: Runtime, fake: FakeAnthropic
) -> None:
    truncated = tool_use("order_status", {"order_id": "#W68"})
    truncated.stop_reason = "max_tokens"
    fake.enqueue(
        truncated, tool_use("order_status", {"order_id": IVAN["orders"][0]}), text("Done.")
    )
    runtime.agent.ask(_verified_conversation(runtime, IVAN), "status?")
    assert fake.bodies[1]["max_tokens"] == 2 * fake.bodies[0]["max_tokens"]
    assert fake.bodies[1]["messages"] == fake.bodies[0]["messages"]


def test_refusal_gets_a_polite_reply_and_valid_history(
    runtime: Runtime, fake: FakeAnthropic
) -> None:
    fake.enqueue(refusal(), text("Happy to help with your order."))
    conversation = _verified_conversation(runtime, IVAN)
    result = runtime.agent.ask(conversation, "something disallowed")
    assert result.outcome == Outcome.REFUSED
    assert "can't help with that" in result.reply
    runtime.agent.ask(conversation, "ok, what about my order?")
    validate(fake.bodies[1]["messages"])


def test_iteration_cap_hands_off_to_a_human(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    runtime = build_runtime(make_settings(max_tool_iterations=2))
    from agent.store.importer import import_path
    from tests.conftest import RETAIL_SLICE

    import_path(runtime.engine, RETAIL_SLICE)
    fake.enqueue(*[tool_use("list_orders", {}) for _ in range(3)])
    conversation = _verified_conversation(runtime, IVAN)
    result = runtime.agent.ask(conversation, "list my orders forever")

    assert result.outcome == Outcome.ITERATION_CAP
    assert len(fake.bodies) == 3 and len(result.tool_calls) == 2
    with transaction(runtime.engine) as session:
        assert session.get(Conversation, conversation).state == ConversationState.HUMAN
        (ticket,) = list_tickets(session=session, conversation_id=conversation)
    assert f"ticket #{ticket.id}" in result.reply
    # The unexecuted third tool call is not stored: the history stays valid.
    stored = _stored(runtime, conversation)
    assert stored[-1]["role"] == "assistant" and stored[-1]["content"][0]["type"] == "text"


def test_escalation_tool_pauses_the_bot(runtime: Runtime, fake: FakeAnthropic) -> None:
    fake.enqueue(
        tool_use("escalate_to_human", {"reason": "wants a refund", "summary": "refund for W1"}),
        text("A colleague will take it from here."),
    )
    conversation = _verified_conversation(runtime, IVAN)
    result = runtime.agent.ask(conversation, "I want a refund, get me a person")
    assert result.outcome == Outcome.HANDED_OFF
    # While a human has the conversation the bot stays silent: no model call.
    queued = runtime.agent.ask(conversation, "hello? anyone?")
    assert queued.outcome == Outcome.QUEUED_FOR_HUMAN and queued.reply == ""
    assert len(fake.bodies) == 2


def test_rate_limit_retry_after_is_honoured(runtime: Runtime, fake: FakeAnthropic) -> None:
    fake.enqueue(error(429, "slow down", retry_after=1), text("Hello!"))
    result = runtime.agent.ask(_verified_conversation(runtime, IVAN), "hi")
    assert result.reply == "Hello!" and not result.degraded
    first, second = fake.requests
    assert second.at - first.at >= 0.95  # the SDK waited as the server asked
    assert second.headers["x-stainless-retry-count"] == "1"


def test_overload_after_retries_answers_offline_and_degraded(
    runtime: Runtime, fake: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    order = IVAN["orders"][0]
    fake.enqueue(*[error(529, "Overloaded", retry_after=0.01) for _ in range(3)])
    conversation = _verified_conversation(runtime, IVAN)
    with caplog.at_level(logging.WARNING):
        events = list(
            runtime.agent.turn(conversation, Said(f"Where is my order {order}?")).events()
        )

    result = events[-1].result
    assert len(fake.requests) == 3  # one try + max_retries=2
    assert result.degraded and result.model == "offline"
    assert "Offline mode" in result.reply and "delivered" in result.reply
    assert any(isinstance(e, Degraded) and "529" in e.reason for e in events)
    assert "model unavailable" in caplog.text
    with transaction(runtime.engine) as session:
        stored = load_messages(session=session, conversation_id=conversation)
    assert stored[-1].degraded


def test_streaming_yields_text_deltas_in_order(runtime: Runtime, fake: FakeAnthropic) -> None:
    order = IVAN["orders"][1]
    answer = f"Order {order} is still pending; it has not shipped yet."
    fake.enqueue(tool_use("order_status", {"order_id": order}, say="Let me look."), text(answer))
    conversation = _verified_conversation(runtime, IVAN)
    events = list(runtime.agent.turn(conversation, Said("Where's my order?"), stream=True).events())

    kinds = [type(e).__name__ for e in events]
    assert kinds.index("ToolStarted") < kinds.index("ToolFinished") < kinds.index("TurnFinished")
    streamed = "".join(e.text for e in events if isinstance(e, TextDelta))
    # Sonnet 5.5 returns the note before a tool call as a progress-update thinking block:
    # the customer still sees it, as a working note before the tool runs.
    assert streamed == answer
    notes = [i for i, e in enumerate(events) if isinstance(e, ProgressDelta)]
    if runtime.settings.thinking == "between_tools":
        assert "".join(events[i].text for i in notes) == "Let me look."
        assert notes[-1] < kinds.index("ToolStarted")
    else:  # adaptive, display omitted: the note comes back empty; the page shows work instead
        assert notes == [] and kinds.index("Working") < kinds.index("ToolStarted")
    assert sum(isinstance(e, TextDelta) for e in events) > 2
    assert all(b.get("stream") for b in fake.bodies)
    started = next(e for e in events if isinstance(e, ToolStarted))
    assert started.input == {"order_id": order}
    assert events[-1].result.reply == answer


def test_history_survives_a_restart(
    make_settings: SettingsFactory, runtime: Runtime, fake: FakeAnthropic
) -> None:
    fake.enqueue(tool_use("list_orders", {}), text("You have 4 orders."), text("You're welcome."))
    conversation = _verified_conversation(runtime, IVAN)
    runtime.agent.ask(conversation, "What did I order?")

    restarted = build_runtime(make_settings())  # same database, new process state
    restarted.agent.ask(conversation, "Thanks!")
    messages = fake.bodies[-1]["messages"]
    validate(messages)
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert messages[0]["content"][0]["text"] == "What did I order?"


def test_interrupted_turn_leaves_valid_history_and_keeps_the_message(
    runtime: Runtime, fake: FakeAnthropic
) -> None:
    fake.enqueue(tool_use("list_orders", {}))
    conversation = _verified_conversation(runtime, IVAN)
    turn = runtime.agent.turn(conversation, Said("What did I order?")).events()
    for event in turn:
        if isinstance(event, ToolFinished):
            break
    turn.close()  # the process or the client went away before the model answered again

    fake.enqueue(text("Here are your orders and the answer to both questions."))
    result = runtime.agent.ask(conversation, "Also, hello?")
    messages = fake.bodies[-1]["messages"]
    validate(messages)
    # The unanswered message keeps its tool round and is acknowledged; the new one stands alone.
    shapes = [[b.get("text") or b["type"] for b in m["content"] if "thinking" not in b["type"]]
              for m in messages]  # fmt: skip
    assert shapes == [["What did I order?"], ["tool_use"], ["tool_result"], [INTERRUPTED_REPLY],
                      ["Also, hello?"]]  # fmt: skip
    assert result.outcome == Outcome.ANSWERED


@pytest.mark.parametrize("bad", ["", "   \n", "x" * 4001])
def test_empty_and_oversized_messages_are_rejected_clearly(
    runtime: Runtime, fake: FakeAnthropic, bad: str
) -> None:
    conversation = _verified_conversation(runtime, IVAN)
    with pytest.raises(InvalidInput, match=r"empty|too long"):
        runtime.agent.ask(conversation, bad)
    assert _stored(runtime, conversation) == [] and fake.bodies == []


def test_turn_finished_is_the_last_event(runtime: Runtime, fake: FakeAnthropic) -> None:
    fake.enqueue(text("hi"))
    events = list(runtime.agent.turn(_verified_conversation(runtime, IVAN), Said("hello")).events())
    assert isinstance(events[-1], TurnFinished) and events[-1].result.usage["input_tokens"] > 0


def test_tool_loop_on_each_database(
    make_settings: SettingsFactory, fake: FakeAnthropic, any_db_url: str
) -> None:
    from agent.store.importer import import_path
    from tests.conftest import RETAIL_SLICE

    runtime = build_runtime(make_settings(database_url=any_db_url))
    import_path(runtime.engine, RETAIL_SLICE)
    fake.enqueue(
        tool_use("verify_customer", {"email": IVAN["email"], "zip_code": IVAN["zip"]}),
        tool_use("list_orders", {"limit": 2}),
        text("Your two latest orders are pending."),
    )
    conversation = runtime.agent.start_conversation()
    result = runtime.agent.ask(conversation, f"My orders? {IVAN['email']} {IVAN['zip']}")
    assert result.reply == "Your two latest orders are pending."
    listed = json.loads(_tool_results(fake.bodies[2])[0]["content"])
    assert [o["order_id"] for o in listed] == ["#W3913498", "#W5183325"]
    stored = _stored(runtime, conversation)
    assert len(stored) == 6
    assert stored[2]["content"][0]["type"] == "tool_result"


def test_a_client_that_leaves_as_a_decision_is_settled_frees_the_conversation(
    runtime: Runtime, fake: FakeAnthropic
) -> None:
    conversation = _verified_conversation(runtime, IVAN)
    fake.enqueue(tool_use("cancel_pending_order", {"order_id": "#W8770097",
                                                   "reason": "ordered by mistake"}))  # fmt: skip
    proposed = runtime.agent.ask(conversation, "Cancel #W8770097, I ordered it by mistake")
    assert proposed.pending_action is not None
    decision = Decision(proposed.pending_action.id, True, "customer")
    turn = runtime.agent.turn(conversation, decision, stream=True).events()
    assert isinstance(next(turn), ToolFinished)  # the change ran...
    turn.close()  # ...and the client left before the model was asked to tell the customer
    fake.enqueue(text("Your order #W8770097 is cancelled."))
    runtime.agent.ask(conversation, "Did it work?")  # not held by the turn that was left
    assert _said(fake.bodies[-1]["messages"][-2]) == [{"type": "text", "text": INTERRUPTED_REPLY}]
