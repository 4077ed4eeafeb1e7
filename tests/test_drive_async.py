"""Turns driven on an event loop, as the HTTP API drives them: `AsyncAnthropic` (over aiohttp)
against the wire-level fake, with the database and tool work in worker threads."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import Any, TypeVar

import pytest

from agent.engine.events import (
    Degraded,
    Event,
    Outcome,
    TextDelta,
    ToolFinished,
    ToolStarted,
    TurnFinished,
)
from agent.engine.history import to_api_messages, validate
from agent.engine.loop import Said
from agent.models.base import ProgressDelta, Working
from agent.runtime import Runtime, build_runtime
from agent.store.conversations import load_messages
from agent.store.db import transaction
from agent.store.importer import import_path
from tests.conftest import ALL_THINKING_MODES, IVAN, RETAIL_SLICE, SettingsFactory, customer_id
from tests.fake_anthropic import FakeAnthropic, Reply, error, system_text, text, tool_use

thinking_mode = ALL_THINKING_MODES  # every test here under both thinking settings

T = TypeVar("T")


def _run(runtime: Runtime, work: Callable[[], Awaitable[T]]) -> T:
    """Run `work` on a fresh event loop, closing the model's connections on that loop."""

    async def main() -> T:
        try:
            return await work()
        finally:
            await runtime.agent.model.aclose()

    return asyncio.run(main())


def _stored(runtime: Runtime, conversation_id: str) -> list[dict[str, Any]]:
    with transaction(runtime.engine) as session:
        return to_api_messages(load_messages(session=session, conversation_id=conversation_id))


def _verified(runtime: Runtime) -> str:
    return runtime.agent.start_conversation(customer_id=customer_id(runtime, IVAN["email"]))


def test_tool_loop_answers_and_stores_a_valid_history(
    runtime: Runtime, fake: FakeAnthropic
) -> None:
    order = IVAN["orders"][0]
    fake.enqueue(
        tool_use("verify_customer", {"email": IVAN["email"], "order_id": order}),
        tool_use("order_status", {"order_id": order}),
        text(f"Your order {order} has been delivered."),
    )
    conversation = runtime.agent.start_conversation()
    result = _run(
        runtime,
        lambda: runtime.agent.turn(
            conversation, Said(f"Where is {order}? I'm {IVAN['email']}")
        ).result_async(),
    )
    assert result.reply == f"Your order {order} has been delivered."
    assert [c.name for c in result.tool_calls] == ["verify_customer", "order_status"]
    status = json.loads(fake.bodies[2]["messages"][-1]["content"][0]["content"])
    assert status["order_id"] == order and status["status"] == "delivered"
    stored = _stored(runtime, conversation)
    assert [m["role"] for m in stored] == ["user", "assistant"] * 3
    validate([*stored, {"role": "user", "content": [{"type": "text", "text": "ok"}]}])


def test_streamed_turn_passes_events_on_in_order(runtime: Runtime, fake: FakeAnthropic) -> None:
    order = IVAN["orders"][1]
    answer = f"Order {order} is still pending; it has not shipped yet."
    fake.enqueue(tool_use("order_status", {"order_id": order}), text(answer))
    conversation = _verified(runtime)

    async def collect() -> list[Event]:
        turn = runtime.agent.turn(conversation, Said("status?"), stream=True).events_async()
        return [event async for event in turn]

    events = _run(runtime, collect)
    kinds = [type(e) for e in events if not isinstance(e, Working | ProgressDelta)]
    assert kinds[:2] == [ToolStarted, ToolFinished] and kinds[-1] is TurnFinished
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 1 and "".join(deltas) == answer
    assert fake.bodies[-1]["stream"] is True


def test_overload_answers_offline_and_prompt_too_long_compacts(
    make_settings: SettingsFactory, fake: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = build_runtime(make_settings())
    import_path(runtime.engine, RETAIL_SLICE)
    conversation = _verified(runtime)
    fake.enqueue(*[text(f"answer {i}") for i in range(3)])
    fake.enqueue(error(400, "prompt is too long: 212000 tokens > 200000 maximum"), text("Still."))
    fake.enqueue(*[error(529, "Overloaded", retry_after=0.01) for _ in range(3)])

    async def turns() -> list[Any]:
        results = [
            await runtime.agent.turn(
                conversation, Said(f"question {i} " + "words " * 50)
            ).result_async()
            for i in range(4)
        ]
        events = runtime.agent.turn(
            conversation, Said(f"Where is {IVAN['orders'][0]}?")
        ).events_async()
        return [*results, [event async for event in events]]

    with caplog.at_level(logging.WARNING):
        *answers, degraded = _run(runtime, turns)
    assert answers[-1].reply == "Still." and not answers[-1].degraded
    failed, retried = fake.bodies[-5:-3]  # the overflowing request and its compacted retry
    assert len(retried["messages"]) < len(failed["messages"])
    result = degraded[-1].result
    assert any(isinstance(e, Degraded) and "529" in e.reason for e in degraded)
    assert result.degraded and result.model == "offline" and "delivered" in result.reply
    assert "compacting once" in caplog.text and "model unavailable" in caplog.text


def test_a_consumer_that_leaves_closes_the_turn_and_the_history_stays_valid(
    runtime: Runtime, fake: FakeAnthropic
) -> None:
    fake.enqueue(tool_use("list_orders", {}))
    fake.default = lambda body: text("slow answer", delay=1.0)
    conversation = _verified(runtime)

    async def leave_after_the_tool() -> None:
        turn = runtime.agent.turn(conversation, Said("my orders?"), stream=True).events_async()
        async with aclosing(turn):
            async for event in turn:
                if isinstance(event, ToolFinished):
                    return  # the customer closes the tab

    _run(runtime, leave_after_the_tool)
    stored = _stored(runtime, conversation)
    assert [m["role"] for m in stored] == ["user", "assistant", "user"]  # the tool round landed
    assert "slow answer" not in json.dumps(stored)
    fake.default = lambda body: text("Here you go.")
    result = runtime.agent.ask(conversation, "still there?")
    assert result.reply == "Here you go." and result.outcome == Outcome.ANSWERED
    validate(fake.bodies[-1]["messages"])


def test_summaries_fall_back_to_extractive_when_claude_is_down(
    make_settings: SettingsFactory, fake: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = build_runtime(
        make_settings(context_budget_tokens=3_000, context_strategy="summarize", max_retries=0)
    )
    import_path(runtime.engine, RETAIL_SLICE)

    def answer(body: dict[str, Any]) -> Reply:
        if not body.get("tools"):  # the summary request
            return error(529, "Overloaded")
        return text("Noted. " + "detail " * 60)

    fake.default = answer
    conversation = _verified(runtime)
    with caplog.at_level(logging.WARNING):
        results = [
            runtime.agent.ask(conversation, f"Tell me about topic {turn}. " + "words " * 40)
            for turn in range(10)
        ]
    assert any(not b.get("tools") for b in fake.bodies)  # a summary was asked for, and failed
    assert "summary unavailable" in caplog.text
    assert all(r.reply.startswith("Noted.") and not r.degraded for r in results)
    last = fake.bodies[-1]
    assert "Customer: Tell me about topic" in system_text(last)  # the extractive summary instead
