"""A tool is one declaration: its function, label, kind, prompt line and offline behaviour."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi.testclient import TestClient
from pydantic import AfterValidator, Field
from sqlmodel import Session

from agent.api.app import create_app
from agent.config import Settings
from agent.engine.prompts import system_prompt
from agent.models.base import ModelRequest
from agent.models.intent import Intent
from agent.models.offline import OfflineModel
from agent.models.offline_plans import PLANS, Offline
from agent.runtime import Runtime, build_runtime
from agent.store.addresses import plain_line
from agent.store.db import transaction
from agent.store.importer import import_path
from agent.store.keys import create_key
from agent.store.orders import normalize_order_id
from agent.store.scopes import KeyScope
from agent.store.tables import Order
from tests.conftest import IVAN, RETAIL_SLICE, SettingsFactory
from tests.fake_anthropic import FakeAnthropic, text, tool_use
from tools import TOOLS, Kind, ToolRegistry, describe, tool
from tools.order_rules import ActionRefused
from tools.tool_context import ToolContext


def _plan(intent: Intent, planned: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [{"city": "Paris"}] if "weather" in intent.text else []


@tool(
    label=lambda args: f"Checking the weather in {args.get('city', '')}",
    kind=Kind.READ,
    guidance="For weather questions use weather.",
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
    # The offline model's use of it sits beside that model, by the tool's name.
    weather_offline = Offline(
        _plan, lambda data, language: f"It is {data['sky']} in {data['city']}."
    )
    offline = OfflineModel(registry, {**PLANS, "weather": weather_offline})
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


# A shop's own change, written as the seven are: the function is the rule, the declaration says
# it changes the store and how its proposal reads. Nothing else is edited for it to reach the
# prompt, the confirmation flow and the desk's change form.
@tool(
    label=lambda a: f"Gift-wrapping order {a.get('order_id', '')}",
    kind=Kind.CHANGE,
    # No language parameter: a shop's tool written before summaries had languages still works.
    summarize=lambda a, r: f"Gift-wrap order {r['order_id']} with the message “{a['note']}”.",
)
def gift_wrap_order(
    ctx: ToolContext,
    order_id: Annotated[str, Field(max_length=40)],
    note: Annotated[str, Field(max_length=60), AfterValidator(plain_line)],
) -> dict[str, Any]:
    """Gift-wrap one of the verified customer's pending orders, with a short note."""
    customer = ctx.require_customer()
    order = ctx.session.get(Order, normalize_order_id(order_id))
    if order is None or order.customer_id != customer:
        raise ActionRefused(f"Order {normalize_order_id(order_id)} was not found.")
    if order.status != "pending":
        raise ActionRefused(f"Order {order.id} is '{order.status}'; only a pending one is wrapped.")
    order.cancel_reason = f"wrap: {note}"[:32]  # (a test's stand-in for a column of its own)
    ctx.session.add(order)
    return {"order_id": order.id, "wrapped": True}


def test_a_new_change_needs_only_its_declaration_and_one_line(
    make_settings: SettingsFactory, fake: FakeAnthropic
) -> None:
    registry = ToolRegistry([*TOOLS, gift_wrap_order])  # the one line (tools.TOOLS)
    runtime = build_runtime(make_settings(), tools=registry)
    import_path(runtime.engine, RETAIL_SLICE)
    with transaction(runtime.engine) as session:
        admin = create_key(session=session, name="admin-test", scope=KeyScope.ADMIN)[1]
        backend = create_key(session=session, name="backend-test", scope=KeyScope.BACKEND)[1]
    # The prompt: the guidance about confirming names it.
    (confirming,) = [
        line for line in registry.guidance() if "only when the customer confirms" in line
    ]
    assert "gift_wrap_order" in confirming and "cancel_pending_order" in confirming
    with TestClient(create_app(runtime.settings, runtime)) as client:
        # The desk's change form: listed, with its schema (what the form is built from).
        listed = client.get("/v1/changes", headers={"Authorization": f"Bearer {admin}"}).json()
        (wrap,) = [c for c in listed if c["name"] == "gift_wrap_order"]
        assert wrap["title"] == "Gift wrap order"
        assert set(wrap["input_schema"]["properties"]) == {"order_id", "note"}
        assert [c["name"] for c in listed][:7] == [t.name for t in TOOLS if t.kind == Kind.CHANGE]
        # The confirmation flow: proposed with its summary, nothing changed until the yes.
        auth = {"Authorization": f"Bearer {backend}"}
        conversation = client.post("/v1/conversations", headers=auth,
                                   json={"customer_email": IVAN["email"]}).json()["id"]  # fmt: skip
        fake.enqueue(
            tool_use("gift_wrap_order", {"order_id": "#W8770097", "note": "Happy birthday"})
        )
        turn = client.post(f"/v1/conversations/{conversation}/messages", headers=auth,
                           json={"text": "gift-wrap #W8770097 please"}).json()  # fmt: skip
        assert turn["pending_action"]["summary"] == (
            "Gift-wrap order #W8770097 with the message “Happy birthday”.")  # fmt: skip
        assert "gift_wrap_order" in fake.bodies[-1]["system"][0]["text"]
        assert _wrapped(runtime) is None
        fake.enqueue(text("Done: it will be gift-wrapped."))
        client.post(
            f"/v1/conversations/{conversation}/messages", headers=auth, json={"text": "yes"}
        )
        assert _wrapped(runtime) == "wrap: Happy birthday"


def _wrapped(runtime: Runtime) -> str | None:
    with Session(runtime.engine) as session:
        order = session.get(Order, "#W8770097")
        assert order is not None
        return order.cancel_reason
