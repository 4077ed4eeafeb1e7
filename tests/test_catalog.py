"""The product catalog: import, variant filtering, and the product_info tool."""

from __future__ import annotations

import json

from agent.runtime import Runtime
from agent.store.db import transaction
from agent.store.importer import import_path
from agent.store.tables import Conversation
from tests.conftest import RETAIL_SLICE
from tests.fake_anthropic import FakeAnthropic, text, tool_use
from tools.tool_context import ToolContext


def _call(runtime: Runtime, **args: object) -> tuple[bool, dict | str]:
    conversation = runtime.agent.start_conversation()  # anonymous: catalog data is public
    with transaction(runtime.engine) as session:
        assert session.get(Conversation, conversation) is not None
        ctx = ToolContext(session, runtime.settings, conversation, None)
        outcome = runtime.agent.tools.run("product_info", args, ctx)
    return outcome.is_error, outcome.content if outcome.is_error else json.loads(outcome.content)


def test_products_import_with_their_variants_idempotently(offline_runtime: Runtime) -> None:
    again = import_path(offline_runtime.engine, RETAIL_SLICE)
    assert again.products.unchanged == 3 and again.products.created == 0


def test_question_text_finds_the_product_and_filters_variants(offline_runtime: Runtime) -> None:
    error, data = _call(offline_runtime, query="Is the 1000ml water bottle in stock in blue?")
    assert not error
    (product,) = data["products"]
    assert product["name"] == "Water Bottle"
    assert product["filters"] == {"capacity": "1000ml", "color": "blue"}
    assert product["matching_variants"] == 2 and product["available_variants"] == 0
    assert {v["options"]["material"] for v in product["variants"]} == {"glass", "stainless steel"}
    assert "blue" in product["option_values"]["color"]


def test_explicit_options_and_availability(offline_runtime: Runtime) -> None:
    _, data = _call(offline_runtime, query="Electric Kettle", options={"material": "glass"},
                    available_only=True)  # fmt: skip
    (kettle,) = data["products"]
    assert kettle["variants"] and all(v["available"] for v in kettle["variants"])
    assert all(v["options"]["material"] == "glass" for v in kettle["variants"])
    error, message = _call(offline_runtime, query="a flux capacitor")
    assert error and "Products we sell: Electric Kettle, Office Chair, Water Bottle" in str(message)


def test_claude_can_call_product_info_without_verification(
    runtime: Runtime, fake: FakeAnthropic
) -> None:
    fake.enqueue(tool_use("product_info", {"query": "office chair", "options": {"color": "black"}}),
                 text("Yes, the black office chair is available."))  # fmt: skip
    result = runtime.agent.ask(
        runtime.agent.start_conversation(), "Do you have the office chair in black?"
    )
    block = fake.bodies[1]["messages"][-1]["content"][0]
    assert not block.get("is_error")
    assert json.loads(block["content"])["products"][0]["filters"] == {"color": "black"}
    assert result.tool_calls[0].name == "product_info"


def test_offline_model_answers_a_stock_question(offline_runtime: Runtime) -> None:
    result = offline_runtime.agent.ask(
        offline_runtime.agent.start_conversation(),
        "Is the 1000ml glass water bottle available in blue?",
    )
    assert [c.name for c in result.tool_calls] == ["product_info"]
    assert (
        "Water Bottle (1000ml, glass, blue): 0 of 1 matching variants are in stock." in result.reply
    )
    assert "$47.84, out of stock" in result.reply
