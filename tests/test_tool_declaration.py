"""A tool is one declaration: its function, label, kind, prompt line and offline behaviour."""

from __future__ import annotations

from typing import Any

from agent.config import Settings
from agent.engine.prompts import system_prompt
from agent.models.base import ModelRequest
from agent.models.offline import OfflineModel
from tools import TOOLS, Kind, ToolRegistry, describe, tool
from tools.intent import Intent
from tools.tool_context import ToolContext


def _plan(intent: Intent, planned: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [{"city": "Paris"}] if "weather" in intent.text else []


@tool(
    label=lambda args: f"Checking the weather in {args.get('city', '')}",
    kind=Kind.READ,
    guidance="For weather questions use weather.",
    plan=_plan,
    render=lambda data: f"It is {data['sky']} in {data['city']}.",
)
def weather(ctx: ToolContext, city: str) -> dict[str, Any]:
    """The weather in a city."""
    return {"city": city, "sky": "sunny"}


def test_a_new_tool_needs_only_its_declaration() -> None:
    registry = ToolRegistry([*TOOLS, weather])
    assert registry.schemas()[-1]["input_schema"]["required"] == ["city"]
    assert "ctx" not in registry.schemas()[-1]["input_schema"]["properties"]  # hidden context
    assert registry.label("weather", {"city": "Oslo"}) == "Checking the weather in Oslo"
    prompt = system_prompt(Settings(), None, guidance=registry.guidance())
    assert "- For weather questions use weather." in prompt
    offline = OfflineModel(registry)
    request = ModelRequest(
        system="", tools=registry.schemas(), max_tokens=100,
        messages=[{"role": "user", "content": [{"type": "text", "text": "weather please"}]}],
    )  # fmt: skip
    (reply,) = list(offline.respond(request))
    uses = {u["name"]: u for u in reply.tool_uses()}
    use = uses["weather"]  # (the help-centre search plans a call too: not an order question)
    assert use["input"] == {"city": "Paris"}
    answered = ModelRequest(
        system="", tools=registry.schemas(), max_tokens=100,
        messages=[*request.messages, {"role": "assistant", "content": reply.content},
                  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use["id"],
                                                "content": '{"city": "Paris", "sky": "sunny"}'}]}],
    )  # fmt: skip
    (final,) = list(offline.respond(answered))
    assert "It is sunny in Paris." in final.text()


def test_the_shipped_tools_are_declared_with_labels_and_kinds() -> None:
    assert describe("order_status", {"order_id": "#W1"}) == "Looking up order #W1"
    assert describe("verify_customer", {}) == "Checking your details"
    assert describe("no_such_tool", {}) == "Using no_such_tool"
    changing = {t.name for t in TOOLS if t.kind == Kind.CHANGE}
    assert changing == {
        "cancel_pending_order",
        "modify_pending_order_address",
        "modify_pending_order_items",
        "modify_pending_order_payment",
        "modify_user_address",
        "return_delivered_order_items",
        "exchange_delivered_order_items",
    }
    guidance = ToolRegistry(TOOLS).guidance()
    assert guidance[-1].startswith("When the customer asks for a person")
