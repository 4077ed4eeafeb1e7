"""Turn logic against the in-memory storage port: no database, Claude through the fake.

What the turn decides (tool loop, continuation, compaction, fallback, hand-off at the cap) is
tested here on its own; tests/test_loop_claude.py covers the same paths with the SQL store.
"""

from __future__ import annotations

from typing import Any

import pytest

from agent.adapters.builtin_orders import BuiltinOrders
from agent.config import Settings
from agent.domain import ConversationState
from agent.engine.events import Outcome, ToolFinished
from agent.engine.history import INTERRUPTED_REPLY
from agent.engine.loop import Agent, Said
from agent.engine.port import CustomerFacts
from agent.models.claude import ClaudeModel
from agent.models.offline import OfflineModel
from tests.fake_anthropic import FakeAnthropic, error, system_text, text, tool_use
from tests.memory_turns import MemoryTurnStore
from tools import ToolRegistry, tool
from tools.tool_context import ToolContext, ToolError

ANN = CustomerFacts(id="ann", first_name="Ann", last_name="Lee", email="ann@example.com")


def lookup(ctx: ToolContext, order_id: str) -> dict[str, Any]:
    """Look an order up."""
    if ctx.customer_id is None:
        raise ToolError("not verified")
    return {"order_id": order_id, "status": "delivered"}


def verify(ctx: ToolContext, email: str) -> dict[str, Any]:
    """Verify the customer by email."""
    if email != ANN.email:
        raise ToolError("no match")
    ctx.customer_id = ANN.id
    return {"verified": True}


@pytest.fixture
def store() -> MemoryTurnStore:
    return MemoryTurnStore(customers={ANN.id: ANN})


def _agent(store: MemoryTurnStore, fake: FakeAnthropic, **overrides: Any) -> Agent:
    settings = Settings(anthropic_base_url=fake.url, anthropic_api_key="k", max_retries=0,
                        **overrides)  # fmt: skip
    tools = ToolRegistry([tool(lookup), tool(verify)])
    return Agent(
        settings=settings,
        model=ClaudeModel(settings),
        fallback=OfflineModel(tools),
        tools=tools,
        store=store,
        orders=BuiltinOrders,
    )


def test_tool_loop_verifies_then_looks_up(store: MemoryTurnStore, fake: FakeAnthropic) -> None:
    agent = _agent(store, fake)
    conversation = store.add_conversation("c1")
    fake.enqueue(tool_use("verify", {"email": ANN.email}), tool_use("lookup", {"order_id": "#W1"}),
                 text("Delivered."))  # fmt: skip
    result = agent.ask(conversation, "Where is #W1? I'm ann@example.com")
    assert result.reply == "Delivered." and [c.name for c in result.tool_calls] == [
        "verify", "lookup"]  # fmt: skip
    stored = store.conversations[conversation]
    assert [m.role for m in stored.messages] == ["user", "assistant", "user", "assistant",
                                                 "user", "assistant"]  # fmt: skip
    assert stored.customer_id == ANN.id and stored.lease is None  # released with the answer
    assert "verified: Ann Lee" in system_text(fake.bodies[-1])


def test_continuation_of_a_cut_reply(store: MemoryTurnStore, fake: FakeAnthropic) -> None:
    agent = _agent(store, fake)
    conversation = store.add_conversation("c1", ANN.id)
    fake.enqueue(
        text("It shipped on Monday", stop_reason="max_tokens"), text(" and arrives Friday.")
    )
    result = agent.ask(conversation, "When?")
    assert result.reply == "It shipped on Monday and arrives Friday."
    assert len(store.conversations[conversation].messages) == 2  # one merged answer


def test_compaction_moves_the_cut_through_the_port(
    store: MemoryTurnStore, fake: FakeAnthropic
) -> None:
    agent = _agent(store, fake, context_budget_tokens=1_500)
    conversation = store.add_conversation("c1", ANN.id)
    fake.default = lambda body: text("Noted. " + "detail " * 80)
    for turn in range(8):
        agent.ask(conversation, f"Question {turn}: " + "words " * 60)
    assert store.conversations[conversation].cut > 0  # older turns left the request
    assert len(store.conversations[conversation].messages) == 16  # but not the history


def test_outage_falls_back_to_the_offline_model(
    store: MemoryTurnStore, fake: FakeAnthropic
) -> None:
    agent = _agent(store, fake)
    conversation = store.add_conversation("c1", ANN.id)
    fake.enqueue(error(529, "overloaded"))
    result = agent.ask(conversation, "Hello?")
    assert result.degraded and result.model == "offline"
    assert store.conversations[conversation].messages[-1].message.degraded


def test_hand_off_at_the_tool_round_cap(store: MemoryTurnStore, fake: FakeAnthropic) -> None:
    agent = _agent(store, fake, max_tool_iterations=2)
    conversation = store.add_conversation("c1", ANN.id)
    fake.enqueue(*[tool_use("lookup", {"order_id": f"#W{i}"}) for i in range(3)])
    result = agent.ask(conversation, "Check everything")
    stored = store.conversations[conversation]
    assert result.outcome == Outcome.ITERATION_CAP and stored.state == ConversationState.HUMAN
    assert f"ticket #{stored.tickets[0]['id']}" in result.reply
    assert stored.messages[-1].content[0]["text"] == result.reply and stored.lease is None


def test_a_message_whose_turn_ended_without_an_answer_is_acknowledged(
    store: MemoryTurnStore, fake: FakeAnthropic
) -> None:
    agent = _agent(store, fake)
    conversation = store.add_conversation("c1", ANN.id)
    fake.enqueue(tool_use("lookup", {"order_id": "#W1"}))
    turn = agent.turn(conversation, Said("Where is #W1?")).events()
    for event in turn:
        if isinstance(event, ToolFinished):
            break
    turn.close()  # its client left (or its server died) before the model answered
    fake.enqueue(text("#W1 was delivered. How can I help?"))
    assert agent.ask(conversation, "hello?").reply == "#W1 was delivered. How can I help?"
    sent = fake.bodies[-1]["messages"]
    assert [(m["role"], [b.get("text") or b["type"] for b in m["content"]]) for m in sent] == [
        ("user", ["Where is #W1?"]),
        ("assistant", ["tool_use"]),
        ("user", ["tool_result"]),
        ("assistant", [INTERRUPTED_REPLY]),
        ("user", ["hello?"]),
    ]
