"""customer_history: only the bound customer's own tickets and conversations, after verification."""

from __future__ import annotations

import json

from agent.runtime import Runtime
from agent.store.conversations import create_ticket
from agent.store.db import transaction
from agent.store.tables import Conversation
from tests.conftest import IVAN, YARA, customer_id
from tools.tool_context import ToolContext


def _history(runtime: Runtime, conversation: str) -> tuple[bool, str]:
    with transaction(runtime.engine) as session:
        row = session.get(Conversation, conversation)
        assert row is not None
        ctx = ToolContext(
            session, runtime.settings, conversation, row.customer_id, runtime.orders(session)
        )
        outcome = runtime.agent.tools.run("customer_history", {}, ctx)
    return outcome.is_error, outcome.content


def test_history_shows_only_the_verified_customers_records(offline_runtime: Runtime) -> None:
    agent = offline_runtime.agent
    ivan, yara = (
        customer_id(offline_runtime, IVAN["email"]),
        customer_id(offline_runtime, YARA["email"]),
    )
    earlier = agent.start_conversation(customer_id=ivan)
    agent.ask(earlier, f"Where is my order {IVAN['orders'][0]}?")
    theirs = agent.start_conversation(customer_id=yara)
    agent.ask(theirs, "Yara's secret question about her orders")
    with transaction(offline_runtime.engine) as session:
        create_ticket(session=session, conversation_id=earlier, customer_id=ivan,
                      reason="Damaged kettle", summary="Kettle arrived cracked")  # fmt: skip
        create_ticket(session=session, conversation_id=theirs, customer_id=yara,
                      reason="Yara ticket", summary="Yara's private matter")  # fmt: skip

    now = agent.start_conversation(customer_id=ivan)
    error, content = _history(offline_runtime, now)
    assert not error
    data = json.loads(content)
    assert [t["reason"] for t in data["tickets"]] == ["Damaged kettle"]
    (gist,) = [c["gist"] for c in data["conversations"]]
    assert f"Where is my order {IVAN['orders'][0]}?" in gist and "delivered" in gist
    assert "Yara" not in content  # nothing of another customer is reachable


def test_history_needs_verification(offline_runtime: Runtime) -> None:
    anonymous = offline_runtime.agent.start_conversation()
    error, content = _history(offline_runtime, anonymous)
    assert error and "not verified" in content
