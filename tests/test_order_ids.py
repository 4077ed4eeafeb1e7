"""Order numbers in the store's own formats: a CSV's `X1001` is found by the offline model and
by the order tools, however the customer writes it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.models.intent import Intent
from agent.runtime import Runtime, build_runtime
from agent.store.db import transaction
from agent.store.importer import import_path
from tests.conftest import SettingsFactory, customer_id
from tests.fake_anthropic import FakeAnthropic, text, tool_uses
from tools.tool_context import ToolContext

ANN = "ann.lee@example.com"
ORDERS_CSV = (
    "order_id,customer_id,email,first_name,last_name,zip,status,item_id,item_name,price,"
    "tracking_id\n"
    f"X1001,c-ann,{ANN},Ann,Lee,02139,shipped,i1,Electric Kettle,49.99,1Z999\n"
    f"X1001,c-ann,{ANN},Ann,Lee,02139,shipped,i2,Water Bottle,19.50,1Z999\n"
    f"ORD1017,c-ann,{ANN},Ann,Lee,02139,pending,i3,Office Chair,120.00,\n"
    "X1002,c-bob,bob@example.com,Bob,Ray,10001,delivered,i4,Tea Kettle,35.00,1Z888\n"
)


def _shop(make_settings: SettingsFactory, tmp_path: Path, **overrides: object) -> Runtime:
    built = build_runtime(make_settings(**overrides))
    orders = tmp_path / "orders.csv"
    orders.write_text(ORDERS_CSV)
    report = import_path(built.engine, orders)
    assert report.orders.created == 3 and not report.problems
    return built


@pytest.fixture
def offline_shop(make_settings: SettingsFactory, tmp_path: Path) -> Runtime:
    return _shop(make_settings, tmp_path, anthropic_base_url=None, anthropic_api_key=None)


@pytest.mark.parametrize(
    ("message", "ids"),
    [
        ("where is my order #X1001?", ["#X1001"]),
        ("where is my order X1001?", ["#X1001"]),
        ("where is x1001", ["#X1001"]),
        ("order: x1001", ["#X1001"]),
        ("my order number is ORD1017", ["#ORD1017"]),
        ("order: #ord1017.", ["#ORD1017"]),
        ("order no. 1001 hasn't arrived", ["#1001"]),
        ("Where is my order #W7678072?", ["#W7678072"]),
        ("order # W6893533 and #W8770097", ["#W6893533", "#W8770097"]),
        # Not order numbers: counts, dates, model numbers, an email's digits, a zip code.
        ("I ordered 2 kettles", []),
        ("my order was placed on 2024-05-01", []),
        ("order 2024-05-01 and order 12.50", []),
        ("How do I descale the EK-1500?", []),
        ("#1 priority: I'm b1234@example.com, zip 02139", []),
    ],
)
def test_the_offline_model_reads_order_numbers_in_any_format(message: str, ids: list[str]) -> None:
    assert Intent.read(message).order_ids == ids


def test_a_csv_order_is_found_by_the_offline_model(offline_shop: Runtime) -> None:
    agent = offline_shop.agent
    conversation = agent.start_conversation()
    first = agent.ask(conversation, "where is my order #X1001?")
    assert [c.name for c in first.tool_calls] == ["order_status"]
    assert "verify your identity" in first.reply

    second = agent.ask(conversation, f"It's {ANN}, order x1001")
    assert [(c.name, c.is_error) for c in second.tool_calls] == [
        ("verify_customer", False),
        ("order_status", False),
    ]
    assert "Order #X1001 is **shipped**" in second.reply and "1Z999" in second.reply

    third = agent.ask(conversation, "and my order number ORD1017?")
    assert "Order #ORD1017 is **pending**" in third.reply
    other = agent.ask(conversation, "where is order X1002?")  # Bob's: not found for Ann
    assert other.tool_calls[0].is_error and "#X1002 was not found" in other.reply


def test_order_status_finds_a_csv_order_however_it_is_written(
    make_settings: SettingsFactory, tmp_path: Path, fake: FakeAnthropic
) -> None:
    shop = _shop(make_settings, tmp_path)
    ann = customer_id(shop, ANN)
    with transaction(shop.engine) as session:
        ctx = ToolContext(
            session, shop.settings, shop.agent.start_conversation(), ann, shop.orders(session)
        )
        for written in ("X1001", "#x1001", " # X1001 "):
            outcome = shop.agent.tools.run("order_status", {"order_id": written}, ctx)
            assert not outcome.is_error and json.loads(outcome.content)["order_id"] == "#X1001"

    # Claude's calls, in a conversation bound to Ann.
    fake.enqueue(
        tool_uses(("order_status", {"order_id": "X1001"}),
                  ("order_status", {"order_id": "#x1001"}),
                  ("order_status", {"order_id": "X1002"})),
        text("Your order #X1001 has shipped."),
    )  # fmt: skip
    result = shop.agent.ask(shop.agent.start_conversation(customer_id=ann), "where is X1001?")
    found, lower, bobs = fake.bodies[1]["messages"][-1]["content"]
    assert json.loads(found["content"])["status"] == "shipped" and not found.get("is_error")
    assert json.loads(lower["content"])["order_id"] == "#X1001" and not lower.get("is_error")
    assert bobs["is_error"] and "Order #X1002 was not found" in bobs["content"]
    assert [c.is_error for c in result.tool_calls] == [False, False, True]
